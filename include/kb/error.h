/* error.h: how every function in kafka-bootstrap reports failure.
 *
 * A function returns 0 or a negative code: a negated errno value, or a negated KB_E* value for
 * the causes an operator must tell apart (they map one to one onto documented exit codes, see
 * kb_exit_code()). The message goes into a struct kb_error owned by the caller: the first,
 * most specific message wins the buffer; callers add context in front with kb_error_prefix(). */
#ifndef KB_ERROR_H
#define KB_ERROR_H

#include <stddef.h>

/* Above any errno value, so the two ranges never collide. */
enum kb_err_code {
	KB_EUSAGE = 4096, /* bad command line: exit 64 */
	KB_ECONFIG,       /* configuration unreadable or invalid: exit 78 */
	KB_EUNAVAIL,      /* a dependency (IMDS, EC2, ZooKeeper) unreachable until the deadline: 69 */
	KB_ETIMEOUT,      /* a deadline passed while waiting on a state: 75 */
	KB_EDENIED,       /* IAM said no (UnauthorizedOperation, AccessDenied): 77 */
	KB_ENOID,         /* no broker id available: 10 */
	KB_EFOREIGN,      /* the volume belongs to another broker: 11 */
	KB_EFORMAT,       /* refused to format: a signature that is not a filesystem: 12 */
	KB_EHELD,         /* ENI or volume held by a running instance, or in another AZ: 13 */
	KB_ESIGNAL,       /* every stage succeeded but the signal failed: 14 */
	KB_EAWS,          /* any other error answered by an AWS API: 70 */
	KB_EINTERNAL,     /* a bug or an impossible state: 70 */
};

/* Exit codes, one documented table (README "Exit codes"). */
enum kb_exit {
	KB_EXIT_OK = 0,
	KB_EXIT_NO_ID = 10,
	KB_EXIT_FOREIGN_VOLUME = 11,
	KB_EXIT_REFUSED_FORMAT = 12,
	KB_EXIT_HELD = 13,
	KB_EXIT_SIGNAL = 14,
	KB_EXIT_USAGE = 64,
	KB_EXIT_UNAVAILABLE = 69,
	KB_EXIT_INTERNAL = 70,
	KB_EXIT_DEADLINE = 75,
	KB_EXIT_DENIED = 77,
	KB_EXIT_CONFIG = 78,
};

#define KB_ERROR_MAX 1024

struct kb_error {
	char msg[KB_ERROR_MAX];
};

/* Sets the message unless one is already there (the first, deepest one is the most specific).
 * Returns -code, so a failure reads `return kb_errorf(err, KB_EHELD, "...", ...);`.
 * code is a positive errno or KB_E* value. */
int kb_errorf(struct kb_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Puts "<context>: " in front of the current message (or makes it the message when empty). */
void kb_error_prefix(struct kb_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void kb_error_clear(struct kb_error *err);

/* Maps a function's return value (0 or negative) onto the documented exit code. */
int kb_exit_code(int ret);

/* Short name of an exit code for logs ("NO_ID", "DEADLINE", ...). */
const char *kb_exit_name(int exit_code);

/* What an operator should do about it, one sentence (console and status file). */
const char *kb_exit_hint(int exit_code);

#endif
