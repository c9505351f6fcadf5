/* spawn.h: run one program with an argv (no shell), collect what it prints, within a deadline.
 *
 * For the few programs the tool execs on purpose (mkfs.xfs, mkfs.ext4, cfn-signal). The
 * program is found through PATH, so tests can put a recording shim first; its standard input
 * is /dev/null, so a program that would ask for confirmation reads end of file and gives up
 * instead of waiting on a console nobody watches. */
#ifndef KB_SPAWN_H
#define KB_SPAWN_H

#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

struct spawn_result {
	int exit_status; /* exit code; 128 + signal number when killed by a signal */
	char *output;    /* standard output and error interleaved, NUL-terminated */
	size_t output_len;
};

/* Runs argv[0] (looked up in PATH) with argv; returns 0 once it ran to its end, whatever its
 * exit status, -ENOENT when no such program, -ETIMEDOUT when the deadline passed (the program
 * is then killed and reaped). out is filled on 0 and must be released with spawn_result_clear. */
int spawn_run(char *const argv[], int64_t deadline, struct spawn_result *out,
	      struct kb_error *err);
void spawn_result_clear(struct spawn_result *res);
/* The last non-empty line of the output (for an error message), borrowed; "" when none. */
const char *spawn_last_line(struct spawn_result *res);

#endif
