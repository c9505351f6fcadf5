/* kb-eni: the identity stage, then the eni stage (and with --then-network the network stage)
 * on one ENI named on the command line, as if discover and claim had picked it. Prints one
 * JSON object per stage run, {"stage", "exit", "changes", "error", "ms", "done_wall_ms"},
 * one a line. Configuration and AWS settings from the environment, as for the real program.
 * --taken-over-from plays a claim taken over from that stopped instance.
 *   kb-eni --eni-id ENI [--deadline-ms N] [--plan] [--then-network] [--taken-over-from I] */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/claim.h"
#include "kb/config.h"
#include "kb/deadline.h"
#include "kb/ec2.h"
#include "kb/log.h"
#include "kb/pipeline.h"
#include "kb/stages.h"

extern char **environ;

static void report(const struct kb_run *run, enum pipeline_stage_id id, int ret, int64_t ms)
{
	const struct stage_result *r = &run->results[id];
	json_t *changes = json_array();
	json_t *out;

	for (size_t i = 0; i < r->change_count; i++)
		json_array_append_new(changes, json_string(r->changes[i]));
	out = json_pack("{s:s, s:i, s:o, s:s?, s:I, s:I}", "stage", pipeline_stage_name(id),
			"exit", kb_exit_code(ret), "changes", changes, "error",
			ret < 0 ? run->err.msg : NULL, "ms", (json_int_t)ms, "done_wall_ms",
			(json_int_t)deadline_wall_ms());
	if (out)
		json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	fflush(stdout);
	json_decref(out);
}

static int run_stage(struct kb_run *run, enum pipeline_stage_id id, int (*fn)(struct kb_run *),
		     int64_t deadline_ms)
{
	int64_t started = deadline_now_ms();
	int ret;

	run->current_stage = id;
	run->stage_deadline = deadline_after_ms(deadline_ms);
	kb_error_clear(&run->err);
	ret = fn(run);
	if (ret < 0)
		log_error("%s: %s", pipeline_stage_name(id), run->err.msg);
	report(run, id, ret, deadline_now_ms() - started);
	run->current_stage = -1;
	return ret;
}

/* What discover and claim would leave: the ENI, described, as the claimed broker's. */
static int describe_eni(struct kb_run *run)
{
	const char *eni_id = getenv("KB_ENI_ID");
	int ret;

	ret = ec2_describe_network_interface(run->aws, eni_id, run->stage_deadline, &run->enis,
					     &run->err);
	if (ret == 0 && run->enis->count != 1)
		ret = kb_errorf(&run->err, ENOENT, "%s not found", eni_id);
	return ret;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{"eni-id", required_argument, NULL, 'e'},
		{"deadline-ms", required_argument, NULL, 'd'},
		{"plan", no_argument, NULL, 'p'},
		{"then-network", no_argument, NULL, 'n'},
		{"taken-over-from", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct kb_error err = {{0}};
	struct kb_config *cfg = config_new();
	struct kb_broker broker = {.id = 0};
	long deadline_ms = 10000;
	bool plan = false, network = false;
	const char *taken_from = NULL;
	struct kb_run run;
	int opt, ret;

	log_init(LOG_LEVEL_DEBUG);
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'e')
			setenv("KB_ENI_ID", optarg, 1);
		else if (opt == 'd')
			deadline_ms = strtol(optarg, NULL, 10);
		else if (opt == 'p')
			plan = true;
		else if (opt == 'n')
			network = true;
		else if (opt == 'o')
			taken_from = optarg;
		else
			return 64;
	}
	if (!cfg || !getenv("KB_ENI_ID") || config_load_env(cfg, environ, &err) < 0) {
		fprintf(stderr, "usage: kb-eni --eni-id ENI [--deadline-ms N] [--plan] "
			"[--then-network] %s\n", err.msg);
		config_free(cfg);
		return 64;
	}
	log_set_console(NULL);
	kb_run_init(&run, cfg, plan ? KB_MODE_PLAN : KB_MODE_RUN);
	if (taken_from && (run.claim = calloc(1, sizeof(*run.claim)))) {
		run.claim->how = CLAIM_TAKEN_OVER;
		run.claim->previous_owner = strdup(taken_from);
		run.claim->previous_state = CLAIM_OWNER_STOPPED;
	}
	ret = run_stage(&run, STAGE_IDENTITY, identity_stage, 10000);
	if (ret == 0)
		ret = run_stage(&run, STAGE_DISCOVER, describe_eni, 10000);
	if (ret == 0) {
		broker.eni = &run.enis->items[0];
		run.broker = &broker;
		ret = run_stage(&run, STAGE_ENI, eni_stage, deadline_ms);
	}
	if (ret == 0 && network)
		ret = run_stage(&run, STAGE_NETWORK, network_stage, deadline_ms);
	kb_run_release(&run);
	config_free(cfg);
	return kb_exit_code(ret);
}
