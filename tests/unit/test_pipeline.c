/* The stage runner: order, failure handling, the signal stage on the failure path, exit codes,
 * `--stage` prerequisites, plan mode, and the status file's shape. Stages are replaced by
 * recording functions; the real ones have their own tests. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb/config.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/pipeline.h"
#include "scratch.h"

static char calls[256];
static int fail_at = -1;
static int fail_with;
static int signal_saw_failed_stage = -2;
static bool prerequisite_seen[STAGE_COUNT];
static char scratch[64];
static char status_path[96];
static char console_path[96];

static int transient_failures_left;
static int attempts[STAGE_COUNT];
static bool fail_at_deadline; /* the failing stage waits out its deadline first */
static int64_t signal_budget_ms = -1;

static int record(struct kb_run *run)
{
	int id = run->current_stage;

	attempts[id]++;
	if (id == STAGE_SIGNAL)
		signal_budget_ms = deadline_remaining_ms(run->stage_deadline);
	if (id == fail_at && fail_at_deadline) {
		deadline_sleep_ms(run->stage_deadline, 600000);
		return kb_errorf(&run->err, KB_ETIMEOUT, "the ENI did not attach in time");
	}
	if (id == fail_at && transient_failures_left > 0) {
		transient_failures_left--;
		return kb_errorf(&run->err, KB_EUNAVAIL, "ZooKeeper at zk1:2181 did not answer");
	}

	prerequisite_seen[id] = run->prerequisite;
	strcat(calls, pipeline_stage_name(id));
	strcat(calls, " ");
	if (id == STAGE_SIGNAL)
		signal_saw_failed_stage = run->failed_stage;
	if (id == STAGE_CLAIM && fail_at != STAGE_CLAIM)
		run->broker_id = 7;
	if (id == STAGE_ENI)
		kb_run_change(run, "attached eni-0abc at device index 1");
	if (id == fail_at)
		return kb_errorf(&run->err, fail_with, "stage %s broke", pipeline_stage_name(id));
	return 0;
}

static int setup(void **state)
{
	struct kb_config *cfg = config_new();

	assert_non_null(cfg);
	assert_int_equal(scratch_dir_new(scratch, sizeof(scratch), "pipeline-test"), 0);
	snprintf(status_path, sizeof(status_path), "%s/run/status.json", scratch);
	assert_int_equal(config_set(cfg, "status_file", status_path, "t", NULL), 0);
	snprintf(console_path, sizeof(console_path), "%s/console", scratch);
	/* Like /dev/console, it exists before anyone writes to it. */
	fclose(fopen(console_path, "w"));
	assert_int_equal(config_set(cfg, "console", console_path, "t", NULL), 0);
	assert_int_equal(config_set(cfg, "zookeeper_connect", "zk1:2181", "t", NULL), 0);
	{
		char run_root[96];

		snprintf(run_root, sizeof(run_root), "%s/runroot", scratch);
		assert_int_equal(config_set(cfg, "run_root", run_root, "t", NULL), 0);
	}
	log_init(LOG_LEVEL_ERROR);
	log_set_console(console_path);
	for (int i = 0; i < STAGE_COUNT; i++)
		pipeline_set_stage_fn(i, record);
	calls[0] = '\0';
	fail_at = -1;
	transient_failures_left = 0;
	memset(attempts, 0, sizeof(attempts));
	fail_at_deadline = false;
	signal_budget_ms = -1;
	signal_saw_failed_stage = -2;
	memset(prerequisite_seen, 0, sizeof(prerequisite_seen));
	*state = cfg;
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(scratch_dir_remove(scratch), 0);
	config_free(*state);
	return 0;
}

static const char *read_console(void)
{
	static char text[4096];
	FILE *in = fopen(console_path, "r");
	size_t n;

	assert_non_null(in);
	n = fread(text, 1, sizeof(text) - 1, in);
	text[n] = '\0';
	fclose(in);
	return text;
}

static int run_pipeline(struct kb_config *cfg, enum kb_run_mode mode, int only_stage)
{
	struct pipeline_options opts = {cfg, mode, only_stage, mode == KB_MODE_PLAN ? "plan" : "run"};

	return pipeline_run(&opts);
}

static json_t *load_status(void)
{
	json_error_t jerr;
	json_t *root = json_load_file(status_path, 0, &jerr);

	if (!root)
		fail_msg("status file %s: %s", status_path, jerr.text);
	return root;
}

static void stages_run_in_order_and_success_exits_zero(void **state)
{
	json_t *root, *stages, *eni;

	assert_int_equal(run_pipeline(*state, KB_MODE_RUN, -1), 0);
	assert_string_equal(calls, "identity discover claim eni volume network properties signal ");
	assert_int_equal(signal_saw_failed_stage, -1);
	root = load_status();
	assert_int_equal(json_integer_value(json_object_get(root, "schema")), 1);
	assert_string_equal(json_string_value(json_object_get(root, "command")), "run");
	assert_int_equal(json_integer_value(json_object_get(root, "exit_code")), 0);
	assert_int_equal(json_integer_value(json_object_get(root, "broker_id")), 7);
	stages = json_object_get(root, "stages");
	assert_int_equal(json_array_size(stages), STAGE_COUNT);
	eni = json_array_get(stages, STAGE_ENI);
	assert_string_equal(json_string_value(json_object_get(eni, "name")), "eni");
	assert_string_equal(json_string_value(json_object_get(eni, "outcome")), "changed");
	assert_string_equal(json_string_value(json_array_get(json_object_get(eni, "changes"), 0)),
			    "attached eni-0abc at device index 1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(stages, 0),
							       "outcome")), "ok");
	assert_true(json_is_integer(json_object_get(eni, "duration_ms")));
	assert_true(json_is_string(json_object_get(eni, "started_at")));
	json_decref(root);
}

struct failure_case {
	int stage;
	int code;
	int exit_code;
};

static const struct failure_case failures[] = {
	{STAGE_CLAIM, KB_ENOID, 10},      {STAGE_VOLUME, KB_EFOREIGN, 11},
	{STAGE_VOLUME, KB_EFORMAT, 12},   {STAGE_ENI, KB_EHELD, 13},
	{STAGE_IDENTITY, KB_EUNAVAIL, 69}, {STAGE_ENI, KB_ETIMEOUT, 75},
	{STAGE_DISCOVER, KB_EDENIED, 77}, {STAGE_NETWORK, ENOMEM, 70},
};

static void a_failed_stage_stops_the_rest_but_the_signal_stage_reports_it(void **state)
{
	struct kb_config *cfg = *state;

	/* Too short a run to retry the transient ones (69, 75): they are told at once. */
	assert_int_equal(config_set(cfg, "deadline_s", "1", "t", NULL), 0);
	for (int s = 0; s < STAGE_COUNT; s++)
		cfg->stage_deadline_s[s] = 1;
	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		json_t *root, *stages, *failed;
		char expected[256] = "";

		calls[0] = '\0';
		fail_at = failures[i].stage;
		fail_with = failures[i].code;
		assert_int_equal(run_pipeline(*state, KB_MODE_RUN, -1), failures[i].exit_code);
		for (int s = 0; s <= fail_at; s++) {
			strcat(expected, pipeline_stage_name(s));
			strcat(expected, " ");
		}
		strcat(expected, "signal ");
		assert_string_equal(calls, expected);
		assert_int_equal(signal_saw_failed_stage, fail_at);
		root = load_status();
		assert_int_equal(json_integer_value(json_object_get(root, "exit_code")),
				 failures[i].exit_code);
		stages = json_object_get(root, "stages");
		failed = json_array_get(stages, (size_t)fail_at);
		assert_string_equal(json_string_value(json_object_get(failed, "outcome")), "failed");
		assert_non_null(strstr(json_string_value(json_object_get(failed, "error")), "broke"));
		assert_non_null(strstr(json_string_value(json_object_get(root, "error")), "broke"));
		assert_string_equal(json_string_value(json_object_get(root, "hint")),
				    kb_exit_hint(failures[i].exit_code));
		assert_non_null(strstr(read_console(), "broke; what to do: "));
		json_decref(root);
	}
}

static void a_failed_signal_after_success_exits_14(void **state)
{
	fail_at = STAGE_SIGNAL;
	fail_with = KB_EAWS;
	assert_int_equal(run_pipeline(*state, KB_MODE_RUN, -1), 14);
}

static void run_without_zookeeper_is_refused_before_any_stage(void **state)
{
	struct kb_config *cfg = *state;

	assert_int_equal(config_set(cfg, "zookeeper_connect", "", "t", NULL), 0);
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, -1), 78);
	assert_int_equal(run_pipeline(cfg, KB_MODE_PLAN, -1), 78);
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, STAGE_ENI), 78);
	assert_string_equal(calls, "");
	assert_null(fopen(status_path, "r"));
	/* The stages before the claim need no ZooKeeper. */
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, STAGE_DISCOVER), 0);
	assert_string_equal(calls, "identity discover ");
}

static void one_stage_reads_its_prerequisites_and_skips_the_rest(void **state)
{
	assert_int_equal(run_pipeline(*state, KB_MODE_RUN, STAGE_VOLUME), 0);
	assert_string_equal(calls, "identity discover claim eni volume ");
	for (int i = 0; i < STAGE_VOLUME; i++)
		assert_true(prerequisite_seen[i]);
	assert_false(prerequisite_seen[STAGE_VOLUME]);
}

static void plan_runs_every_stage_and_writes_no_status_file(void **state)
{
	assert_int_equal(run_pipeline(*state, KB_MODE_PLAN, -1), 0);
	assert_string_equal(calls, "identity discover claim eni volume network properties signal ");
	assert_int_equal(access(status_path, F_OK), -1);
}

static void a_transient_failure_is_retried_from_its_stage_until_it_passes(void **state)
{
	fail_at = STAGE_CLAIM;
	fail_with = 0;
	transient_failures_left = 1;
	assert_int_equal(run_pipeline(*state, KB_MODE_RUN, -1), 0);
	assert_string_equal(calls, "identity discover claim eni volume network properties signal ");
	assert_int_equal(attempts[STAGE_IDENTITY], 1);
	assert_int_equal(attempts[STAGE_DISCOVER], 1);
	assert_int_equal(attempts[STAGE_CLAIM], 2); /* the transient failure, then the pass */
	assert_int_equal(signal_saw_failed_stage, -1);
}

static void a_permanent_failure_is_not_retried(void **state)
{
	fail_at = STAGE_CLAIM;
	fail_with = KB_ENOID;
	assert_int_equal(run_pipeline(*state, KB_MODE_RUN, -1), 10);
	assert_int_equal(attempts[STAGE_CLAIM], 1);
}

static void a_transient_failure_outlasting_the_deadline_is_told(void **state)
{
	struct kb_config *cfg = *state;
	int64_t start = deadline_now_ms(), took;

	assert_int_equal(config_set(cfg, "deadline_s", "4", "t", NULL), 0);
	for (int i = 0; i < STAGE_COUNT; i++)
		cfg->stage_deadline_s[i] = 4;
	fail_at = STAGE_ENI;
	transient_failures_left = 1000;
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, -1), 69);
	took = deadline_now_ms() - start;
	/* Retried once after 1 s; the next wait (2 s) would leave too little of the 4 s. */
	assert_int_equal(attempts[STAGE_ENI], 2);
	assert_true(took >= 900 && took < 2500);
	assert_int_equal(signal_saw_failed_stage, STAGE_ENI);
	assert_non_null(strstr(read_console(), "did not answer"));
}

static void a_stage_using_the_whole_run_still_leaves_the_signal_its_budget(void **state)
{
	struct kb_config *cfg = *state;

	assert_int_equal(config_set(cfg, "deadline_s", "2", "t", NULL), 0);
	for (int i = 0; i < STAGE_COUNT; i++)
		cfg->stage_deadline_s[i] = 2;
	fail_at = STAGE_ENI;
	fail_at_deadline = true;
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, -1), 75);
	/* The run's deadline has passed: a signal capped by it could not even be sent. */
	assert_int_equal(signal_saw_failed_stage, STAGE_ENI);
	assert_true(signal_budget_ms > 1500);
}

static void a_second_run_waits_for_the_lock_and_names_its_holder(void **state)
{
	struct kb_config *cfg = *state;
	struct kb_error err = {{0}};
	int held = -1;

	assert_int_equal(pipeline_lock(cfg, deadline_after_ms(1000), &held, &err), 0);
	assert_int_equal(config_set(cfg, "deadline_s", "1", "t", NULL), 0);
	for (int i = 0; i < STAGE_COUNT; i++)
		cfg->stage_deadline_s[i] = 1;
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, -1), 75);
	assert_string_equal(calls, "");
	/* plan only reads: it does not wait for the lock */
	assert_int_equal(run_pipeline(cfg, KB_MODE_PLAN, -1), 0);
	close(held);
	calls[0] = '\0';
	assert_int_equal(run_pipeline(cfg, KB_MODE_RUN, -1), 0);
	assert_string_equal(calls, "identity discover claim eni volume network properties signal ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(stages_run_in_order_and_success_exits_zero, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			a_failed_stage_stops_the_rest_but_the_signal_stage_reports_it, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_failed_signal_after_success_exits_14, setup,
						teardown),
		cmocka_unit_test_setup_teardown(run_without_zookeeper_is_refused_before_any_stage,
						setup, teardown),
		cmocka_unit_test_setup_teardown(one_stage_reads_its_prerequisites_and_skips_the_rest,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			plan_runs_every_stage_and_writes_no_status_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_transient_failure_is_retried_from_its_stage_until_it_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(a_permanent_failure_is_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(a_transient_failure_outlasting_the_deadline_is_told,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_stage_using_the_whole_run_still_leaves_the_signal_its_budget, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_second_run_waits_for_the_lock_and_names_its_holder, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
