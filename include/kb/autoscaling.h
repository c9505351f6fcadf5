/* autoscaling.h: the Auto Scaling calls that let a group replace a node that cannot become
 * healthy (Query API, Version 2011-01-01). */
#ifndef KB_AUTOSCALING_H
#define KB_AUTOSCALING_H

#include <stdbool.h>
#include <stdint.h>

#include "kb/error.h"

struct aws_ctx;

#define AUTOSCALING_API_VERSION "2011-01-01"

int autoscaling_set_instance_health(struct aws_ctx *ctx, const char *instance_id, bool healthy,
				    bool respect_grace_period, int64_t deadline,
				    struct kb_error *err);
/* result_continue: CONTINUE, else ABANDON. -EALREADY when no lifecycle action is pending for
 * the instance (completed before, by a reboot's earlier run, or timed out): the caller logs it
 * at info and does not count it as a failure. */
int autoscaling_complete_lifecycle_action(struct aws_ctx *ctx, const char *group,
					  const char *hook, const char *instance_id,
					  bool result_continue, int64_t deadline,
					  struct kb_error *err);

#endif
