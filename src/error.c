/* error.c: error messages and the one mapping from return values to exit codes. */
#include "kb/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int kb_errorf(struct kb_error *err, int code, const char *fmt, ...)
{
	if (err && err->msg[0] == '\0') {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code > 0 ? -code : code;
}

void kb_error_prefix(struct kb_error *err, const char *fmt, ...)
{
	char context[KB_ERROR_MAX];
	/* Room for both parts; the result is cut to the buffer below, on purpose. */
	char joined[2 * KB_ERROR_MAX + 2];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(context, sizeof(context), fmt, ap);
	va_end(ap);
	if (err->msg[0] == '\0')
		snprintf(joined, sizeof(joined), "%s", context);
	else
		snprintf(joined, sizeof(joined), "%s: %s", context, err->msg);
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
}

void kb_error_clear(struct kb_error *err)
{
	if (err)
		err->msg[0] = '\0';
}

int kb_exit_code(int ret)
{
	switch (-ret) {
	case 0:
		return KB_EXIT_OK;
	case KB_EUSAGE:
		return KB_EXIT_USAGE;
	case KB_ECONFIG:
		return KB_EXIT_CONFIG;
	case KB_EUNAVAIL:
		return KB_EXIT_UNAVAILABLE;
	case KB_ETIMEOUT:
	case ETIMEDOUT:
		return KB_EXIT_DEADLINE;
	case KB_EDENIED:
		return KB_EXIT_DENIED;
	case KB_ENOID:
		return KB_EXIT_NO_ID;
	case KB_EFOREIGN:
		return KB_EXIT_FOREIGN_VOLUME;
	case KB_EFORMAT:
		return KB_EXIT_REFUSED_FORMAT;
	case KB_EHELD:
		return KB_EXIT_HELD;
	case KB_ESIGNAL:
		return KB_EXIT_SIGNAL;
	default:
		return KB_EXIT_INTERNAL;
	}
}

const char *kb_exit_name(int exit_code)
{
	switch (exit_code) {
	case KB_EXIT_OK:
		return "OK";
	case KB_EXIT_NO_ID:
		return "NO_ID";
	case KB_EXIT_FOREIGN_VOLUME:
		return "FOREIGN_VOLUME";
	case KB_EXIT_REFUSED_FORMAT:
		return "REFUSED_FORMAT";
	case KB_EXIT_HELD:
		return "HELD";
	case KB_EXIT_SIGNAL:
		return "SIGNAL";
	case KB_EXIT_USAGE:
		return "USAGE";
	case KB_EXIT_UNAVAILABLE:
		return "UNAVAILABLE";
	case KB_EXIT_DEADLINE:
		return "DEADLINE";
	case KB_EXIT_DENIED:
		return "DENIED";
	case KB_EXIT_CONFIG:
		return "CONFIG";
	default:
		return "INTERNAL";
	}
}

const char *kb_exit_hint(int exit_code)
{
	switch (exit_code) {
	case KB_EXIT_OK:
		return "nothing to do";
	case KB_EXIT_NO_ID:
		return "every broker id in this AZ is held: check the holders listed above, "
		       "terminate or `release` a dead one, or add a broker (ENI and volume)";
	case KB_EXIT_FOREIGN_VOLUME:
		return "the volume's meta.properties names another broker: check the volume's tags "
		       "before anything else; Kafka was not started";
	case KB_EXIT_REFUSED_FORMAT:
		return "the volume holds a signature that is not a filesystem: inspect it by hand; "
		       "nothing was written";
	case KB_EXIT_HELD:
		return "the ENI or volume is attached to a running instance, lives in another AZ, "
		       "or shares its tag with another one (both listed): find that instance, or "
		       "retag or delete the copy; kafka-bootstrap never detaches from a healthy "
		       "broker and never guesses between two";
	case KB_EXIT_SIGNAL:
		return "the node is configured but CloudFormation or Auto Scaling was not told: "
		       "check the instance role and rerun `kafka-bootstrap signal`";
	case KB_EXIT_USAGE:
		return "see kafka-bootstrap --help";
	case KB_EXIT_UNAVAILABLE:
		return "a dependency (IMDS, EC2, ZooKeeper) did not answer: check connectivity, "
		       "then rerun `kafka-bootstrap run`";
	case KB_EXIT_DEADLINE:
		return "a state did not arrive in time: rerun `kafka-bootstrap run`, it resumes "
		       "where it stopped";
	case KB_EXIT_DENIED:
		return "the instance role lacks a permission: compare its policy with the "
		       "CloudFormation template's";
	case KB_EXIT_CONFIG:
		return "fix the configuration key named above (kafka-bootstrap config --keys)";
	default:
		return "this is a bug or an unexpected state: rerun with --log-level debug and "
		       "report it";
	}
}
