/* volume.c: the volume stage. Attaches the EBS volume tagged <prefix><id> to this instance,
 * then hands over to volume_prepare() (volume_disk.c) for the device, filesystem and mount.
 * Never detaches a volume from a running instance (nor from a stopped one other than the one
 * the claim was taken over from), never picks one of two volumes carrying the same tag.
 *
 * AttachVolume is a check-and-set on EC2's side: VolumeInUse means someone else won, so the
 * answer is to look again, never to retry blindly. Describe is eventually consistent, so
 * every decision is taken on a fresh DescribeVolumes, and a volume is used only once it reads
 * `attached` to this instance (AWS-PROTOCOL.md section 7). */
#include "kb/volume.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/claim.h"
#include "kb/deadline.h"
#include "kb/discover.h"
#include "kb/ec2.h"
#include "kb/log.h"
#include "kb/stages.h"

/* Polling an attachment is not retrying (AWS-PROTOCOL.md section 5): it stays off the retry
 * budget. Short at first, since an attach often completes in a second or two; capped so a
 * slow detach of a dying owner costs few calls. */
#define POLL_FIRST_MS 250
#define POLL_MAX_MS 4000

enum step { STEP_DONE, STEP_ATTACH, STEP_WAIT };

struct attach {
	struct kb_run *run;
	const char *volume_id;
	const char *me;
	struct ec2_volume_list *fresh;  /* the latest DescribeVolumes, owned */
	const struct ec2_volume *vol;   /* what the next decision looks at */
	char *waiting_for;              /* why the last decision was STEP_WAIT */
	bool detach_requested;
};

static void describe_volume(const struct ec2_volume *v, char *buf, size_t len)
{
	if (v->attachment_instance_id)
		snprintf(buf, len, "%s (%s, %s, %s to %s)", v->id, v->az ? v->az : "?",
			 v->status ? v->status : "?",
			 v->attachment_status ? v->attachment_status : "attached",
			 v->attachment_instance_id);
	else
		snprintf(buf, len, "%s (%s, %s)", v->id, v->az ? v->az : "?",
			 v->status ? v->status : "?");
}

/* Two volumes with one broker's tag (a leftover copy, a restored snapshot): which holds the
 * data is for an operator to say. */
static int check_unique(struct kb_run *run)
{
	const struct ec2_volume_list *list = run->volumes;
	char listed[KB_ERROR_MAX] = "";
	size_t count = 0, used = 0;

	for (size_t i = 0; list && i < list->count; i++) {
		char one[256];

		if (discover_tag_id(run->cfg, list->items[i].tags, list->items[i].tag_count) !=
		    run->broker_id)
			continue;
		count++;
		describe_volume(&list->items[i], one, sizeof(one));
		/* Cut at the buffer's end: the message says how many there are anyway. */
		if (used < sizeof(listed))
			used += (size_t)snprintf(listed + used, sizeof(listed) - used, "%s%s",
						 count > 1 ? ", " : "", one);
	}
	if (count <= 1)
		return 0;
	return kb_errorf(&run->err, KB_EHELD, "%zu volumes carry %s=%s%d: %s. Refusing to guess "
			 "which one holds broker %d's data: remove or retag all but one", count,
			 run->cfg->tag_key, run->cfg->tag_prefix, run->broker_id, listed,
			 run->broker_id);
}

__attribute__((format(printf, 2, 3))) static int set_waiting(struct attach *a,
								const char *fmt, ...)
{
	va_list ap;

	free(a->waiting_for);
	va_start(ap, fmt);
	if (vasprintf(&a->waiting_for, fmt, ap) < 0)
		a->waiting_for = NULL;
	va_end(ap);
	return STEP_WAIT;
}

/* On failure the previous view stays: the caller may decide on it again. */
static int refresh(struct attach *a)
{
	struct kb_run *run = a->run;
	struct ec2_volume_list *list = NULL;
	int ret = ec2_describe_volume(run->aws, a->volume_id, run->stage_deadline, &list,
				      &run->err);

	if (ret < 0)
		return ret;
	ec2_volume_list_free(a->fresh);
	a->fresh = list;
	a->vol = &list->items[0];
	return 0;
}

/* The owner of an attachment: NULL state when EC2 does not know the instance. */
static int owner_state(struct attach *a, const char *iid, char **state)
{
	struct ec2_instance_list *list = NULL;
	int ret = ec2_describe_instances(a->run->aws, &iid, 1, a->run->stage_deadline, &list,
					 &a->run->err);

	*state = NULL;
	if (ret == 0 && list->count > 0 && list->items[0].state_name) {
		*state = strdup(list->items[0].state_name);
		if (!*state)
			ret = kb_errorf(&a->run->err, ENOMEM, "out of memory");
	}
	ec2_instance_list_free(list);
	return ret;
}

/* A stopped owner keeps its volume and may start again: detached only when the operator
 * allowed taking over stopped instances and the claim stage took the id from this very one
 * (take_over_stopped may sit in config.d for good: it is no licence for any stopped owner). */
static int detach_from_stopped(struct attach *a, const char *owner)
{
	struct kb_run *run = a->run;
	bool plan = run->mode == KB_MODE_PLAN;
	int ret;

	if (a->detach_requested)
		return STEP_WAIT;
	ret = ec2_detach_volume(run->aws, a->volume_id, owner, false, plan, run->stage_deadline,
				&run->err);
	if (ret < 0)
		return ret;
	a->detach_requested = true;
	kb_run_change(run, "%s %s from stopped instance %s (take_over_stopped)",
		      plan ? "detach" : "detached", a->volume_id, owner);
	return STEP_WAIT;
}

static int refuse_foreign(struct attach *a, const char *owner, const char *state)
{
	bool stopped = !strcmp(state, "stopped") || !strcmp(state, "stopping");

	return kb_errorf(&a->run->err, KB_EHELD, "%s is attached to %s, which is %s: a volume is "
			 "never taken from an instance that may still use it%s", a->volume_id,
			 owner, state, !stopped ? ""
			 : !a->run->cfg->take_over_stopped
			 ? " (take_over_stopped allows it for stopped instances)"
			 : " (take_over_stopped detaches only from the instance this run took the "
			   "broker id from, which it is not)");
}

static int decide_foreign(struct attach *a, const struct ec2_volume *v)
{
	const char *owner = v->attachment_instance_id;
	bool previous = a->run->cfg->take_over_stopped &&
			claim_taken_from_stopped(a->run->claim, owner);
	char *state = NULL;
	int ret;

	if (v->attachment_status && strcmp(v->attachment_status, "detaching") == 0)
		return set_waiting(a, "%s to detach from %s", a->volume_id, owner);
	ret = owner_state(a, owner, &state);
	if (ret < 0)
		return ret;
	if (!state)
		ret = set_waiting(a, "%s: attached to %s, which EC2 does not know (yet)",
				  a->volume_id, owner);
	else if (!strcmp(state, "shutting-down") || !strcmp(state, "terminated"))
		ret = set_waiting(a, "%s to be released by %s", a->volume_id, owner);
	else if (!strcmp(state, "stopping") && previous)
		ret = set_waiting(a, "%s: its owner %s to stop", a->volume_id, owner);
	else if (!strcmp(state, "stopped") && previous)
		/* Read just now, right before the detach: still stopped. */
		ret = detach_from_stopped(a, owner);
	else
		ret = refuse_foreign(a, owner, state);
	free(state);
	return ret;
}

static bool in_other_az(const struct kb_run *run, const struct ec2_volume *v)
{
	return v->az && run->identity.az && strcmp(v->az, run->identity.az) != 0;
}

static int refuse_other_az(struct kb_run *run, const struct ec2_volume *v)
{
	const char *az = run->identity.az;

	return kb_errorf(&run->err, KB_EHELD, "%s is in %s and this instance in %s: an EBS "
			 "volume attaches only within its AZ. Creating a copy from a snapshot in "
			 "this AZ is a later feature; until then move the data by hand "
			 "(snapshot, create a volume in %s, tag it)", v->id, v->az, az, az);
}

static int decide(struct attach *a)
{
	const struct ec2_volume *v = a->vol;

	if (in_other_az(a->run, v))
		return refuse_other_az(a->run, v);
	if (v->attachment_instance_id && strcmp(v->attachment_instance_id, a->me) == 0) {
		const char *s = v->attachment_status ? v->attachment_status : "attached";

		if (!strcmp(s, "attached") || !strcmp(s, "busy"))
			return STEP_DONE;
		return set_waiting(a, "%s: its attachment to this instance is %s", v->id, s);
	}
	if (v->attachment_instance_id)
		return decide_foreign(a, v);
	if (v->status && strcmp(v->status, "available") == 0)
		return STEP_ATTACH;
	if (v->status && (!strcmp(v->status, "creating") || !strcmp(v->status, "in-use")))
		return set_waiting(a, "%s to become available (%s)", v->id, v->status);
	return kb_errorf(&a->run->err, KB_EAWS, "%s is %s: it cannot be attached", v->id,
			 v->status ? v->status : "in an unknown state");
}

/* 0 attached (or asked to be), 1 lost a race or EC2 not ready: look again; negative error. */
static int attach_once(struct attach *a, const char *device)
{
	struct kb_run *run = a->run;
	bool plan = run->mode == KB_MODE_PLAN;
	int ret = ec2_attach_volume(run->aws, a->volume_id, a->me, device, plan,
				    run->stage_deadline, &run->err);

	if (ret == 0) {
		kb_run_change(run, "%s %s to %s as %s", plan ? "attach" : "attached",
			      a->volume_id, a->me, device);
		return 0;
	}
	if ((ret == -EBUSY && !strstr(run->err.msg, "InvalidDevice.InUse")) || ret == -EAGAIN) {
		/* VolumeInUse: another instance won the check-and-set, or Describe was stale;
		 * IncorrectState: still creating. Either way, the next Describe decides. */
		log_info("%s", run->err.msg);
		kb_error_clear(&run->err);
		return 1;
	}
	if (ret == -EBUSY)
		kb_error_prefix(&run->err, "device name %s is taken on this instance (set "
				"volume_device to a free /dev/sd[f-p])", device);
	return ret;
}

/* Until the volume reads attached to this instance. Returns 0 when it does, 1 in plan mode
 * when it would have to be attached or waited for first (nothing to look at locally yet). */
static int attach_until_attached(struct attach *a, const char *device)
{
	struct kb_run *run = a->run;
	int64_t interval = POLL_FIRST_MS;
	int step, r;

	for (;;) {
		step = decide(a);
		if (step < 0 || step == STEP_DONE)
			return step < 0 ? step : 0;
		if (run->prerequisite)
			return kb_errorf(&run->err, ENOENT, "%s is not attached to this instance "
					 "(%s): run the volume stage first", a->volume_id,
					 a->waiting_for ? a->waiting_for : "available");
		if (step == STEP_ATTACH) {
			r = attach_once(a, device);
			if (r < 0 || run->mode == KB_MODE_PLAN)
				return r < 0 ? r : 1;
			/* An attach takes seconds: look again soon, not at the grown interval. */
			if (r == 0)
				interval = POLL_FIRST_MS;
		} else if (run->mode == KB_MODE_PLAN) {
			kb_run_change(run, "wait for %s", a->waiting_for ? a->waiting_for : "it");
			return 1;
		}
		if (step == STEP_WAIT)
			log_info("waiting for %s", a->waiting_for ? a->waiting_for : "the volume");
		if (!deadline_sleep_ms(run->stage_deadline, interval))
			return kb_errorf(&run->err, KB_ETIMEOUT, "still waiting for %s at the "
					 "deadline", a->waiting_for ? a->waiting_for
								     : a->volume_id);
		interval = interval * 2 > POLL_MAX_MS ? POLL_MAX_MS : interval * 2;
		r = refresh(a);
		if (r == -ENOENT) {
			/* Just created or just retagged: not visible everywhere yet. The last
			 * view is decided on again. */
			kb_error_clear(&run->err);
			continue;
		}
		if (r < 0)
			return r;
	}
}

/* No volume for this id in this AZ: say whether it is elsewhere, or missing. */
static int explain_missing(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	struct ec2_volume_list *list = NULL;
	char name[64], tag[160], cluster_tag[160];
	const char *name_values[1] = {name}, *cluster_values[1] = {cfg->cluster};
	struct ec2_filter filters[2] = {
		{.name = tag, .values = name_values, .value_count = 1},
		{.name = cluster_tag, .values = cluster_values, .value_count = 1},
	};
	int ret;

	snprintf(name, sizeof(name), "%s%d", cfg->tag_prefix, run->broker_id);
	snprintf(tag, sizeof(tag), "tag:%s", cfg->tag_key);
	snprintf(cluster_tag, sizeof(cluster_tag), "tag:%s", cfg->cluster_tag_key);
	ret = ec2_describe_volumes(run->aws, filters, cfg->cluster[0] ? 2 : 1, run->stage_deadline,
				   &list, &run->err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < list->count && ret == 0; i++) {
		if (in_other_az(run, &list->items[i]))
			ret = refuse_other_az(run, &list->items[i]);
		else
			ret = kb_errorf(&run->err, EAGAIN, "%s carries %s=%s but was not seen by "
					"discover (EC2 is eventually consistent): run again",
					list->items[i].id, cfg->tag_key, name);
	}
	if (ret == 0)
		ret = kb_errorf(&run->err, ENOENT, "no EBS volume carries %s=%s%s%s: create one "
				"(or set manage_volume to false)", cfg->tag_key, name,
				cfg->cluster[0] ? " in cluster " : "", cfg->cluster);
	ec2_volume_list_free(list);
	return ret;
}

int volume_stage(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	const struct ec2_volume *vol;
	struct attach a = {.run = run};
	const char *device;
	int ret;

	if (!cfg->manage_volume) {
		kb_run_skip(run, "manage_volume is off");
		return 0;
	}
	if (!run->broker || run->broker_id < 0 || !run->identity.instance_id)
		return kb_errorf(&run->err, KB_EINTERNAL, "the volume stage needs a claimed broker "
				 "id and this instance's identity");
	if (!run->broker->volume)
		return explain_missing(run);
	ret = check_unique(run);
	if (ret < 0)
		return ret;
	vol = run->broker->volume;
	a.volume_id = vol->id;
	a.me = run->identity.instance_id;
	a.vol = vol;
	ret = attach_until_attached(&a, cfg->volume_device);
	if (ret == 0) {
		/* The name it was attached under, which a Xen kernel shows (as its xvd twin):
		 * an earlier boot may have used another volume_device. */
		device = a.vol->attachment_device ? a.vol->attachment_device : cfg->volume_device;
		ret = volume_prepare(run, a.volume_id, device);
	} else if (ret == 1) {
		/* The device cannot be probed before the attach: say what would follow it. */
		kb_run_change(run, "mount %s at %s with %s once attached (formatted as %s first "
			      "only if it reads blank)", a.volume_id, cfg->mount_point,
			      cfg->mount_options, cfg->filesystem == CONFIG_FS_EXT4 ? "ext4" : "xfs");
		ret = 0;
	}
	free(a.waiting_for);
	ec2_volume_list_free(a.fresh);
	return ret;
}
