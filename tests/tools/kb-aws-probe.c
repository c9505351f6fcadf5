/* kb-aws-probe: a test-only driver of the AWS layer (built by tests/CMakeLists.txt, never
 * installed). It runs steps in order and prints one JSON document on stdout; the log goes to
 * stderr as the product's does, so tests can grep everything it printed.
 *
 *   kb-aws-probe [--log-level L] [--deadline-ms N] STEP...
 *   --identity                      the identity stage (IMDS; creates the AWS context)
 *   --call SERVICE:ACTION           one aws_query (ec2, cloudformation, autoscaling)
 *   --param NAME=VALUE              a parameter of the last --call
 *   --imds PATH                     one imds_get
 *   --sleep-ms N                    a pause (token expiry tests)
 *
 * Without --identity before the first --call, the AWS context is made from the environment
 * (AWS_REGION, credentials, IMDS when AWS_EC2_METADATA_SERVICE_ENDPOINT is set). Output:
 * {"steps": [...], "imds_calls": N, "connects": {"ec2": N, ...}, "clock_offset_ms": N,
 *  "identity": {...}}. Exit 0 when every step succeeded, 1 when one failed, 2 on usage. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb/aws.h"
#include "kb/config.h"
#include "kb/deadline.h"
#include "kb/imds.h"
#include "kb/log.h"
#include "kb/pipeline.h"
#include "kb/private/aws.h"
#include "kb/private/imds.h"
#include "kb/stages.h"

static const char *const versions[AWS_SERVICE_COUNT] = {"2016-11-15", "2010-05-15",
							 "2011-01-01"};

struct probe {
	struct kb_run run;
	int64_t deadline_ms;
	json_t *steps;
	int failures;
};

static int lookup_service(const char *name, size_t len)
{
	for (int s = 0; s < AWS_SERVICE_COUNT; s++) {
		if (strlen(aws_service_name(s)) == len && strncmp(aws_service_name(s), name, len) == 0)
			return s;
	}
	return -1;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void record(struct probe *p, json_t *step, int ret, const struct kb_error *err,
		   int64_t started)
{
	json_object_set_new(step, "ret", json_integer(ret));
	json_object_set_new(step, "exit", json_integer(kb_exit_code(ret)));
	json_object_set_new(step, "error", ret < 0 ? json_string(err->msg) : json_null());
	json_object_set_new(step, "ms", json_integer(deadline_now_ms() - started));
	json_array_append_new(p->steps, step);
	if (ret < 0)
		p->failures++;
}

static int ensure_clients(struct probe *p, struct kb_error *err)
{
	struct imds_options io = {0};
	struct aws_ctx_options ao = {0};

	if (p->run.aws)
		return 0;
	if (!p->run.imds && getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
		p->run.imds = imds_client_new(&io, err);
		if (!p->run.imds)
			return -KB_ECONFIG;
	}
	ao.imds = p->run.imds;
	p->run.aws = aws_ctx_new(&ao, deadline_after_ms(p->deadline_ms), err);
	return p->run.aws ? 0 : -KB_ECONFIG;
}

static void step_identity(struct probe *p)
{
	json_t *step = json_pack("{s:s}", "step", "identity");
	int64_t started = deadline_now_ms();
	int ret;

	p->run.stage_deadline = deadline_after_ms(p->deadline_ms);
	kb_error_clear(&p->run.err);
	ret = identity_stage(&p->run);
	record(p, step, ret, &p->run.err, started);
}

/* argv[*i] is "SERVICE:ACTION"; the --param pairs after it are consumed. */
static int step_call(struct probe *p, char **argv, int argc, int *i)
{
	const char *spec = argv[*i];
	const char *colon = strchr(spec, ':');
	int service = colon ? lookup_service(spec, (size_t)(colon - spec)) : -1;
	struct aws_response *resp = NULL;
	struct kb_error err = {{0}};
	struct aws_params *params;
	int64_t started;
	json_t *step;
	int ret;

	if (service < 0)
		return -1;
	params = aws_params_new(colon + 1, versions[service]);
	if (!params)
		return -1;
	while (*i + 2 < argc && strcmp(argv[*i + 1], "--param") == 0) {
		char *eq = strchr(argv[*i + 2], '=');

		if (eq)
			*eq = '\0';
		if (!eq || aws_params_add(params, argv[*i + 2], eq + 1) < 0) {
			aws_params_free(params);
			return -1;
		}
		*i += 2;
	}
	step = json_pack("{s:s,s:s,s:s}", "step", "call", "service", aws_service_name(service),
			 "action", colon + 1);
	started = deadline_now_ms();
	ret = ensure_clients(p, &err);
	if (ret == 0)
		ret = aws_query(p->run.aws, service, params, deadline_after_ms(p->deadline_ms), &resp,
				&err);
	json_object_set_new(step, "http_status", resp ? json_integer(resp->http_status) : json_null());
	json_object_set_new(step, "error_code", string_or_null(resp ? resp->error_code : NULL));
	json_object_set_new(step, "request_id", string_or_null(resp ? resp->request_id : NULL));
	record(p, step, ret, &err, started);
	aws_response_free(resp);
	aws_params_free(params);
	return 0;
}

static void step_imds(struct probe *p, const char *path)
{
	json_t *step = json_pack("{s:s,s:s}", "step", "imds", "path", path);
	struct imds_options io = {0};
	struct kb_error err = {{0}};
	int64_t started = deadline_now_ms();
	char *value = NULL;
	int ret = 0;

	if (!p->run.imds) {
		p->run.imds = imds_client_new(&io, &err);
		ret = p->run.imds ? 0 : -KB_ECONFIG;
	}
	if (ret == 0)
		ret = imds_get(p->run.imds, path, deadline_after_ms(p->deadline_ms), &value, &err);
	json_object_set_new(step, "value", string_or_null(value));
	record(p, step, ret, &err, started);
	free(value);
}

static json_t *summary(struct probe *p)
{
	const struct kb_identity *id = &p->run.identity;
	json_t *connects = json_object();

	for (int s = 0; p->run.aws && s < AWS_SERVICE_COUNT; s++)
		json_object_set_new(connects, aws_service_name(s),
				    json_integer(aws_ctx_connects(p->run.aws, s)));
	return json_pack("{s:O,s:i,s:o,s:I,s:{s:o,s:o,s:o,s:o,s:o,s:o,s:o}}", "steps", p->steps,
			 "imds_calls", p->run.imds ? (int)imds_client_calls(p->run.imds) : 0,
			 "connects", connects, "clock_offset_ms",
			 (json_int_t)(p->run.aws ? aws_ctx_clock_offset_ms(p->run.aws) : 0),
			 "identity", "instance_id", string_or_null(id->instance_id), "az",
			 string_or_null(id->az), "az_id", string_or_null(id->az_id), "region",
			 string_or_null(id->region), "mac", string_or_null(id->mac), "private_ip",
			 string_or_null(id->private_ip), "account_id",
			 string_or_null(id->account_id));
}

static int usage(void)
{
	fprintf(stderr, "usage: kb-aws-probe [--log-level L] [--deadline-ms N] "
			"[--identity] [--call SERVICE:ACTION [--param N=V]...] [--imds PATH] "
			"[--sleep-ms N]...\n");
	return 2;
}

static int run_steps(struct probe *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		enum log_level level;

		if (strcmp(a, "--identity") == 0) {
			step_identity(p);
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (strcmp(a, "--log-level") == 0 && log_level_parse(v, &level) == 0)
			log_set_level(level);
		else if (strcmp(a, "--deadline-ms") == 0)
			p->deadline_ms = atoll(v);
		else if (strcmp(a, "--call") == 0 && step_call(p, argv, argc, &i) == 0)
			continue;
		else if (strcmp(a, "--imds") == 0)
			step_imds(p, v);
		else if (strcmp(a, "--sleep-ms") == 0)
			usleep((useconds_t)atoi(v) * 1000);
		else
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kb_config *cfg = config_new();
	struct probe p = {.deadline_ms = 30000, .steps = json_array()};
	json_t *out;
	int ret;

	log_init(LOG_LEVEL_INFO);
	log_set_console(NULL);
	if (!cfg || !p.steps)
		return 70;
	kb_run_init(&p.run, cfg, KB_MODE_RUN);
	ret = run_steps(&p, argc, argv);
	if (ret == 0) {
		out = summary(&p);
		json_dumpf(out, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(out);
	}
	kb_run_release(&p.run);
	json_decref(p.steps);
	config_free(cfg);
	if (ret < 0)
		return usage();
	return p.failures ? 1 : 0;
}
