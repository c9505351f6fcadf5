/* cfn.h: CloudFormation SignalResource, natively or through the operator's cfn-signal.
 *
 * SignalResource carries no reason (StackName, LogicalResourceId, UniqueId, Status only); the
 * reason of a FAILURE goes to the log, the status file and the console (signal.c). */
#ifndef KB_CFN_H
#define KB_CFN_H

#include <stdbool.h>
#include <stdint.h>

#include "kb/error.h"

struct aws_ctx;

#define CFN_API_VERSION "2010-05-15"

/* 0: accepted. -EALREADY: ValidationError "... cannot be signaled" (the resource is not
 * waiting for signals: an instance launched after the stack settled), which the caller logs at
 * info and does not count as a failure. Other errors as aws_query. */
int cfn_signal_resource(struct aws_ctx *ctx, const char *stack, const char *logical_id,
			const char *unique_id, bool success, int64_t deadline,
			struct kb_error *err);

/* Runs `<path> --success true|false --stack S --resource R --region REG --id ID` (no shell)
 * and waits for it within the deadline. 0: it exited 0. -EALREADY: it failed printing
 * "... cannot be signaled" (as cfn_signal_resource). Another non-zero exit: -EIO with its
 * last line. */
int cfn_signal_exec(const char *path, const char *stack, const char *logical_id,
		    const char *region, const char *unique_id, bool success, int64_t deadline,
		    struct kb_error *err);

#endif
