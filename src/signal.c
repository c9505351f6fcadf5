/* signal.c: tells CloudFormation and Auto Scaling the truth about this node.
 *
 * SUCCESS means Kafka registered, so by default `run` does not send it: `signal
 * --wait-registered`, started after kafka.service, waits for /brokers/ids/<id> with this
 * broker's advertised endpoint and sends it then. A failure is told at once, as configured by
 * on_failure: a FAILURE signal (which fails a stack operation waiting for signals), Unhealthy
 * to Auto Scaling (which replaces the node when no stack waits), ABANDON to a launch lifecycle
 * hook. SignalResource carries no reason: the reason goes to the log, the status file and the
 * console (pipeline.c). A signal that cannot be sent is an error of its own (exit 14) but never
 * hides the failure it was reporting. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/autoscaling.h"
#include "kb/aws.h"
#include "kb/cfn.h"
#include "kb/cli.h"
#include "kb/deadline.h"
#include "kb/ec2.h"
#include "kb/imds.h"
#include "kb/log.h"
#include "kb/stages.h"

#define TAG_STACK_ID "aws:cloudformation:stack-id"
#define TAG_STACK_NAME "aws:cloudformation:stack-name"
#define TAG_LOGICAL_ID "aws:cloudformation:logical-id"
#define TAG_GROUP "aws:autoscaling:groupName"

struct signal_target {
	char *stack;      /* name or ARN; NULL: not launched by CloudFormation */
	char *logical_id;
	char *group;      /* NULL: not in an Auto Scaling group */
};

static void target_clear(struct signal_target *t)
{
	free(t->stack);
	free(t->logical_id);
	free(t->group);
	memset(t, 0, sizeof(*t));
}

static char *trimmed(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* One tag of this instance: IMDS first (instance metadata tags, no IAM permission needed),
 * else DescribeTags. -ENOENT when the instance has no such tag. */
static int instance_tag(struct kb_run *run, const char *key, struct ec2_tag **tags,
			size_t *tag_count, bool *described, char **out)
{
	char path[256];
	const char *value;
	int ret;

	*out = NULL;
	snprintf(path, sizeof(path), "meta-data/tags/instance/%s", key);
	ret = imds_get(run->imds, path, run->stage_deadline, out, &run->err);
	if (ret == 0) {
		trimmed(*out);
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	kb_error_clear(&run->err);
	/* 404: the tag is absent, or metadata tags are off; only EC2 can say which. */
	if (!*described) {
		ret = ec2_describe_tags(run->aws, run->identity.instance_id, run->stage_deadline,
					tags, tag_count, &run->err);
		if (ret < 0)
			return ret;
		*described = true;
	}
	value = ec2_tag_value(*tags, *tag_count, key);
	if (!value)
		return -ENOENT;
	*out = strdup(value);
	return *out ? 0 : -ENOMEM;
}

/* Configuration first, then the tags CloudFormation and Auto Scaling put on the instance.
 * The stack id (an ARN) is preferred to the name: it names this stack even after a delete
 * and re-create under the same name. */
static int resolve_target(struct kb_run *run, struct signal_target *t)
{
	const struct kb_config *cfg = run->cfg;
	struct ec2_tag *tags = NULL;
	size_t tag_count = 0;
	bool described = false;
	int ret = 0;

	memset(t, 0, sizeof(*t));
	if (cfg->stack_name[0])
		t->stack = strdup(cfg->stack_name);
	else if ((ret = instance_tag(run, TAG_STACK_ID, &tags, &tag_count, &described,
				     &t->stack)) == -ENOENT)
		ret = instance_tag(run, TAG_STACK_NAME, &tags, &tag_count, &described, &t->stack);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	if (cfg->logical_resource_id[0])
		t->logical_id = strdup(cfg->logical_resource_id);
	else if (t->stack)
		ret = instance_tag(run, TAG_LOGICAL_ID, &tags, &tag_count, &described,
				   &t->logical_id);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	if (cfg->autoscaling_group[0])
		t->group = strdup(cfg->autoscaling_group);
	else
		ret = instance_tag(run, TAG_GROUP, &tags, &tag_count, &described, &t->group);
	if (ret == -ENOENT)
		ret = 0;
out:
	ec2_tags_free(tags, tag_count);
	if (ret < 0)
		kb_error_prefix(&run->err, "reading the instance's stack and group tags");
	return ret;
}

static int send_cfn(struct kb_run *run, const struct signal_target *t, bool success)
{
	const struct kb_config *cfg = run->cfg;
	const char *status = success ? "SUCCESS" : "FAILURE";
	int ret;

	if (cfg->signal_mode == CONFIG_SIGNAL_NONE)
		return 0;
	if (!t->stack || !t->logical_id) {
		log_info("signal: no CloudFormation stack or logical id (config or instance tags): "
			 "no %s signal to send", status);
		return 0;
	}
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "signal %s to stack %s resource %s", status, t->stack,
			      t->logical_id);
		return 0;
	}
	if (cfg->signal_mode == CONFIG_SIGNAL_CFN_SIGNAL)
		ret = cfn_signal_exec(cfg->cfn_signal_path, t->stack, t->logical_id,
				      aws_ctx_region(run->aws), run->identity.instance_id, success,
				      run->stage_deadline, &run->err);
	else
		ret = cfn_signal_resource(run->aws, t->stack, t->logical_id,
					  run->identity.instance_id, success, run->stage_deadline,
					  &run->err);
	if (ret == -EALREADY) {
		/* Every replacement launched after the stack settled gets this: not a failure. */
		log_info("signal: stack %s is not waiting for signals; %s not needed", t->stack,
			 status);
		kb_error_clear(&run->err);
		return 0;
	}
	if (ret < 0) {
		kb_error_prefix(&run->err, "signal %s to stack %s resource %s", status, t->stack,
				t->logical_id);
		return ret;
	}
	kb_run_change(run, "signalled %s to stack %s resource %s", status, t->stack,
		      t->logical_id);
	return 0;
}

static int send_lifecycle(struct kb_run *run, const struct signal_target *t, bool proceed)
{
	const char *result = proceed ? "CONTINUE" : "ABANDON";
	int ret;

	if (!(run->cfg->on_failure & CONFIG_ON_FAILURE_LIFECYCLE))
		return 0;
	if (!t->group)
		return kb_errorf(&run->err, KB_ECONFIG,
				 "lifecycle hook %s: no Auto Scaling group (config autoscaling_group "
				 "or instance tag " TAG_GROUP ")", run->cfg->lifecycle_hook);
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "complete lifecycle hook %s of %s with %s",
			      run->cfg->lifecycle_hook, t->group, result);
		return 0;
	}
	ret = autoscaling_complete_lifecycle_action(run->aws, t->group, run->cfg->lifecycle_hook,
						    run->identity.instance_id, proceed,
						    run->stage_deadline, &run->err);
	if (ret < 0)
		return ret;
	kb_run_change(run, "completed lifecycle hook %s of %s with %s", run->cfg->lifecycle_hook,
		      t->group, result);
	return 0;
}

static int send_unhealthy(struct kb_run *run, const struct signal_target *t)
{
	int ret;

	if (!(run->cfg->on_failure & CONFIG_ON_FAILURE_UNHEALTHY))
		return 0;
	if (!t->group) {
		log_info("signal: not in an Auto Scaling group: no health to set");
		return 0;
	}
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "set instance %s Unhealthy in %s", run->identity.instance_id,
			      t->group);
		return 0;
	}
	/* Not respecting the grace period: the node will not get better by waiting. */
	ret = autoscaling_set_instance_health(run->aws, run->identity.instance_id, false, false,
					      run->stage_deadline, &run->err);
	if (ret < 0)
		return ret;
	kb_run_change(run, "set instance %s Unhealthy in %s: the group replaces it",
		      run->identity.instance_id, t->group);
	return 0;
}

/* Every configured channel is tried even when one fails: each is a separate chance that
 * someone learns about the broken node. The first error is returned. */
static int tell(struct kb_run *run, bool success)
{
	struct signal_target t;
	int first = 0;
	int ret;

	if (!run->aws || !run->identity.instance_id)
		return kb_errorf(&run->err, KB_EUNAVAIL,
				 "cannot signal: no instance identity or AWS access (the identity "
				 "stage did not complete)");
	ret = resolve_target(run, &t);
	if (ret < 0)
		return ret;
	if (success || (run->cfg->on_failure & CONFIG_ON_FAILURE_SIGNAL))
		first = send_cfn(run, &t, success);
	if (!success) {
		ret = send_unhealthy(run, &t);
		if (ret < 0 && first == 0)
			first = ret;
	}
	ret = send_lifecycle(run, &t, success);
	if (ret < 0 && first == 0)
		first = ret;
	target_clear(&t);
	return first;
}

int signal_stage(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	bool failed = run->failed_stage >= 0;

	if (run->prerequisite)
		return 0;
	if (failed && !(cfg->on_failure & CONFIG_ON_FAILURE_SIGNAL) &&
	    !(cfg->on_failure & CONFIG_ON_FAILURE_UNHEALTHY) &&
	    !(cfg->on_failure & CONFIG_ON_FAILURE_LIFECYCLE)) {
		kb_run_skip(run, "on_failure is empty: nobody is told");
		return 0;
	}
	if (!failed && cfg->success_signal == CONFIG_SUCCESS_ON_REGISTERED) {
		kb_run_skip(run, "SUCCESS comes from `signal --wait-registered` once Kafka "
				 "registered");
		return 0;
	}
	return tell(run, !failed);
}

/* `kafka-bootstrap signal --success|--failure`: an operator's signal, after a repair by hand.
 * Exit 14 when it could not be sent. */
int signal_command(const struct kb_options *opts, const struct kb_config *cfg)
{
	struct kb_run run;
	int exit_code;
	int ret;

	if (opts->signal_status == CLI_SIGNAL_NONE && !opts->wait_registered) {
		fprintf(stderr, "kafka-bootstrap: signal needs --wait-registered, --success or "
			"--failure (try 'kafka-bootstrap --help')\n");
		return KB_EXIT_USAGE;
	}
	if (opts->wait_registered) {
		log_error("signal --wait-registered: not implemented yet");
		return KB_EXIT_INTERNAL;
	}
	kb_run_init(&run, cfg, KB_MODE_RUN);
	run.current_stage = STAGE_SIGNAL;
	run.stage_deadline = deadline_min(
		run.deadline, deadline_after_ms((int64_t)cfg->stage_deadline_s[STAGE_SIGNAL] * 1000));
	ret = identity_stage(&run);
	if (ret < 0) {
		exit_code = kb_exit_code(ret);
		log_error("signal: %s", run.err.msg);
		goto out;
	}
	ret = tell(&run, opts->signal_status == CLI_SIGNAL_SUCCESS);
	exit_code = ret < 0 ? KB_EXIT_SIGNAL : KB_EXIT_OK;
	if (ret < 0)
		log_error("signal: %s", run.err.msg);
out:
	run.current_stage = -1;
	kb_run_release(&run);
	return exit_code;
}
