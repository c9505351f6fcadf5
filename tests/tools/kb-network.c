/* kb-network: runs the network stage's configuration (network_configure) on an ENI a test
 * describes on the command line, without IMDS or EC2, and prints what happened as one JSON
 * object on stdout. The configuration comes from KAFKA_BOOTSTRAP_* variables, as for the
 * real program. Exit code: the program's (kb_exit_code).
 *   kb-network --mac MAC --ip IP [--cidr CIDR] [--primary-mac MAC] [--table N]
 *              [--priority N] [--deadline-ms N] [--plan] [--prerequisite]
 *   kb-network --status */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/config.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/network.h"
#include "kb/pipeline.h"

extern char **environ;

struct args {
	struct network_target target;
	long table, priority, deadline_ms;
	bool plan, prerequisite, status;
};

static int parse(int argc, char *argv[], struct args *a)
{
	static const struct option options[] = {
		{"mac", required_argument, NULL, 'm'},
		{"ip", required_argument, NULL, 'i'},
		{"cidr", required_argument, NULL, 'c'},
		{"primary-mac", required_argument, NULL, 'p'},
		{"table", required_argument, NULL, 't'},
		{"priority", required_argument, NULL, 'r'},
		{"deadline-ms", required_argument, NULL, 'd'},
		{"plan", no_argument, NULL, 'P'},
		{"prerequisite", no_argument, NULL, 'R'},
		{"status", no_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	a->deadline_ms = 10000;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'm':
			a->target.mac = optarg;
			break;
		case 'i':
			a->target.ip = optarg;
			break;
		case 'c':
			a->target.subnet_cidr = optarg;
			break;
		case 'p':
			a->target.primary_mac = optarg;
			break;
		case 't':
			a->table = strtol(optarg, NULL, 10);
			break;
		case 'r':
			a->priority = strtol(optarg, NULL, 10);
			break;
		case 'd':
			a->deadline_ms = strtol(optarg, NULL, 10);
			break;
		case 'P':
			a->plan = true;
			break;
		case 'R':
			a->prerequisite = true;
			break;
		case 'S':
			a->status = true;
			break;
		default:
			return -1;
		}
	}
	return a->status || (a->target.mac && a->target.ip) ? 0 : -1;
}

static void print_result(const struct kb_run *run, int ret)
{
	const struct stage_result *r = &run->results[STAGE_NETWORK];
	json_t *changes = json_array();
	json_t *out;

	for (size_t i = 0; i < r->change_count; i++)
		json_array_append_new(changes, json_string(r->changes[i]));
	out = json_pack("{s:i, s:s?, s:o, s:s?, s:I}", "exit", kb_exit_code(ret), "ifname",
			run->ifname, "changes", changes, "error", ret < 0 ? run->err.msg : NULL,
			"done_wall_ms", (json_int_t)deadline_wall_ms());
	if (out)
		json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
}

int main(int argc, char *argv[])
{
	struct kb_error err = {{0}};
	struct kb_config *cfg = config_new();
	struct args a = {0};
	struct kb_run run;
	int ret;

	log_init(LOG_LEVEL_DEBUG);
	if (!cfg || parse(argc, argv, &a) < 0) {
		fputs("usage: kb-network --mac MAC --ip IP [--cidr CIDR] ... | --status\n", stderr);
		config_free(cfg);
		return 64;
	}
	if (config_load_env(cfg, environ, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		config_free(cfg);
		return 78;
	}
	log_set_console(NULL);
	if (a.status) {
		ret = network_status(cfg, stdout, &err);
		if (ret < 0)
			fprintf(stderr, "%s\n", err.msg);
		config_free(cfg);
		return kb_exit_code(ret);
	}
	a.target.table = a.table ? (uint32_t)a.table : network_route_table(cfg, -1, -1);
	a.target.priority = a.priority ? (uint32_t)a.priority : network_rule_priority(cfg, -1, -1);
	kb_run_init(&run, cfg, a.plan ? KB_MODE_PLAN : KB_MODE_RUN);
	run.prerequisite = a.prerequisite;
	run.current_stage = STAGE_NETWORK;
	run.stage_deadline = deadline_after_ms(a.deadline_ms);
	ret = network_configure(&run, &a.target);
	if (ret < 0)
		log_error("network: %s", run.err.msg);
	print_result(&run, ret);
	run.current_stage = -1;
	kb_run_release(&run);
	config_free(cfg);
	return kb_exit_code(ret);
}
