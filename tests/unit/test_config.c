/* Configuration: defaults, precedence, and one refusal per kind of mistake, each naming the
 * key, the value and what is allowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb/config.h"
#include "scratch.h"

struct fixture {
	struct kb_config *cfg;
	struct kb_error err;
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg = config_new();
	assert_non_null(f->cfg);
	assert_int_equal(scratch_dir_new(f->dir, sizeof(f->dir), "config-test"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(scratch_dir_remove(f->dir), 0);
	config_free(f->cfg);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *out = fopen(path, "w");

	assert_non_null(out);
	fputs(text, out);
	fclose(out);
}

static void defaults_are_the_documented_ones(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->cfg->tag_key, "Name");
	assert_string_equal(f->cfg->tag_prefix, "KAFKA-");
	assert_string_equal(f->cfg->cluster_tag_key, "kafka-bootstrap:cluster");
	assert_string_equal(f->cfg->volume_device, "/dev/sdg");
	assert_string_equal(f->cfg->broker_rack, "{az_id}");
	assert_string_equal(f->cfg->status_file, "/run/kafka-bootstrap/status.json");
	assert_int_equal(f->cfg->filesystem, CONFIG_FS_XFS);
	assert_int_equal(f->cfg->on_failure, CONFIG_ON_FAILURE_SIGNAL | CONFIG_ON_FAILURE_UNHEALTHY);
	assert_int_equal(f->cfg->claim_grace_period_s, 600);
	assert_int_equal(config_route_table(f->cfg), 10001);
	assert_int_equal(config_rule_priority(f->cfg), 10001);
	assert_int_equal(config_validate(f->cfg, &f->err), 0);
}

static void drop_ins_override_the_file_in_name_order(void **state)
{
	struct fixture *f = *state;
	char path[128], dropin[160];

	snprintf(path, sizeof(path), "%s/config.json", f->dir);
	write_file(path, "{\"cluster\": \"base\", \"broker_count\": 3}");
	snprintf(dropin, sizeof(dropin), "%s/config.d", f->dir);
	assert_int_equal(mkdir(dropin, 0755), 0);
	snprintf(dropin, sizeof(dropin), "%s/config.d/50-stack.json", f->dir);
	write_file(dropin, "{\"cluster\": \"stack\"}");
	snprintf(dropin, sizeof(dropin), "%s/config.d/90-local.json", f->dir);
	write_file(dropin, "{\"cluster\": \"local\", \"broker_count\": 6}");
	snprintf(dropin, sizeof(dropin), "%s/config.d/README", f->dir);
	write_file(dropin, "not json, and not a .json file: ignored");

	assert_int_equal(config_load_files(f->cfg, path, true, &f->err), 0);
	assert_string_equal(f->cfg->cluster, "local");
	assert_int_equal(f->cfg->broker_count, 6);
}

static void environment_overrides_files_and_set_overrides_environment(void **state)
{
	struct fixture *f = *state;
	char *env[] = {"PATH=/bin", "KAFKA_BOOTSTRAP_CLUSTER=from-env",
		       "KAFKA_BOOTSTRAP_ON_FAILURE=signal, lifecycle",
		       "KAFKA_BOOTSTRAP_LIFECYCLE_HOOK=launch", NULL};

	assert_int_equal(config_merge_json(f->cfg, "{\"cluster\":\"file\"}", "file", &f->err), 0);
	assert_int_equal(config_load_env(f->cfg, env, &f->err), 0);
	assert_string_equal(f->cfg->cluster, "from-env");
	assert_int_equal(f->cfg->on_failure, CONFIG_ON_FAILURE_SIGNAL | CONFIG_ON_FAILURE_LIFECYCLE);
	assert_int_equal(config_set(f->cfg, "cluster", "from-flag", "--set", &f->err), 0);
	assert_string_equal(f->cfg->cluster, "from-flag");
	assert_int_equal(config_validate(f->cfg, &f->err), 0);
}

static void missing_default_file_is_fine_missing_explicit_file_is_not(void **state)
{
	struct fixture *f = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/absent.json", f->dir);
	assert_int_equal(config_load_files(f->cfg, path, false, &f->err), 0);
	assert_int_equal(config_load_files(f->cfg, path, true, &f->err), -KB_ECONFIG);
	assert_non_null(strstr(f->err.msg, "cannot read config"));
	assert_non_null(strstr(f->err.msg, "absent.json"));
}

struct refusal {
	const char *json;
	const char *expected[3]; /* each must appear in the message */
};

/* Each kind of mistake an operator can make in a file, and what the message must name. */
static const struct refusal refusals[] = {
	{"{\"clutser\": \"x\"}", {"unknown key 'clutser'", "t.json"}},
	{"{\"broker_count\": \"3\"}", {"'broker_count'", "expected an integer", "a string"}},
	{"{\"broker_count\": 70000}", {"'broker_count'", "'70000'", "from 0 to 65536"}},
	{"{\"broker_count\": 1.5}", {"'broker_count'", "a number with a fraction"}},
	{"{\"filesystem\": \"btrfs\"}", {"'filesystem'", "'btrfs'", "one of xfs or ext4"}},
	{"{\"on_failure\": [\"signal\", \"reboot\"]}", {"'on_failure'", "'reboot'", "lifecycle"}},
	{"{\"on_failure\": \"signal\"}", {"'on_failure'", "an array of strings"}},
	{"{\"manage_volume\": \"yes\"}", {"'manage_volume'", "true or false"}},
	{"{\"cluster\": null}", {"'cluster'", "null"}},
	{"[1, 2]", {"expected a JSON object", "an array"}},
	{"{\"cluster\": \"a\",}", {"t.json", "line 1"}},
	{"{\"cluster\": \"a\", \"cluster\": \"b\"}", {"t.json", "duplicate"}},
};

static void each_kind_of_file_mistake_is_refused_with_key_and_allowed_values(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		kb_error_clear(&f->err);
		assert_int_equal(config_merge_json(f->cfg, refusals[i].json, "t.json", &f->err),
				 -KB_ECONFIG);
		for (size_t e = 0; e < 3 && refusals[i].expected[e]; e++) {
			if (!strstr(f->err.msg, refusals[i].expected[e]))
				fail_msg("input %s: message '%s' lacks '%s'", refusals[i].json,
					 f->err.msg, refusals[i].expected[e]);
		}
	}
}

/* jansson's error text quotes the input near the error: never what the operator sees. */
static void a_syntax_error_never_quotes_the_password(void **state)
{
	const char *inputs[] = {
		"{\"zookeeper_auth\": \"kafka:VeryS3cret}",
		"{\"zookeeper_auth\": \"kafka:S3cretP\\a\"}",
		"{\"zookeeper_auth\": \"kafka:VeryS3cret\" \"cluster\": \"x\"}",
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		kb_error_clear(&f->err);
		assert_int_equal(config_merge_json(f->cfg, inputs[i], "50-stack.json", &f->err),
				 -KB_ECONFIG);
		if (strstr(f->err.msg, "S3cret") || !strstr(f->err.msg, "50-stack.json: line 1"))
			fail_msg("input %s: message '%s'", inputs[i], f->err.msg);
	}
}

static void unknown_environment_variable_with_our_prefix_is_refused(void **state)
{
	struct fixture *f = *state;
	char *env[] = {"KAFKA_BOOTSTRAP_CLUSTR=x", NULL};

	assert_int_equal(config_load_env(f->cfg, env, &f->err), -KB_ECONFIG);
	assert_non_null(strstr(f->err.msg, "KAFKA_BOOTSTRAP_CLUSTR"));
	assert_non_null(strstr(f->err.msg, "unknown key 'clustr'"));
}

struct invalid_combination {
	const char *json;
	const char *expected;
};

static const struct invalid_combination combinations[] = {
	{"{\"log_dir\": \"/var/lib/kafka\"}", "inside mount_point"},
	{"{\"log_dir\": \"/srv/logs\"}", "inside mount_point"},
	{"{\"log_dir\": \"/var/lib/kafka//\"}", "inside mount_point"},
	{"{\"log_dir\": \"/var/lib/kafka/.\"}", "inside mount_point"},
	{"{\"log_dir\": \"/var/lib/kafka/logs/..\"}", "inside mount_point"},
	{"{\"log_dir\": \"/var/lib/kafka/../etc\"}", "inside mount_point"},
	{"{\"log_dir\": \"/var/lib/kafka/a//b\"}", "inside mount_point"},
	{"{\"mount_point\": \"data\"}", "'mount_point': 'data' is not an absolute path"},
	{"{\"listeners\": \"PLAINTEXT://{host}:9092\"}", "unknown placeholder '{host}'"},
	{"{\"broker_rack\": \"{az_id\"}", "unclosed '{'"},
	{"{\"zookeeper_connect\": \"zk1,zk2\"}", "'zookeeper_connect': invalid value 'zk1,zk2'"},
	{"{\"zookeeper_connect\": \"zk1:2181/\"}", "host:port[,host:port...][/chroot]"},
	{"{\"zookeeper_connect\": \"zk1:99999\"}", "'zookeeper_connect'"},
	{"{\"zookeeper_auth\": \"secretonly\"}", "user:password (value not shown)"},
	{"{\"volume_device\": \"sdg\"}", "'volume_device'"},
	{"{\"on_failure\": [\"lifecycle\"]}", "'lifecycle_hook' is empty"},
	{"{\"eni_deadline_s\": 2000}", "'eni_deadline_s': 2000 s is longer than deadline_s"},
	{"{\"tag_prefix\": \"\"}", "must not be empty"},
	{"{\"cluster\": \"blue/green\"}", "'cluster': 'blue/green' cannot name a ZooKeeper node"},
	{"{\"cluster\": \"..\"}", "'cluster': '..' cannot name a ZooKeeper node"},
};

static void invalid_combinations_are_refused_by_validation(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(combinations) / sizeof(combinations[0]); i++) {
		struct kb_config *cfg = config_new();

		kb_error_clear(&f->err);
		assert_int_equal(config_merge_json(cfg, combinations[i].json, "t", &f->err), 0);
		assert_int_equal(config_validate(cfg, &f->err), -KB_ECONFIG);
		if (!strstr(f->err.msg, combinations[i].expected))
			fail_msg("input %s: message '%s' lacks '%s'", combinations[i].json,
				 f->err.msg, combinations[i].expected);
		assert_null(strstr(f->err.msg, "secretonly"));
		config_free(cfg);
	}
}

static void log_dirs_below_the_mount_point_are_accepted(void **state)
{
	static const char *const good[] = {"/var/lib/kafka/logs", "/var/lib/kafka/logs/",
					   "/var/lib/kafka/a/b", "/var/lib/kafka/..logs"};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct kb_config *cfg = config_new();

		assert_int_equal(config_set(cfg, "log_dir", good[i], "t", &f->err), 0);
		if (config_validate(cfg, &f->err) != 0)
			fail_msg("log_dir %s refused: %s", good[i], f->err.msg);
		config_free(cfg);
	}
}

static void valid_connect_strings_are_accepted(void **state)
{
	struct fixture *f = *state;
	const char *good[] = {"zk1:2181", "10.0.0.1:2181,10.0.0.2:2181/kafka",
			      "zk1:2181,zk2:2181,zk3:2181/kafka/prod", "[::1]:2181"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(config_set(f->cfg, "zookeeper_connect", good[i], "t", &f->err), 0);
		if (config_validate(f->cfg, &f->err) != 0)
			fail_msg("%s refused: %s", good[i], f->err.msg);
	}
}

static void printed_config_hides_the_zookeeper_password(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_int_equal(config_set(f->cfg, "zookeeper_auth", "kafka:hunter2-secret", "t",
				    &f->err), 0);
	assert_int_equal(config_print_json(f->cfg, out), 0);
	fclose(out);
	assert_null(strstr(text, "hunter2-secret"));
	assert_non_null(strstr(text, "\"zookeeper_auth\": \"[REDACTED]\""));
	assert_non_null(strstr(text, "\"on_failure\": [\n    \"signal\",\n    \"unhealthy\"\n  ]"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(defaults_are_the_documented_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(drop_ins_override_the_file_in_name_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			environment_overrides_files_and_set_overrides_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(
			missing_default_file_is_fine_missing_explicit_file_is_not, setup, teardown),
		cmocka_unit_test_setup_teardown(
			each_kind_of_file_mistake_is_refused_with_key_and_allowed_values, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_syntax_error_never_quotes_the_password, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			unknown_environment_variable_with_our_prefix_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(invalid_combinations_are_refused_by_validation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(log_dirs_below_the_mount_point_are_accepted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(valid_connect_strings_are_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(printed_config_hides_the_zookeeper_password, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
