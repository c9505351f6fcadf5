/* spawn: argv without a shell, output captured, exit status and signals reported, a missing
 * program named, a program past the deadline killed and reaped. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "kb/deadline.h"
#include "kb/spawn.h"

static void output_and_exit_status_are_collected(void **state)
{
	char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	struct spawn_result res;

	(void)state;
	assert_int_equal(spawn_run(argv, deadline_after_ms(5000), &res, NULL), 0);
	assert_int_equal(res.exit_status, 3);
	assert_non_null(strstr(res.output, "out\n"));
	assert_non_null(strstr(res.output, "err\n"));
	spawn_result_clear(&res);
}

static void arguments_are_passed_as_they_are(void **state)
{
	char *argv[] = {"printf", "%s|", "a b", "$HOME", ";rm -rf /", NULL};
	struct spawn_result res;

	(void)state;
	assert_int_equal(spawn_run(argv, deadline_after_ms(5000), &res, NULL), 0);
	assert_int_equal(res.exit_status, 0);
	assert_string_equal(res.output, "a b|$HOME|;rm -rf /|");
	spawn_result_clear(&res);
}

static void standard_input_is_empty(void **state)
{
	char *argv[] = {"sh", "-c", "read line || echo eof", NULL};
	struct spawn_result res;

	(void)state;
	assert_int_equal(spawn_run(argv, deadline_after_ms(5000), &res, NULL), 0);
	assert_string_equal(spawn_last_line(&res), "eof");
	spawn_result_clear(&res);
}

static void missing_program_is_enoent(void **state)
{
	char *argv[] = {"kb-no-such-program", NULL};
	struct kb_error err = {{0}};
	struct spawn_result res;

	(void)state;
	assert_int_equal(spawn_run(argv, deadline_after_ms(5000), &res, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "kb-no-such-program"));
}

static void program_past_the_deadline_is_killed(void **state)
{
	char *argv[] = {"sleep", "30", NULL};
	struct kb_error err = {{0}};
	struct spawn_result res;
	int64_t started = deadline_now_ms();

	(void)state;
	assert_int_equal(spawn_run(argv, deadline_after_ms(200), &res, &err), -ETIMEDOUT);
	assert_true(deadline_now_ms() - started < 5000);
	assert_non_null(strstr(err.msg, "killed"));
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* reaped: no child left */
}

static void killed_by_a_signal_reads_128_plus_it(void **state)
{
	char *argv[] = {"sh", "-c", "kill -TERM $$", NULL};
	struct spawn_result res;

	(void)state;
	assert_int_equal(spawn_run(argv, deadline_after_ms(5000), &res, NULL), 0);
	assert_int_equal(res.exit_status, 128 + 15);
	spawn_result_clear(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(output_and_exit_status_are_collected),
		cmocka_unit_test(arguments_are_passed_as_they_are),
		cmocka_unit_test(standard_input_is_empty),
		cmocka_unit_test(missing_program_is_enoent),
		cmocka_unit_test(program_past_the_deadline_is_killed),
		cmocka_unit_test(killed_by_a_signal_reads_128_plus_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
