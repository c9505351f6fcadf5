/* server.properties: Java's reading rules (last occurrence wins, continuations, separators,
 * escapes), setting keys without disturbing the operator's lines, and escaping values so Java
 * reads back exactly what was set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/properties.h"

static struct properties *parse(const char *text)
{
	struct properties *p = properties_parse_new(text, strlen(text), NULL);

	assert_non_null(p);
	return p;
}

static void check_value(const struct properties *p, const char *key, const char *value)
{
	char *got = properties_get_new(p, key);

	if (!value) {
		assert_null(got);
		return;
	}
	if (!got || strcmp(got, value) != 0)
		fail_msg("%s: expected '%s', got '%s'", key, value, got ? got : "(absent)");
	free(got);
}

static void reads_values_as_java_does(void **state)
{
	struct properties *p = parse(
		"# comment = not a key\n"
		"! also a comment\n"
		"   \n"
		"a=1\n"
		"b : 2\n"
		"c 3\n"
		"  d   =   spaced value  \n"
		"e\\ key=with space in key\n"
		"f=multi \\\n"
		"    line \\\n"
		"  value\n"
		"g=ends with backslash\\\\\n"
		"h=\\u0041\\t\\u00e9\n"
		"a=last wins\n"
		"# comment ending in backslash \\\n"
		"i=after comment\n"
		"j\n"
		"k=no newline at end");

	(void)state;
	check_value(p, "a", "last wins");
	check_value(p, "b", "2");
	check_value(p, "c", "3");
	check_value(p, "d", "spaced value  ");
	check_value(p, "e key", "with space in key");
	check_value(p, "f", "multi line value");
	check_value(p, "g", "ends with backslash\\");
	check_value(p, "h", "A\t\xc3\xa9");
	check_value(p, "i", "after comment");
	check_value(p, "j", "");
	check_value(p, "k", "no newline at end");
	check_value(p, "comment", NULL);
	properties_free(p);
}

static void setting_a_key_keeps_every_other_line_byte_for_byte(void **state)
{
	const char *original = "# Operator's settings\r\n"
			       "num.network.threads=3\r\n"
			       "broker.id=1\r\n"
			       "# keep me\r\n"
			       "log.retention.hours=168\r\n";
	struct properties *p = parse(original);
	struct kb_error err = {{0}};
	char *text;

	(void)state;
	assert_int_equal(properties_set(p, "broker.id", "7", &err), 1);
	text = properties_format_new(p, NULL);
	assert_string_equal(text, "# Operator's settings\r\n"
				  "num.network.threads=3\r\n"
				  "broker.id=7\n"
				  "# keep me\r\n"
				  "log.retention.hours=168\r\n");
	free(text);
	properties_free(p);
}

static void later_duplicates_are_removed_so_java_reads_the_value_set(void **state)
{
	struct properties *p = parse("broker.id=1\nx=y\nbroker.id = 2\nbroker.id: 3\n");
	struct kb_error err = {{0}};
	char *text;

	(void)state;
	assert_int_equal(properties_set(p, "broker.id", "4", &err), 1);
	text = properties_format_new(p, NULL);
	assert_string_equal(text, "broker.id=4\nx=y\n");
	free(text);
	check_value(p, "broker.id", "4");
	properties_free(p);
}

static void setting_the_same_value_changes_nothing(void **state)
{
	const char *original = "broker.rack = use1-az6\nlisteners=PLAINTEXT://10.0.1.5:9092\n";
	struct properties *p = parse(original);
	struct kb_error err = {{0}};
	char *text;

	(void)state;
	assert_int_equal(properties_set(p, "broker.rack", "use1-az6", &err), 0);
	assert_int_equal(properties_set(p, "listeners", "PLAINTEXT://10.0.1.5:9092", &err), 0);
	text = properties_format_new(p, NULL);
	assert_string_equal(text, original);
	free(text);
	properties_free(p);
}

static void absent_keys_are_appended_after_a_terminated_last_line(void **state)
{
	struct properties *p = parse("a=1");
	struct kb_error err = {{0}};
	char *text;

	(void)state;
	assert_int_equal(properties_set(p, "log.dirs", "/var/lib/kafka/logs", &err), 1);
	text = properties_format_new(p, NULL);
	assert_string_equal(text, "a=1\nlog.dirs=/var/lib/kafka/logs\n");
	free(text);
	properties_free(p);
}

static void appending_after_a_dangling_continuation_does_not_join_it(void **state)
{
	const char *files[] = {"a=x\\\n", "a=x\\", "a=x\\\\\n", "a=x\\\r"};
	const char *expected_a[] = {"x", "x", "x\\", "x"};

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		struct properties *p = parse(files[i]);
		struct properties *again;
		struct kb_error err = {{0}};
		char *text;

		assert_int_equal(properties_set(p, "broker.id", "7", &err), 1);
		text = properties_format_new(p, NULL);
		again = parse(text);
		check_value(again, "broker.id", "7");
		check_value(again, "a", expected_a[i]);
		properties_free(again);
		properties_free(p);
		free(text);
	}
}

static void values_are_escaped_for_iso_8859_1_and_read_back_identically(void **state)
{
	const char *values[] = {
		" leading space", "back\\slash", "tab\there", "new\nline", "caf\xc3\xa9",
		"\xe2\x82\xac euro", "\xf0\x9f\x98\x80 emoji", "a=b:c#d!e", "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		struct properties *p = parse("");
		struct properties *again;
		struct kb_error err = {{0}};
		char *text;

		assert_int_equal(properties_set(p, "k", values[i], &err), 1);
		text = properties_format_new(p, NULL);
		for (const char *c = text; *c; c++)
			assert_true(*c == '\n' || (*c >= 0x20 && *c <= 0x7e));
		again = parse(text);
		check_value(again, "k", values[i]);
		properties_free(again);
		properties_free(p);
		free(text);
	}
}

static void invalid_utf8_is_refused(void **state)
{
	struct properties *p = parse("");
	struct kb_error err = {{0}};
	char *escaped;

	(void)state;
	assert_int_equal(properties_set(p, "k", "bad \xc3(", &err), -KB_ECONFIG);
	assert_non_null(strstr(err.msg, "not valid UTF-8"));
	escaped = properties_escape_value_new("\xed\xa0\x80"); /* a lone surrogate */
	assert_null(escaped);
	escaped = properties_escape_value_new("\xc0\xaf"); /* overlong '/' */
	assert_null(escaped);
	properties_free(p);
}

static void a_nul_byte_is_refused_not_truncated(void **state)
{
	struct kb_error err = {{0}};

	(void)state;
	assert_null(properties_parse_new("a=1\nb\0=2\n", 9, &err));
	assert_string_equal(err.msg, "a NUL byte at offset 5: not a properties file");
}

static void templates_expand_every_placeholder(void **state)
{
	struct properties_vars vars = {"10.0.1.23", 3, "us-east-1a", "use1-az6"};
	struct kb_error err = {{0}};
	char *out;

	(void)state;
	out = properties_expand_new("PLAINTEXT://{ip}:9092,INTERNAL://{ip}:9093 {broker_id} {az} "
				    "{az_id}", &vars, &err);
	assert_string_equal(out, "PLAINTEXT://10.0.1.23:9092,INTERNAL://10.0.1.23:9093 3 "
				 "us-east-1a use1-az6");
	free(out);
	assert_null(properties_expand_new("{host}", &vars, &err));
	assert_non_null(strstr(err.msg, "unknown placeholder '{host}'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_values_as_java_does),
		cmocka_unit_test(setting_a_key_keeps_every_other_line_byte_for_byte),
		cmocka_unit_test(later_duplicates_are_removed_so_java_reads_the_value_set),
		cmocka_unit_test(setting_the_same_value_changes_nothing),
		cmocka_unit_test(absent_keys_are_appended_after_a_terminated_last_line),
		cmocka_unit_test(appending_after_a_dangling_continuation_does_not_join_it),
		cmocka_unit_test(values_are_escaped_for_iso_8859_1_and_read_back_identically),
		cmocka_unit_test(invalid_utf8_is_refused),
		cmocka_unit_test(a_nul_byte_is_refused_not_truncated),
		cmocka_unit_test(templates_expand_every_placeholder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
