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
#include "kb/file.h"
#include "kb/log.h"
#include "kb/properties.h"
#include "kb/stages.h"
#include "kb/zk.h"

#include <jansson.h>

#define TAG_STACK_ID "aws:cloudformation:stack-id"
#define TAG_STACK_NAME "aws:cloudformation:stack-name"
#define TAG_LOGICAL_ID "aws:cloudformation:logical-id"
#define TAG_GROUP "aws:autoscaling:groupName"

struct signal_target {
	char *stack;      /* name or ARN; NULL: not launched by CloudFormation, or unknown */
	char *logical_id;
	char *group;      /* NULL: not in an Auto Scaling group, or unknown */
	int stack_ret;    /* < 0: the stack or its logical id could not be read (not: no tag) */
	int group_ret;    /* < 0: the group could not be read */
	const char *stack_keys;      /* the configuration keys that would have named them */
	struct kb_error stack_why;   /* why they could not be read */
	struct kb_error group_why;
	bool stack_needed;           /* a channel was not tried for want of the stack */
	bool group_needed;
};

static void target_clear(struct signal_target *t)
{
	free(t->stack);
	free(t->logical_id);
	free(t->group);
	memset(t, 0, sizeof(*t));
}

/* The instance's tags as DescribeTags answered them, asked at most once. */
struct tag_source {
	struct ec2_tag *tags;
	size_t count;
	int described;          /* 0: not asked; 1: answered; < 0: failed, why in err */
	struct kb_error err;
};

static char *trimmed(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* One tag of this instance: IMDS first (instance metadata tags, no IAM permission needed),
 * else DescribeTags. Once DescribeTags has answered, it has every tag: IMDS is not asked
 * again (its 404 would only say what the first one said); once it failed, it is not asked
 * again either (a denial will not change within the second). -ENOENT when the instance has
 * no such tag. */
static int instance_tag(struct kb_run *run, struct tag_source *src, const char *key,
			char **out, struct kb_error *err)
{
	char path[256];
	const char *value;
	int ret;

	*out = NULL;
	if (src->described <= 0) {
		snprintf(path, sizeof(path), "meta-data/tags/instance/%s", key);
		ret = imds_get(run->imds, path, run->stage_deadline, out, err);
		if (ret == 0) {
			trimmed(*out);
			return 0;
		}
		if (ret != -ENOENT)
			return ret;
		kb_error_clear(err);
	}
	/* 404: the tag is absent, or metadata tags are off; only EC2 can say which. */
	if (src->described == 0) {
		src->described = ec2_describe_tags(run->aws, run->identity.instance_id,
						   run->stage_deadline, &src->tags, &src->count,
						   &src->err);
		if (src->described == 0)
			src->described = 1;
	}
	if (src->described < 0) {
		*err = src->err;
		return src->described;
	}
	value = ec2_tag_value(src->tags, src->count, key);
	if (!value)
		return -ENOENT;
	*out = strdup(value);
	return *out ? 0 : kb_errorf(err, ENOMEM, "out of memory");
}

/* One name: configured, else the instance's tag key. 0 with *out NULL when the instance has no
 * such tag; < 0 when it could not be read, why in err. */
static int target_name(struct kb_run *run, struct tag_source *src, const char *configured,
		       const char *key, char **out, struct kb_error *err)
{
	int ret;

	if (configured[0]) {
		*out = strdup(configured);
		return *out ? 0 : kb_errorf(err, ENOMEM, "out of memory");
	}
	ret = instance_tag(run, src, key, out, err);
	if (ret == -ENOENT)
		return 0;
	/* No tag key here: the same DescribeTags failure reads the same for every name. */
	if (ret < 0)
		kb_error_prefix(err, "reading the instance's tags");
	return ret;
}

/* Configuration first, then the tags CloudFormation and Auto Scaling put on the instance.
 * The stack id (an ARN) is preferred to the name: it names this stack even after a delete
 * and re-create under the same name. A name that cannot be read (DescribeTags denied while
 * metadata tags are off) only stops the channels that need it: SetInstanceHealth needs none. */
static void resolve_target(struct kb_run *run, struct signal_target *t)
{
	const struct kb_config *cfg = run->cfg;
	struct tag_source src;

	memset(t, 0, sizeof(*t));
	memset(&src, 0, sizeof(src));
	t->stack_keys = cfg->logical_resource_id[0] ? "stack_name" :
		"stack_name and logical_resource_id";
	t->stack_ret = target_name(run, &src, cfg->stack_name, TAG_STACK_ID, &t->stack,
				   &t->stack_why);
	if (t->stack_ret == 0 && !t->stack && !cfg->stack_name[0])
		t->stack_ret = target_name(run, &src, "", TAG_STACK_NAME, &t->stack,
					   &t->stack_why);
	if (t->stack_ret == 0 && t->stack) {
		t->stack_ret = target_name(run, &src, cfg->logical_resource_id, TAG_LOGICAL_ID,
					   &t->logical_id, &t->stack_why);
		if (t->stack_ret < 0)
			t->stack_keys = "logical_resource_id";
	}
	t->group_ret = target_name(run, &src, cfg->autoscaling_group, TAG_GROUP, &t->group,
				   &t->group_why);
	ec2_tags_free(src.tags, src.count);
}

static int send_cfn(struct kb_run *run, struct signal_target *t, bool success)
{
	const struct kb_config *cfg = run->cfg;
	const char *status = success ? "SUCCESS" : "FAILURE";
	int ret;

	if (cfg->signal_mode == CONFIG_SIGNAL_NONE)
		return 0;
	if (t->stack_ret < 0) {
		t->stack_needed = true;
		return kb_errorf(&run->err, -t->stack_ret,
				 "%s not signalled: stack or logical id unknown (config %s)", status,
				 t->stack_keys);
	}
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

static int send_lifecycle(struct kb_run *run, struct signal_target *t, bool proceed)
{
	const char *result = proceed ? "CONTINUE" : "ABANDON";
	int ret;

	if (!(run->cfg->on_failure & CONFIG_ON_FAILURE_LIFECYCLE))
		return 0;
	if (t->group_ret < 0) {
		t->group_needed = true;
		return kb_errorf(&run->err, -t->group_ret,
				 "lifecycle hook %s not completed with %s: Auto Scaling group "
				 "unknown (config autoscaling_group)", run->cfg->lifecycle_hook,
				 result);
	}
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
	if (ret == -EALREADY) {
		log_info("signal: no pending lifecycle action %s for this instance (completed "
			 "before, or timed out): nothing to complete", run->cfg->lifecycle_hook);
		kb_error_clear(&run->err);
		return 0;
	}
	if (ret < 0)
		return ret;
	kb_run_change(run, "completed lifecycle hook %s of %s with %s", run->cfg->lifecycle_hook,
		      t->group, result);
	return 0;
}

/* SetInstanceHealth names the instance only: a group that could not be read does not stop it
 * (the group is only skipped when the instance has no group tag at all). */
static int send_unhealthy(struct kb_run *run, const struct signal_target *t)
{
	const char *group = t->group ? t->group : "its Auto Scaling group";
	int ret;

	if (!(run->cfg->on_failure & CONFIG_ON_FAILURE_UNHEALTHY))
		return 0;
	if (!t->group && t->group_ret == 0) {
		log_info("signal: not in an Auto Scaling group: no health to set");
		return 0;
	}
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "set instance %s Unhealthy in %s", run->identity.instance_id,
			      group);
		return 0;
	}
	/* Not respecting the grace period: the node will not get better by waiting. */
	ret = autoscaling_set_instance_health(run->aws, run->identity.instance_id, false, false,
					      run->stage_deadline, &run->err);
	if (ret < 0)
		return ret;
	kb_run_change(run, "set instance %s Unhealthy in %s: the group replaces it",
		      run->identity.instance_id, group);
	return 0;
}

static void add_reason(struct kb_error *reasons, const char *msg)
{
	/* Room for both parts; the result is cut to the buffer below, on purpose (error.c). */
	char joined[2 * KB_ERROR_MAX + 2];

	snprintf(joined, sizeof(joined), "%s%s%s", reasons->msg, reasons->msg[0] ? "; " : "",
		 msg);
	memcpy(reasons->msg, joined, sizeof(reasons->msg) - 1);
	reasons->msg[sizeof(reasons->msg) - 1] = '\0';
}

/* Adds a channel's failure to what tell() reports: each is a separate thing to fix, so none
 * hides another. */
static void collect(struct kb_run *run, int ret, struct kb_error *reasons, int *first)
{
	if (ret < 0) {
		add_reason(reasons, run->err.msg);
		if (*first == 0)
			*first = ret;
	}
	kb_error_clear(&run->err);
}

/* Every configured channel whose target is known is tried, even when another fails or
 * could not be named: each is a separate chance that someone learns about the broken node.
 * The first error is returned, with every failure in the message. */
static int tell(struct kb_run *run, bool success)
{
	struct kb_error reasons = {{0}};
	struct signal_target t;
	int first = 0;

	if (!run->aws || !run->identity.instance_id)
		return kb_errorf(&run->err, KB_EUNAVAIL,
				 "cannot signal: no instance identity or AWS access (the identity "
				 "stage did not complete)");
	kb_error_clear(&run->err);
	resolve_target(run, &t);
	if (success || (run->cfg->on_failure & CONFIG_ON_FAILURE_SIGNAL))
		collect(run, send_cfn(run, &t, success), &reasons, &first);
	if (!success)
		collect(run, send_unhealthy(run, &t), &reasons, &first);
	collect(run, send_lifecycle(run, &t, success), &reasons, &first);
	/* Why the names were missing, once when both had the same cause. */
	if (t.stack_needed)
		add_reason(&reasons, t.stack_why.msg);
	if (t.group_needed && !(t.stack_needed && strcmp(t.stack_why.msg, t.group_why.msg) == 0))
		add_reason(&reasons, t.group_why.msg);
	if (first < 0)
		run->err = reasons;
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

/* What Kafka must register: broker.id and the advertised endpoints of server.properties as
 * the properties stage wrote it (the live system, not a remembered value). */
struct expected_registration {
	int broker_id;
	char *endpoints; /* advertised.listeners, else listeners */
};

static int read_expected(const struct kb_config *cfg, struct expected_registration *exp,
			 struct kb_error *err)
{
	struct properties *props = NULL;
	char *text = NULL, *id = NULL, *end;
	size_t len;
	int ret;

	ret = file_read_all(cfg->properties_path, &text, &len, err);
	if (ret < 0)
		goto out;
	props = properties_parse_new(text, len, err);
	if (!props) {
		ret = -KB_ECONFIG;
		goto out;
	}
	id = properties_get_new(props, "broker.id");
	exp->endpoints = properties_get_new(props, "advertised.listeners");
	if (!exp->endpoints)
		exp->endpoints = properties_get_new(props, "listeners");
	exp->broker_id = id ? (int)strtol(id, &end, 10) : -1;
	if (!id || *end != '\0' || exp->broker_id < 0 || !exp->endpoints)
		ret = kb_errorf(err, KB_EINTERNAL, "no broker.id and listeners in %s: `run` has not "
				"completed on this node", cfg->properties_path);
out:
	if (ret < 0)
		kb_error_prefix(err, "what Kafka should register");
	properties_free(props);
	free(text);
	free(id);
	return ret;
}

/* Kafka's registration lists its endpoints in "endpoints"; they must be exactly the
 * advertised ones, in any order. Another set means another broker holds this id. */
static bool endpoints_match(const char *json, size_t len, const char *expected, char **found)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *endpoints = json_object_get(root, "endpoints");
	size_t wanted = 0, matched = 0, i;
	json_t *e;
	char *list = strdup(expected), *save = NULL;

	*found = json_is_array(endpoints) ? json_dumps(endpoints, JSON_COMPACT) : NULL;
	for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		wanted++;
		json_array_foreach(endpoints, i, e) {
			if (json_is_string(e) && strcmp(json_string_value(e), tok) == 0) {
				matched++;
				break;
			}
		}
	}
	bool same = wanted > 0 && matched == wanted && json_array_size(endpoints) == wanted;

	free(list);
	json_decref(root);
	return same;
}

/* Polls /brokers/ids/<id>: Kafka's registration is an ephemeral node created once the broker
 * joined the cluster; a watch would save a few reads a minute at the cost of a second code
 * path for session events, so this reads every half second. */
static int wait_registered(struct kb_run *run, const struct expected_registration *exp)
{
	const struct kb_config *cfg = run->cfg;
	int64_t deadline = deadline_after_ms((int64_t)cfg->register_deadline_s * 1000);
	struct zk_options zopts = {.connect = cfg->zookeeper_connect,
				   .auth = cfg->zookeeper_auth,
				   .session_timeout_ms = cfg->zookeeper_session_timeout_ms};
	char path[64], *last_found = NULL;
	struct zk *zk = NULL;
	int ret;

	snprintf(path, sizeof(path), "/brokers/ids/%d", exp->broker_id);
	ret = zk_open(&zopts, deadline, &zk, &run->err);
	while (ret == 0) {
		char *data = NULL, *found = NULL;
		size_t len = 0;

		ret = zk_get(zk, path, deadline, &data, &len, NULL, &run->err);
		if (ret == 0 && endpoints_match(data, len, exp->endpoints, &found)) {
			log_info("signal: Kafka registered broker %d at %s", exp->broker_id,
				 exp->endpoints);
			free(found);
			free(data);
			break;
		}
		if (ret == 0) {
			free(last_found);
			last_found = found;
		} else {
			free(found);
		}
		free(data);
		if (ret < 0 && ret != -ENOENT)
			break;
		kb_error_clear(&run->err);
		ret = deadline_sleep_ms(deadline, 500) ? 0 : -KB_ETIMEOUT;
	}
	if (ret == -KB_ETIMEOUT)
		kb_errorf(&run->err, KB_ETIMEOUT,
			  "Kafka did not register broker %d at %s within %d s%s%s%s", exp->broker_id,
			  exp->endpoints, cfg->register_deadline_s,
			  last_found ? " (registered instead at " : "", last_found ? last_found : "",
			  last_found ? ": another broker holds this id)" : "");
	free(last_found);
	zk_close(zk);
	return ret;
}

static int wait_then_tell(struct kb_run *run)
{
	struct expected_registration exp = {-1, NULL};
	struct kb_error verdict = {{0}};
	int ret;

	ret = read_expected(run->cfg, &exp, &run->err);
	if (ret == 0)
		ret = wait_registered(run, &exp);
	free(exp.endpoints);
	/* The signal's own budget starts now, not before a wait of minutes. */
	run->stage_deadline = deadline_after_ms(
		(int64_t)run->cfg->stage_deadline_s[STAGE_SIGNAL] * 1000);
	if (ret == 0)
		return tell(run, true) < 0 ? -KB_ESIGNAL : 0;
	/* The node is not healthy: say so, then report why (not the signal's own outcome). */
	log_error("signal: %s", run->err.msg);
	log_console("Kafka is not healthy: %s", run->err.msg);
	verdict = run->err;
	kb_error_clear(&run->err);
	if (tell(run, false) < 0)
		log_error("signal: FAILURE not sent: %s", run->err.msg);
	run->err = verdict;
	return ret;
}

/* `kafka-bootstrap signal`: --wait-registered after kafka.service starts (SUCCESS once Kafka
 * registered, FAILURE when it never does), or --success/--failure by hand after a repair.
 * Exit 14 when a verdict could not be sent. */
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
	if (opts->wait_registered) {
		ret = wait_then_tell(&run);
		exit_code = kb_exit_code(ret);
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
