/* javaprops: the values Kafka's java.util.Properties would read from the same text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/javaprops.h"

static char *get(const char *text, const char *key)
{
	char *value = NULL;
	int r = javaprops_get(text, strlen(text), key, &value);

	return r == 0 ? value : NULL;
}

static void assert_value(const char *text, const char *key, const char *expected)
{
	char *value = get(text, key);

	if (!expected) {
		assert_null(value);
		return;
	}
	assert_non_null(value);
	assert_string_equal(value, expected);
	free(value);
}

static void separators_equal_colon_and_whitespace(void **state)
{
	(void)state;
	assert_value("broker.id=3\n", "broker.id", "3");
	assert_value("broker.id:3\n", "broker.id", "3");
	assert_value("broker.id 3\n", "broker.id", "3");
	assert_value("  broker.id \t=  3\n", "broker.id", "3");
	assert_value("broker.id = = 3\n", "broker.id", "= 3");
	assert_value("broker.id\n", "broker.id", "");
}

static void comments_and_blank_lines_are_skipped(void **state)
{
	(void)state;
	assert_value("#broker.id=1\n!broker.id=2\n\n   \nnode.id=4", "broker.id", NULL);
	assert_value("  # broker.id=1\nnode.id=4", "node.id", "4");
}

static void last_definition_wins(void **state)
{
	(void)state;
	assert_value("broker.id=1\nbroker.id=2\r\nbroker.id=3\r", "broker.id", "3");
}

static void continuation_lines_join_without_leading_whitespace(void **state)
{
	(void)state;
	assert_value("listeners=PLAINTEXT://a:9092,\\\n    SSL://b:9093\n", "listeners",
		     "PLAINTEXT://a:9092,SSL://b:9093");
	/* an even number of backslashes is an escaped backslash, not a continuation */
	assert_value("path=C:\\\\\nbroker.id=3\n", "path", "C:\\");
	assert_value("path=C:\\\\\nbroker.id=3\n", "broker.id", "3");
	/* a comment line never continues */
	assert_value("# note \\\nbroker.id=3\n", "broker.id", "3");
}

static void escapes_are_undone_in_keys_and_values(void **state)
{
	(void)state;
	assert_value("a\\=b=c\n", "a=b", "c");
	assert_value("a\\ b=c\n", "a b", "c");
	assert_value("k=tab\\there\\nnl\n", "k", "tab\there\nnl");
	assert_value("k=\\u00e9t\\u00E9\n", "k", "\xc3\xa9t\xc3\xa9");
	assert_value("k=\\u20ac\n", "k", "\xe2\x82\xac");
	assert_value("k=\\q\n", "k", "q");
}

static void malformed_unicode_escape_is_an_error(void **state)
{
	char *value = NULL;

	(void)state;
	assert_int_equal(javaprops_get("k=\\u12g4\n", 9, "k", &value), -EINVAL);
	assert_null(value);
}

static void text_is_not_nul_terminated_beyond_len(void **state)
{
	const char text[] = "broker.id=35";
	char *value = NULL;

	(void)state;
	assert_int_equal(javaprops_get(text, 11, "broker.id", &value), 0);
	assert_string_equal(value, "3");
	free(value);
}

static int count_cb(const char *key, const char *value, void *ctx)
{
	(void)key;
	(void)value;
	return ++*(int *)ctx == 2 ? -ECANCELED : 0;
}

static void callback_can_stop_the_walk(void **state)
{
	const char *text = "a=1\nb=2\nc=3\n";
	int seen = 0;

	(void)state;
	assert_int_equal(javaprops_parse(text, strlen(text), count_cb, &seen), -ECANCELED);
	assert_int_equal(seen, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(separators_equal_colon_and_whitespace),
		cmocka_unit_test(comments_and_blank_lines_are_skipped),
		cmocka_unit_test(last_definition_wins),
		cmocka_unit_test(continuation_lines_join_without_leading_whitespace),
		cmocka_unit_test(escapes_are_undone_in_keys_and_values),
		cmocka_unit_test(malformed_unicode_escape_is_an_error),
		cmocka_unit_test(text_is_not_nul_terminated_beyond_len),
		cmocka_unit_test(callback_can_stop_the_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
