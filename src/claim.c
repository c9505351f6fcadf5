/* claim.c: the claim interface, the rules every backend applies, the claim stage and the
 * `release` command.
 *
 * It must never let two instances hold one id, nor take an id from an owner that may still
 * run: the takeover rules live here, in one pure function, so that the ZooKeeper backend and a
 * later ENI-attachment backend cannot drift apart. */
#include "kb/claim.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim_backend.h"
#include "kb/aws.h"
#include "kb/cli.h"
#include "kb/deadline.h"
#include "kb/ec2.h"
#include "kb/log.h"
#include "kb/stages.h"

static const char *const owner_state_names[] = {
	[CLAIM_OWNER_UNKNOWN] = "unknown",
	[CLAIM_OWNER_PENDING] = "pending",
	[CLAIM_OWNER_RUNNING] = "running",
	[CLAIM_OWNER_SHUTTING_DOWN] = "shutting-down",
	[CLAIM_OWNER_TERMINATED] = "terminated",
	[CLAIM_OWNER_STOPPING] = "stopping",
	[CLAIM_OWNER_STOPPED] = "stopped",
};

#define OWNER_STATE_COUNT (sizeof(owner_state_names) / sizeof(owner_state_names[0]))

const char *claim_owner_state_name(enum claim_owner_state state)
{
	return (size_t)state < OWNER_STATE_COUNT ? owner_state_names[state] : "?";
}

int claim_owner_state_parse(const char *name, enum claim_owner_state *out)
{
	for (size_t i = 0; i < OWNER_STATE_COUNT; i++) {
		if (strcmp(owner_state_names[i], name) == 0) {
			*out = (enum claim_owner_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum claim_verdict claim_takeover_verdict(enum claim_owner_state state, bool registered,
					  int64_t age_ms, int grace_period_s,
					  bool take_over_stopped, char *why, size_t why_len)
{
	long long age_s = (long long)(age_ms / 1000);

	switch (state) {
	case CLAIM_OWNER_TERMINATED:
		if (!registered) {
			snprintf(why, why_len, "owner terminated");
			return CLAIM_TAKE;
		}
		/* Only a dead session's leftover, gone within Kafka's session timeout, unless
		 * another Kafka runs with this id: either way not ours yet. */
		snprintf(why, why_len, "owner terminated, but the id is still registered in "
			 "/brokers/ids");
		return CLAIM_WAIT;
	case CLAIM_OWNER_SHUTTING_DOWN:
		snprintf(why, why_len, "owner shutting down: waiting for it to terminate");
		return CLAIM_WAIT;
	case CLAIM_OWNER_UNKNOWN:
		if (registered) {
			snprintf(why, why_len, "owner unknown to EC2, but the id is registered in "
				 "/brokers/ids: a live Kafka holds it");
			return CLAIM_KEEP_OUT;
		}
		if (age_ms >= (int64_t)grace_period_s * 1000) {
			snprintf(why, why_len, "owner unknown to EC2 and the claim is %llds old "
				 "(grace period %ds)", age_s, grace_period_s);
			return CLAIM_TAKE;
		}
		/* EC2 is eventually consistent: a just-launched owner can read as unknown. */
		snprintf(why, why_len, "owner unknown to EC2, but the claim is only %llds old "
			 "(grace period %ds)", age_s, grace_period_s);
		return CLAIM_KEEP_OUT;
	case CLAIM_OWNER_STOPPED:
	case CLAIM_OWNER_STOPPING:
		if (!take_over_stopped) {
			snprintf(why, why_len, "owner %s: it keeps its ENI and volume and may start "
				 "again (--take-over-stopped takes the id, detaching them)",
				 claim_owner_state_name(state));
			return CLAIM_KEEP_OUT;
		}
		if (registered) {
			snprintf(why, why_len, "owner %s, but the id is registered in /brokers/ids",
				 claim_owner_state_name(state));
			return CLAIM_WAIT;
		}
		if (state == CLAIM_OWNER_STOPPING) {
			snprintf(why, why_len, "owner stopping: waiting for it to stop "
				 "(--take-over-stopped)");
			return CLAIM_WAIT;
		}
		snprintf(why, why_len, "owner stopped, taken over by --take-over-stopped: its ENI "
			 "and volume are detached from it");
		return CLAIM_TAKE;
	case CLAIM_OWNER_PENDING:
	case CLAIM_OWNER_RUNNING:
		break;
	}
	snprintf(why, why_len, "owner %s", claim_owner_state_name(state));
	return CLAIM_KEEP_OUT;
}

/* FNV-1a, then splitmix64's finaliser: cheap, and every bit of the instance id and of the
 * attempt reaches every bit of the result. */
size_t claim_pick(const char *instance_id, unsigned attempt, size_t count)
{
	uint64_t h = 14695981039346656037ULL;

	if (count == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)instance_id; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	h += (uint64_t)attempt * 0x9e3779b97f4a7c15ULL;
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return (size_t)(h % count);
}

int claim_parse_id(const char *text, size_t len, int limit, int *id)
{
	long long v = 0;

	if (len == 0 || len > 10 || (text[0] == '0' && len > 1))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		v = v * 10 + (text[i] - '0');
	}
	if (v > INT_MAX)
		return -EINVAL;
	if (limit > 0 && v >= limit)
		return -ERANGE;
	*id = (int)v;
	return 0;
}

void claim_free(struct claim *claim)
{
	if (!claim)
		return;
	free(claim->instance_id);
	free(claim->az);
	free(claim->az_id);
	free(claim->eni_id);
	free(claim->volume_id);
	free(claim->claimed_at);
	free(claim->previous_owner);
	free(claim->reason);
	free(claim);
}

bool claim_taken_from_stopped(const struct claim *claim, const char *instance_id)
{
	return claim && claim->how == CLAIM_TAKEN_OVER && claim->previous_owner && instance_id &&
	       claim->previous_state == CLAIM_OWNER_STOPPED &&
	       strcmp(claim->previous_owner, instance_id) == 0;
}

static int dup_opt(char **slot, const char *value)
{
	*slot = NULL;
	if (!value)
		return 0;
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

const struct claim_candidate *claim_find_candidate(const struct claim_request *req, int id)
{
	for (size_t i = 0; i < req->candidate_count; i++) {
		if (req->candidates[i].broker_id == id)
			return &req->candidates[i];
	}
	return NULL;
}

struct claim *claim_for_candidate(const struct claim_request *req,
				  const struct claim_candidate *cand, enum claim_how how)
{
	struct claim *claim = calloc(1, sizeof(*claim));
	char now[32];

	if (!claim)
		return NULL;
	deadline_format_wall(deadline_wall_ms(), now, sizeof(now));
	claim->broker_id = cand->broker_id;
	claim->how = how;
	if (dup_opt(&claim->instance_id, req->instance_id) < 0 ||
	    dup_opt(&claim->az, req->az) < 0 || dup_opt(&claim->az_id, req->az_id) < 0 ||
	    dup_opt(&claim->eni_id, cand->eni_id) < 0 ||
	    dup_opt(&claim->volume_id, cand->volume_id) < 0 ||
	    dup_opt(&claim->claimed_at, how == CLAIM_HELD ? NULL : now) < 0) {
		claim_free(claim);
		return NULL;
	}
	return claim;
}

char *claim_record_json(const struct claim *claim)
{
	json_t *root = json_pack("{s:i, s:i, s:s, s:s?, s:s?, s:s?, s:s?, s:s?}", "version", 1,
				 "broker_id", claim->broker_id, "instance_id", claim->instance_id,
				 "az", claim->az, "az_id", claim->az_id, "eni_id", claim->eni_id,
				 "volume_id", claim->volume_id, "claimed_at", claim->claimed_at);
	char *text;

	if (!root)
		return NULL;
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

/* An optional string member: absent and null are both "not set". */
static int member_string(json_t *root, const char *key, char **slot)
{
	json_t *v = json_object_get(root, key);

	*slot = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	return dup_opt(slot, json_string_value(v));
}

int claim_record_parse(const char *json, size_t len, struct claim **out, struct kb_error *err)
{
	static const char *const keys[] = {"az", "az_id", "eni_id", "volume_id", "claimed_at"};
	struct claim *claim = calloc(1, sizeof(*claim));
	char **slots[5];
	json_error_t jerr;
	json_t *root = NULL;
	json_t *v;
	int ret = -EINVAL;

	*out = NULL;
	if (!claim)
		return kb_errorf(err, ENOMEM, "claim record: out of memory");
	slots[0] = &claim->az;
	slots[1] = &claim->az_id;
	slots[2] = &claim->eni_id;
	slots[3] = &claim->volume_id;
	slots[4] = &claim->claimed_at;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		kb_errorf(err, EINVAL, "not a claim record: %s", root ? "not an object" : jerr.text);
		goto out;
	}
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		kb_errorf(err, EINVAL, "not a claim record of version 1");
		goto out;
	}
	v = json_object_get(root, "broker_id");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX) {
		kb_errorf(err, EINVAL, "claim record: broker_id is not an id");
		goto out;
	}
	claim->broker_id = (int)json_integer_value(v);
	if (member_string(root, "instance_id", &claim->instance_id) < 0 || !claim->instance_id ||
	    !claim->instance_id[0]) {
		kb_errorf(err, EINVAL, "claim record: no instance_id");
		goto out;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (member_string(root, keys[i], slots[i]) < 0) {
			kb_errorf(err, EINVAL, "claim record: %s is not a string", keys[i]);
			goto out;
		}
	}
	claim->how = CLAIM_HELD;
	*out = claim;
	claim = NULL;
	ret = 0;
out:
	json_decref(root);
	claim_free(claim);
	return ret;
}

int claim_open(const struct kb_config *cfg, int64_t deadline, struct claim_backend **out,
	       struct kb_error *err)
{
	*out = NULL;
	switch (cfg->mode) {
	case CONFIG_MODE_ZOOKEEPER:
		return claim_zk_open(cfg, deadline, out, err);
	}
	return kb_errorf(err, KB_ECONFIG, "mode %d has no claim backend", cfg->mode);
}

int claim_acquire(struct claim_backend *backend, const struct claim_request *req,
		  int64_t deadline, struct claim **out, struct kb_error *err)
{
	*out = NULL;
	return backend->ops->acquire(backend, req, deadline, out, err);
}

int claim_holder(struct claim_backend *backend, int broker_id, int64_t deadline,
		 struct claim **out, struct kb_error *err)
{
	*out = NULL;
	return backend->ops->holder(backend, broker_id, deadline, out, err);
}

int claim_release(struct claim_backend *backend, const char *instance_id, bool force,
		  int64_t deadline, struct claim **released, struct kb_error *err)
{
	if (released)
		*released = NULL;
	return backend->ops->release(backend, instance_id, force, deadline, released, err);
}

unsigned long claim_op_count(const struct claim_backend *backend)
{
	return backend ? backend->ops->op_count(backend) : 0;
}

void claim_close(struct claim_backend *backend)
{
	if (backend)
		backend->ops->close(backend);
}

/* Owner states from one DescribeInstances for all of them. EC2 leaves out the instances it
 * does not know (ec2.h): they stay "unknown". */
static int ec2_owner_states(void *ctx, const char *const *ids, size_t count, int64_t deadline,
			    enum claim_owner_state *states, struct kb_error *err)
{
	struct kb_run *run = ctx;
	struct ec2_instance_list *list = NULL;
	int ret;

	for (size_t i = 0; i < count; i++)
		states[i] = CLAIM_OWNER_UNKNOWN;
	if (!run->aws)
		return kb_errorf(err, KB_EINTERNAL, "no AWS context to ask EC2 for claim owners");
	ret = ec2_describe_instances(run->aws, ids, count, deadline, &list, err);
	if (ret < 0) {
		kb_error_prefix(err, "looking up the owners of held broker ids");
		return ret;
	}
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; list && j < list->count; j++) {
			const struct ec2_instance *inst = &list->items[j];

			if (!inst->id || strcmp(inst->id, ids[i]) != 0)
				continue;
			if (!inst->state_name ||
			    claim_owner_state_parse(inst->state_name, &states[i]) < 0) {
				/* A state we do not know is never a reason to take an id. */
				log_warn("claim: instance %s is in state '%s': treated as running",
					 ids[i], inst->state_name ? inst->state_name : "");
				states[i] = CLAIM_OWNER_RUNNING;
			}
		}
	}
	ec2_instance_list_free(list);
	return 0;
}

/* The ids a new claim may take: an ambiguous one is left out, so nobody new gets it, while
 * an instance that holds it already still finds its claim (by its index) and is stopped by
 * the stage that owns the doubled resource. */
static int candidates_of(const struct kb_run *run, struct claim_candidate **out, size_t *count)
{
	struct claim_candidate *cands;

	*out = NULL;
	*count = 0;
	cands = calloc(run->candidate_count ? run->candidate_count : 1, sizeof(*cands));
	if (!cands)
		return -ENOMEM;
	for (size_t i = 0; i < run->candidate_count; i++) {
		const struct kb_broker *b = &run->candidates[i];
		struct claim_candidate *c = &cands[*count];

		if (b->ambiguous)
			continue;
		c->broker_id = b->id;
		c->eni_id = b->eni ? b->eni->id : NULL;
		c->volume_id = b->volume ? b->volume->id : NULL;
		(*count)++;
	}
	*out = cands;
	return 0;
}

static void report(struct kb_run *run, const struct claim *claim)
{
	switch (claim->how) {
	case CLAIM_HELD:
		log_info("claim: instance %s holds broker id %d", claim->instance_id,
			 claim->broker_id);
		break;
	case CLAIM_CREATED:
		kb_run_change(run, "claim broker id %d (%s)", claim->broker_id,
			      claim->reason ? claim->reason : "free");
		break;
	case CLAIM_TAKEN_OVER:
		kb_run_change(run, "take over broker id %d from %s (%s)", claim->broker_id,
			      claim->previous_owner, claim->reason ? claim->reason : "");
		break;
	}
}

static int find_broker(struct kb_run *run, int id)
{
	for (size_t i = 0; i < run->candidate_count; i++) {
		if (run->candidates[i].id == id) {
			run->broker = &run->candidates[i];
			return 0;
		}
	}
	return kb_errorf(&run->err, KB_ENOID,
			 "instance %s holds broker id %d, but no ENI tagged %s=%s%d%s was found in "
			 "%s", run->identity.instance_id, id, run->cfg->tag_key,
			 run->cfg->tag_prefix, id, run->cfg->manage_volume ? " (with its volume)" : "",
			 run->identity.az);
}

int claim_stage(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	struct claim_backend *backend = NULL;
	struct claim_candidate *cands = NULL;
	struct claim *claim = NULL;
	size_t count;
	int ret;

	if (!run->identity.instance_id)
		return kb_errorf(&run->err, KB_EINTERNAL, "no instance identity to claim with");
	if (candidates_of(run, &cands, &count) < 0)
		return kb_errorf(&run->err, ENOMEM, "claim: out of memory");
	struct claim_request req = {
		.instance_id = run->identity.instance_id,
		.az = run->identity.az,
		.az_id = run->identity.az_id,
		.candidates = cands,
		.candidate_count = count,
		.take_over_stopped = cfg->take_over_stopped,
		.grace_period_s = cfg->claim_grace_period_s,
		.plan = run->mode == KB_MODE_PLAN,
		.existing_only = run->prerequisite,
		.owner_states = ec2_owner_states,
		.owner_ctx = run,
	};
	ret = claim_open(cfg, run->stage_deadline, &backend, &run->err);
	if (ret == 0)
		ret = claim_acquire(backend, &req, run->stage_deadline, &claim, &run->err);
	log_debug("claim: %lu requests to the claim store", claim_op_count(backend));
	if (ret == -ENOENT && run->prerequisite)
		ret = kb_errorf(&run->err, KB_ENOID,
				"instance %s holds no broker id: run the claim stage first "
				"(kafka-bootstrap run --stage claim)", run->identity.instance_id);
	if (ret < 0)
		goto out;
	ret = find_broker(run, claim->broker_id);
	if (ret < 0)
		goto out;
	run->broker_id = claim->broker_id;
	report(run, claim);
	run->claim = claim;
	claim = NULL;
out:
	claim_free(claim);
	claim_close(backend);
	free(cands);
	return ret;
}

static void stage_deadline(struct kb_run *run, enum pipeline_stage_id id)
{
	run->stage_deadline = deadline_min(
		run->deadline, deadline_after_ms((int64_t)run->cfg->stage_deadline_s[id] * 1000));
}

int release_command(const struct kb_options *opts, const struct kb_config *cfg)
{
	struct claim_backend *backend = NULL;
	struct claim *released = NULL;
	struct kb_run run;
	int lock = -1;
	int ret;

	kb_run_init(&run, cfg, KB_MODE_RUN);
	ret = pipeline_lock(cfg, run.deadline, &lock, &run.err);
	stage_deadline(&run, STAGE_IDENTITY);
	if (ret == 0)
		ret = identity_stage(&run);
	if (ret == 0 && !run.identity.instance_id)
		ret = kb_errorf(&run.err, KB_EINTERNAL, "no instance identity from IMDS");
	if (ret == 0) {
		stage_deadline(&run, STAGE_CLAIM);
		ret = claim_open(cfg, run.stage_deadline, &backend, &run.err);
	}
	if (ret == 0)
		ret = claim_release(backend, run.identity.instance_id, opts->force,
				    run.stage_deadline, &released, &run.err);
	if (ret == -ENOENT) {
		log_info("release: instance %s holds no broker id: nothing to release",
			 run.identity.instance_id);
		ret = 0;
	} else if (ret < 0) {
		log_error("release: %s", run.err.msg);
	} else {
		log_info("release: instance %s gave up broker id %d%s", run.identity.instance_id,
			 released->broker_id, opts->force ? " (--force)" : "");
	}
	claim_free(released);
	claim_close(backend);
	kb_run_release(&run);
	if (lock >= 0)
		close(lock);
	return kb_exit_code(ret);
}
