/* eni.c: the `eni` stage: attach the claimed broker's ENI to this instance and wait until EC2
 * reports the attachment `attached`.
 *
 * An ENI attached to another instance is waited for (bounded) only while that instance is
 * shutting down, terminated or not known to EC2 yet, and taken from a stopped one only with
 * take_over_stopped, and only from the instance the claim was taken over from. It is never
 * detached from a pending, running or stopping instance, and of two ENIs carrying the same
 * tag neither is picked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/claim.h"
#include "kb/deadline.h"
#include "kb/discover.h"
#include "kb/ec2.h"
#include "kb/log.h"
#include "kb/netcfg.h"
#include "kb/stages.h"

/* The attachment poll: a 2 s attach is seen within 2.3 s (at 2.08 s plus one call), a slow
 * one costs one DescribeNetworkInterfaces a second. */
#define POLL_FIRST_MS 100
#define POLL_CAP_MS 1000
/* Once the interface is here, EC2 is asked this much later (its Describe lags the hot-plug a
 * little: asked at once, it read `attaching` in the simulated world), then soon again. */
#define POLL_SEEN_MS 50

enum step { STEP_WAIT, STEP_DONE };

struct eni_job {
	struct kb_run *run;
	struct ec2_eni *eni; /* run->broker->eni, refreshed in place by each describe */
	int64_t interval_ms;
	int64_t attach_sent_ms;
	/* Our AttachNetworkInterface succeeded: the truth, whatever a stale Describe says. */
	bool attached_by_us;
	bool detach_sent;
	bool wait_logged;
	bool attaching_here; /* an attachment to this instance is under way */
	bool link_seen;      /* and the ENI's interface has appeared */
	struct netcfg *nc;   /* to watch for it; NULL until needed */
};

static bool eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The instance the ENI is attached to, NULL when it is not (a detached attachment is none). */
static const char *owner_of(const struct ec2_eni *eni)
{
	if (!eni->attachment_instance_id || eq(eni->attachment_status, "detached"))
		return NULL;
	return eni->attachment_instance_id;
}

/* Replaces the job's view of the ENI with EC2's current one. */
static int describe(struct eni_job *job)
{
	struct kb_run *run = job->run;
	struct ec2_eni_list *list = NULL;
	struct ec2_eni old;
	int ret;

	ret = ec2_describe_network_interface(run->aws, job->eni->id, run->stage_deadline, &list,
					     &run->err);
	if (ret == 0 && (!list || list->count != 1))
		ret = kb_errorf(&run->err, ENOENT, "DescribeNetworkInterfaces %s: %zu interfaces "
				"returned", job->eni->id, list ? list->count : 0);
	if (ret < 0) {
		ec2_eni_list_free(list);
		return ret;
	}
	/* Swapped in place: later stages hold run->broker->eni. */
	old = *job->eni;
	*job->eni = list->items[0];
	list->items[0] = old;
	ec2_eni_list_free(list);
	return 0;
}

/* Waits until the interface with the ENI's MAC exists here or until passes; true when it
 * does. Without netlink (or a MAC) it only waits. */
static bool link_appeared(struct eni_job *job, int64_t until)
{
	struct kb_error scratch = {{0}};
	struct netcfg_link link = {0};
	uint8_t mac[NETCFG_MAC_LEN];
	bool seen = false;

	if (job->eni->mac && netcfg_parse_mac(job->eni->mac, mac) == 0) {
		if (!job->nc)
			job->nc = netcfg_new(&scratch);
		if (job->nc)
			seen = netcfg_wait_link(job->nc, mac, until, &link, &scratch) == 0;
		netcfg_link_clear(&link);
	}
	if (!seen)
		(void)deadline_sleep_ms(until, deadline_remaining_ms(until));
	return seen;
}

/* Sleeps the current interval, then grows it 1.5 times up to the cap. While our attachment
 * is under way, the ENI's interface appearing here (the attach completed) ends the sleep,
 * and EC2 is looked at shortly after: a 1.4 s attach was noticed 0.68 s late by the poll
 * alone.
 * False when the deadline passed. */
static bool poll_sleep(struct eni_job *job)
{
	struct kb_run *run = job->run;
	bool left;

	if (job->attaching_here && !job->link_seen) {
		job->link_seen = link_appeared(job, deadline_min(run->stage_deadline,
								  deadline_after_ms(job->interval_ms)));
		left = !deadline_passed(run->stage_deadline);
		if (job->link_seen) {
			job->interval_ms = POLL_SEEN_MS;
			return deadline_sleep_ms(run->stage_deadline, POLL_SEEN_MS);
		}
	} else {
		left = deadline_sleep_ms(run->stage_deadline, job->interval_ms);
	}
	job->interval_ms = job->interval_ms * 3 / 2;
	if (job->interval_ms > POLL_CAP_MS)
		job->interval_ms = POLL_CAP_MS;
	return left;
}

static enum step done(struct eni_job *job)
{
	const struct ec2_eni *eni = job->eni;

	if (job->attached_by_us)
		kb_run_change(job->run, "attached %s to %s at device index %d, network card %d "
			      "(%s, %lld ms)", eni->id, eni->attachment_instance_id,
			      eni->attachment_device_index, eni->attachment_network_card_index,
			      eni->attachment_id ? eni->attachment_id : "?",
			      (long long)(deadline_now_ms() - job->attach_sent_ms));
	else
		log_info("eni: %s is attached to this instance at device index %d", eni->id,
			 eni->attachment_device_index);
	return STEP_DONE;
}

static int attach(struct eni_job *job)
{
	struct kb_run *run = job->run;
	const struct kb_config *cfg = run->cfg;
	bool plan = run->mode == KB_MODE_PLAN;
	char *attachment_id = NULL;
	int ret;

	job->attach_sent_ms = deadline_now_ms();
	ret = ec2_attach_network_interface(run->aws, job->eni->id, run->identity.instance_id,
					   cfg->eni_device_index, cfg->network_card_index, plan,
					   run->stage_deadline, &attachment_id, &run->err);
	free(attachment_id);
	if (ret == -EBUSY && strstr(run->err.msg, "InvalidNetworkInterface.InUse")) {
		/* Another instance attached it first, or Describe was stale. Asking again at once
		 * gets the same answer: the next Describe, one poll interval later, says who holds
		 * it and the usual rules decide, until the stage's deadline. */
		log_info("eni: attach %s: %s; looking again", job->eni->id, run->err.msg);
		kb_error_clear(&run->err);
		return STEP_WAIT;
	}
	if (ret == -EBUSY)
		kb_error_prefix(&run->err, "device index %d is taken on this instance (set "
				"eni_device_index to a free one)", cfg->eni_device_index);
	if (ret < 0) {
		kb_error_prefix(&run->err, "attach %s to %s at device index %d", job->eni->id,
				run->identity.instance_id, cfg->eni_device_index);
		return ret;
	}
	if (plan) {
		kb_run_change(run, "attach %s to %s at device index %d, network card %d (DryRun: "
			      "the role may)", job->eni->id, run->identity.instance_id,
			      cfg->eni_device_index, cfg->network_card_index);
		return STEP_DONE;
	}
	job->attached_by_us = true;
	job->attaching_here = true;
	job->interval_ms = POLL_FIRST_MS;
	log_info("eni: attaching %s at device index %d", job->eni->id, cfg->eni_device_index);
	return STEP_WAIT;
}

/* The owner's state name; "unknown" when EC2 does not list it. */
static int owner_state(struct eni_job *job, const char *owner, char **state)
{
	struct kb_run *run = job->run;
	struct ec2_instance_list *list = NULL;
	const char *ids[] = {owner};
	int ret;

	*state = NULL;
	ret = ec2_describe_instances(run->aws, ids, 1, run->stage_deadline, &list, &run->err);
	if (ret < 0) {
		kb_error_prefix(&run->err, "look up %s, which holds %s", owner, job->eni->id);
		return ret;
	}
	for (size_t i = 0; list && i < list->count; i++) {
		if (eq(list->items[i].id, owner) && list->items[i].state_name)
			*state = strdup(list->items[i].state_name);
	}
	if (!*state)
		*state = strdup("unknown");
	ec2_instance_list_free(list);
	return *state ? 0 : kb_errorf(&run->err, ENOMEM, "out of memory");
}

static int take_from_stopped(struct eni_job *job, const char *owner)
{
	struct kb_run *run = job->run;
	bool plan = run->mode == KB_MODE_PLAN;
	int ret;

	if (!job->detach_sent) {
		ret = ec2_detach_network_interface(run->aws, job->eni->attachment_id, false, plan,
						   run->stage_deadline, &run->err);
		if (ret < 0) {
			kb_error_prefix(&run->err, "detach %s from stopped %s", job->eni->id,
					owner);
			return ret;
		}
		kb_run_change(run, "detach %s from stopped %s (take_over_stopped)", job->eni->id,
			      owner);
		job->detach_sent = true;
	}
	return plan ? attach(job) : STEP_WAIT;
}

static int other_owner(struct eni_job *job, const char *owner)
{
	struct kb_run *run = job->run;
	char *state = NULL;
	int ret;

	ret = owner_state(job, owner, &state);
	if (ret < 0)
		return ret;
	if (eq(state, "shutting-down") || eq(state, "terminated") || eq(state, "unknown")) {
		if (run->mode == KB_MODE_PLAN) {
			kb_run_change(run, "wait for %s (%s) to release %s", owner, state,
				      job->eni->id);
			ret = attach(job);
		} else if (!job->wait_logged) {
			log_info("eni: %s is attached to %s (%s): waiting for EC2 to release it",
				 job->eni->id, owner, state);
			job->wait_logged = true;
		}
	} else if (eq(state, "stopped") && run->cfg->take_over_stopped &&
		   claim_taken_from_stopped(run->claim, owner)) {
		/* Read just now, right before the detach: still stopped. */
		ret = take_from_stopped(job, owner);
	} else {
		ret = kb_errorf(&run->err, KB_EHELD, "%s is attached to %s, which is %s: an ENI "
				"is never taken from a %s instance%s", job->eni->id, owner, state,
				state, !eq(state, "stopped") ? ""
				: !run->cfg->take_over_stopped ? " without take_over_stopped"
				: " other than the one this run took the broker id from "
				  "(take_over_stopped)");
	}
	free(state);
	return ret;
}

/* One look at the ENI: done, or wait and look again. */
static int step(struct eni_job *job)
{
	const struct ec2_eni *eni = job->eni;
	const char *owner = owner_of(eni);

	if (owner && eq(owner, job->run->identity.instance_id)) {
		if (eq(eni->attachment_status, "attached"))
			return done(job);
		job->attaching_here = eq(eni->attachment_status, "attaching");
		return STEP_WAIT;
	}
	if (job->attached_by_us)
		return STEP_WAIT;
	if (owner && !eq(eni->attachment_status, "detaching"))
		return job->detach_sent ? STEP_WAIT : other_owner(job, owner);
	if (eq(eni->status, "available"))
		return attach(job);
	return STEP_WAIT;
}

static int timed_out(struct eni_job *job)
{
	const struct ec2_eni *eni = job->eni;

	return kb_errorf(&job->run->err, KB_ETIMEOUT, "%s still %s (attachment %s to %s)%s "
			 "when the eni stage's deadline passed", eni->id,
			 eni->status ? eni->status : "?",
			 eni->attachment_status ? eni->attachment_status : "none",
			 eni->attachment_instance_id ? eni->attachment_instance_id : "-",
			 job->attached_by_us ? " after our attach succeeded" : "");
}

/* Two ENIs with the broker's tag (discover offered the id to no new claim, but this instance
 * held it already): which address its clients know is for an operator to say. */
static int check_unique(struct kb_run *run)
{
	const struct ec2_eni_list *list = run->enis;
	char listed[KB_ERROR_MAX] = "";
	size_t count = 0, used = 0;

	for (size_t i = 0; list && i < list->count; i++) {
		const struct ec2_eni *e = &list->items[i];

		if (discover_tag_id(run->cfg, e->tags, e->tag_count) != run->broker->id)
			continue;
		count++;
		/* Cut at the buffer's end: the message says how many there are anyway. */
		if (used < sizeof(listed))
			used += (size_t)snprintf(listed + used, sizeof(listed) - used,
						 "%s%s (%s, %s, attached to %s)", count > 1 ? ", " : "",
						 e->id, e->az ? e->az : "?", e->status ? e->status : "?",
						 owner_of(e) ? owner_of(e) : "none");
	}
	if (count <= 1)
		return 0;
	return kb_errorf(&run->err, KB_EHELD, "%zu ENIs carry %s=%s%d: %s. Refusing to guess which "
			 "one is broker %d's address: remove or retag all but one", count,
			 run->cfg->tag_key, run->cfg->tag_prefix, run->broker->id, listed,
			 run->broker->id);
}

/* Read only: the ENI must be attached here already. */
static int check_attached(struct kb_run *run, const struct ec2_eni *eni)
{
	if (eq(owner_of(eni), run->identity.instance_id) &&
	    eq(eni->attachment_status, "attached"))
		return 0;
	return kb_errorf(&run->err, ENOENT, "%s is not attached to this instance (status %s, "
			 "attached to %s): run the eni stage", eni->id,
			 eni->status ? eni->status : "?",
			 owner_of(eni) ? owner_of(eni) : "none");
}

int eni_stage(struct kb_run *run)
{
	struct eni_job job = {.run = run, .interval_ms = POLL_FIRST_MS};
	int ret;

	job.eni = run->broker ? run->broker->eni : NULL;
	if (!job.eni || !job.eni->id)
		return kb_errorf(&run->err, KB_EINTERNAL, "no ENI to attach: no broker id was "
				 "claimed with one");
	if (!run->aws || !run->identity.instance_id)
		return kb_errorf(&run->err, KB_EINTERNAL, "no EC2 client or instance id");
	if (job.eni->az && run->identity.az && !eq(job.eni->az, run->identity.az))
		return kb_errorf(&run->err, KB_EHELD, "%s is in %s, this instance in %s: an ENI "
				 "attaches only within its availability zone", job.eni->id,
				 job.eni->az, run->identity.az);
	ret = check_unique(run);
	if (ret < 0)
		return ret;
	if (run->prerequisite)
		return check_attached(run, job.eni);
	for (;;) {
		ret = step(&job);
		if (ret < 0 || ret == STEP_DONE)
			break;
		if (!poll_sleep(&job)) {
			ret = timed_out(&job);
			break;
		}
		ret = describe(&job);
		if (ret < 0)
			break;
	}
	netcfg_free(job.nc);
	return ret < 0 ? ret : 0;
}
