/* test_claim.c: the claim's pure parts: takeover rules, the hash-rotated pick, the claim
 * record, id parsing, and zk.c's connect string and client log parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/claim.h"
#include "kb/log.h"
#include "kb/zk.h"

static enum claim_verdict verdict(enum claim_owner_state state, bool registered, int64_t age_ms,
				  int grace_s, bool stopped_flag, char *why)
{
	return claim_takeover_verdict(state, registered, age_ms, grace_s, stopped_flag, why, 256);
}

static void terminated_owner_is_taken_at_once_unless_registered(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(verdict(CLAIM_OWNER_TERMINATED, false, 0, 600, false, why), CLAIM_TAKE);
	assert_int_equal(verdict(CLAIM_OWNER_TERMINATED, true, 0, 600, false, why), CLAIM_WAIT);
	assert_non_null(strstr(why, "registered in /brokers/ids"));
}

static void running_and_pending_owners_are_never_taken(void **state)
{
	char why[256];

	(void)state;
	for (int registered = 0; registered < 2; registered++) {
		assert_int_equal(verdict(CLAIM_OWNER_RUNNING, registered, 1000000000, 0, true, why),
				 CLAIM_KEEP_OUT);
		assert_int_equal(verdict(CLAIM_OWNER_PENDING, registered, 1000000000, 0, true, why),
				 CLAIM_KEEP_OUT);
	}
}

static void shutting_down_owner_is_waited_for(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(verdict(CLAIM_OWNER_SHUTTING_DOWN, false, 0, 600, false, why), CLAIM_WAIT);
	assert_int_equal(verdict(CLAIM_OWNER_SHUTTING_DOWN, true, 0, 600, false, why), CLAIM_WAIT);
}

static void unknown_owner_is_taken_only_after_the_grace_period(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(verdict(CLAIM_OWNER_UNKNOWN, false, 599999, 600, false, why),
			 CLAIM_KEEP_OUT);
	assert_non_null(strstr(why, "grace period 600s"));
	assert_int_equal(verdict(CLAIM_OWNER_UNKNOWN, false, 600000, 600, false, why), CLAIM_TAKE);
	assert_int_equal(verdict(CLAIM_OWNER_UNKNOWN, true, 6000000, 600, false, why),
			 CLAIM_KEEP_OUT);
}

static void stopped_owner_is_taken_only_with_the_flag(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(verdict(CLAIM_OWNER_STOPPED, false, 0, 0, false, why), CLAIM_KEEP_OUT);
	assert_non_null(strstr(why, "--take-over-stopped"));
	assert_int_equal(verdict(CLAIM_OWNER_STOPPING, false, 0, 0, false, why), CLAIM_KEEP_OUT);
	assert_int_equal(verdict(CLAIM_OWNER_STOPPED, false, 0, 0, true, why), CLAIM_TAKE);
	assert_int_equal(verdict(CLAIM_OWNER_STOPPING, false, 0, 0, true, why), CLAIM_WAIT);
	assert_int_equal(verdict(CLAIM_OWNER_STOPPED, true, 0, 0, true, why), CLAIM_WAIT);
}

static void owner_state_names_are_ec2s(void **state)
{
	static const char *const names[] = {"pending", "running", "shutting-down", "terminated",
					    "stopping", "stopped", "unknown"};
	enum claim_owner_state s;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(claim_owner_state_parse(names[i], &s), 0);
		assert_string_equal(claim_owner_state_name(s), names[i]);
	}
	assert_int_equal(claim_owner_state_parse("Running", &s), -EINVAL);
	assert_int_equal(claim_owner_state_parse("", &s), -EINVAL);
}

/* Lowest-first would start every instance at the same index. */
static void pick_spreads_instances_over_the_candidates(void **state)
{
	unsigned hits[32] = {0};
	char id[32];
	unsigned used = 0;

	(void)state;
	for (unsigned n = 0; n < 32; n++) {
		snprintf(id, sizeof(id), "i-%017x", n);
		hits[claim_pick(id, 0, 32)]++;
	}
	for (size_t i = 0; i < 32; i++)
		used += hits[i] > 0;
	/* 32 balls in 32 bins leave about 32 * (1 - 1/e) = 20 bins used. */
	assert_true(used >= 14);
	for (size_t i = 0; i < 32; i++)
		assert_true(hits[i] <= 6);
}

static void pick_is_deterministic_in_range_and_moves_with_the_attempt(void **state)
{
	unsigned moved = 0;

	(void)state;
	assert_int_equal(claim_pick("i-0abc", 3, 0), 0);
	assert_int_equal(claim_pick("i-0abc", 3, 1), 0);
	for (unsigned a = 0; a < 64; a++) {
		size_t p = claim_pick("i-0abc", a, 7);

		assert_true(p < 7);
		assert_int_equal(p, claim_pick("i-0abc", a, 7));
		moved += p != claim_pick("i-0abc", a + 1, 7);
	}
	assert_true(moved > 32);
}

static void id_parsing_accepts_only_canonical_decimal(void **state)
{
	static const char *const bad[] = {"", "07", "+7", "-1", " 7", "7 ", "7x", "0x7", "1e3",
					  "2147483648", "99999999999"};
	int id = -1;

	(void)state;
	assert_int_equal(claim_parse_id("0", 1, 0, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(claim_parse_id("2147483647", 10, 0, &id), 0);
	assert_int_equal(id, 2147483647);
	assert_int_equal(claim_parse_id("31", 2, 32, &id), 0);
	assert_int_equal(claim_parse_id("32", 2, 32, &id), -ERANGE);
	assert_int_equal(claim_parse_id("12", 1, 0, &id), 0); /* the length bounds it */
	assert_int_equal(id, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(claim_parse_id(bad[i], strlen(bad[i]), 0, &id), -EINVAL);
}

static void record_round_trips_with_the_pinned_members(void **state)
{
	struct claim in = {.broker_id = 7, .instance_id = "i-0abc", .az = "us-east-1a",
			   .az_id = "use1-az6", .eni_id = "eni-1", .volume_id = NULL,
			   .claimed_at = "2025-01-15T12:00:01.123Z"};
	struct kb_error err = {{0}};
	struct claim *out = NULL;
	char *json = claim_record_json(&in);

	(void)state;
	assert_non_null(json);
	assert_string_equal(json, "{\"version\":1,\"broker_id\":7,\"instance_id\":\"i-0abc\","
				  "\"az\":\"us-east-1a\",\"az_id\":\"use1-az6\",\"eni_id\":"
				  "\"eni-1\",\"volume_id\":null,\"claimed_at\":"
				  "\"2025-01-15T12:00:01.123Z\"}");
	assert_int_equal(claim_record_parse(json, strlen(json), &out, &err), 0);
	assert_int_equal(out->broker_id, 7);
	assert_string_equal(out->instance_id, "i-0abc");
	assert_string_equal(out->az_id, "use1-az6");
	assert_null(out->volume_id);
	claim_free(out);
	free(json);
}

static void record_parse_rejects_what_is_not_a_claim(void **state)
{
	static const char *const bad[] = {
		"", "not json", "[]", "{}", "{\"version\":2,\"broker_id\":1,\"instance_id\":\"i-1\"}",
		"{\"version\":1,\"broker_id\":-1,\"instance_id\":\"i-1\"}",
		"{\"version\":1,\"broker_id\":\"1\",\"instance_id\":\"i-1\"}",
		"{\"version\":1,\"broker_id\":1}",
		"{\"version\":1,\"broker_id\":1,\"instance_id\":\"\"}",
		"{\"version\":1,\"broker_id\":1,\"instance_id\":\"i-1\",\"az\":3}",
		"{\"version\":1,\"version\":1,\"broker_id\":1,\"instance_id\":\"i-1\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kb_error err = {{0}};
		struct claim *out = NULL;

		assert_int_equal(claim_record_parse(bad[i], strlen(bad[i]), &out, &err), -EINVAL);
		assert_null(out);
		assert_true(err.msg[0] != '\0');
	}
	claim_free(NULL);
}

static void connect_string_splits_hosts_and_chroot(void **state)
{
	static const char *const cases[][3] = {
		{"zk1:2181", "zk1:2181", ""},
		{"zk1:2181,zk2:2181/kafka", "zk1:2181,zk2:2181", "/kafka"},
		{"10.0.0.1:2181/a/b", "10.0.0.1:2181", "/a/b"},
		{"zk1:2181/", "zk1:2181", ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *hosts = NULL, *chroot = NULL;

		assert_int_equal(zk_split_connect(cases[i][0], &hosts, &chroot), 0);
		assert_string_equal(hosts, cases[i][1]);
		assert_string_equal(chroot, cases[i][2]);
		free(hosts);
		free(chroot);
	}
}

static void client_log_lines_keep_their_level(void **state)
{
	const char *text;

	(void)state;
	assert_int_equal(zk_client_line_level("2025-01-15 12:00:01,123:42(0x7f):ZOO_ERROR@"
					      "handle_socket_error_msg@1721: Socket gone", &text),
			 LOG_LEVEL_ERROR);
	assert_string_equal(text, "handle_socket_error_msg@1721: Socket gone");
	assert_int_equal(zk_client_line_level("x:ZOO_WARN@f@1: w", &text), LOG_LEVEL_WARN);
	assert_int_equal(zk_client_line_level("x:ZOO_INFO@f@1: i", &text), LOG_LEVEL_INFO);
	assert_int_equal(zk_client_line_level("x:ZOO_DEBUG@f@1: d", &text), LOG_LEVEL_DEBUG);
	assert_int_equal(zk_client_line_level("no level at all", &text), LOG_LEVEL_WARN);
	assert_string_equal(text, "no level at all");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(terminated_owner_is_taken_at_once_unless_registered),
		cmocka_unit_test(running_and_pending_owners_are_never_taken),
		cmocka_unit_test(shutting_down_owner_is_waited_for),
		cmocka_unit_test(unknown_owner_is_taken_only_after_the_grace_period),
		cmocka_unit_test(stopped_owner_is_taken_only_with_the_flag),
		cmocka_unit_test(owner_state_names_are_ec2s),
		cmocka_unit_test(pick_spreads_instances_over_the_candidates),
		cmocka_unit_test(pick_is_deterministic_in_range_and_moves_with_the_attempt),
		cmocka_unit_test(id_parsing_accepts_only_canonical_decimal),
		cmocka_unit_test(record_round_trips_with_the_pinned_members),
		cmocka_unit_test(record_parse_rejects_what_is_not_a_claim),
		cmocka_unit_test(connect_string_splits_hosts_and_chroot),
		cmocka_unit_test(client_log_lines_keep_their_level),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
