/* claim.h: a broker id held by one instance, behind a small interface (acquire, holder,
 * release) so that a second backend (the ENI attachment as the claim) fits beside the
 * ZooKeeper one.
 *
 * What every backend guarantees: at most one instance holds an id; an instance holds at most
 * one id; an instance that already holds an id gets it back without writing; an id held by
 * another instance is taken over only by the rules of claim_takeover_verdict(), atomically,
 * so that two replacements racing for it cannot both win. Owner states come from the caller
 * (EC2 in the claim stage, the command line in the test driver) through a callback. */
#ifndef KB_CLAIM_H
#define KB_CLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/config.h"
#include "kb/error.h"

/* EC2's instance states, plus "EC2 does not know it". */
enum claim_owner_state {
	CLAIM_OWNER_UNKNOWN,
	CLAIM_OWNER_PENDING,
	CLAIM_OWNER_RUNNING,
	CLAIM_OWNER_SHUTTING_DOWN,
	CLAIM_OWNER_TERMINATED,
	CLAIM_OWNER_STOPPING,
	CLAIM_OWNER_STOPPED,
};

/* "running", "shutting-down", ... (EC2's names), "unknown". */
const char *claim_owner_state_name(enum claim_owner_state state);
/* -EINVAL for a name EC2 does not use. */
int claim_owner_state_parse(const char *name, enum claim_owner_state *out);

/* Sets states[i] for instance_ids[i]; one question for every owner the backend needs. */
typedef int (*claim_owner_states_fn)(void *ctx, const char *const *instance_ids, size_t count,
				     int64_t deadline, enum claim_owner_state *states,
				     struct kb_error *err);

struct claim_candidate {
	int broker_id;
	const char *eni_id;
	const char *volume_id; /* NULL when volumes are not managed */
};

struct claim_request {
	const char *instance_id;
	const char *az;
	const char *az_id;
	const struct claim_candidate *candidates; /* ids whose ENI (and volume) are in our AZ */
	size_t candidate_count;
	bool take_over_stopped;
	int grace_period_s; /* before an owner EC2 does not know may be replaced */
	bool plan;          /* read, decide and say why; write nothing */
	bool existing_only; /* only find the claim this instance holds (-ENOENT: none) */
	claim_owner_states_fn owner_states;
	void *owner_ctx;
};

enum claim_how {
	CLAIM_HELD,       /* this instance held it already (rerun, reboot) */
	CLAIM_CREATED,    /* it was free */
	CLAIM_TAKEN_OVER, /* from previous_owner, in previous_state */
};

/* A claim record: the one acquired (or planned), or one read by claim_holder(). */
struct claim {
	int broker_id;
	enum claim_how how;
	bool planned; /* plan mode: nothing was written */
	char *instance_id;
	char *az;
	char *az_id;
	char *eni_id;
	char *volume_id;
	char *claimed_at;
	/* CLAIM_TAKEN_OVER: the instance it was taken from and its state then. A stopped owner
	 * still has the ENI and volume attached: the eni and volume stages detach them. */
	char *previous_owner;
	enum claim_owner_state previous_state;
	char *reason; /* why this id, for the log and plan */
};

void claim_free(struct claim *claim);
/* Whether claim (may be NULL) was taken over, or is planned to be, from instance_id while it
 * was stopped: with take_over_stopped, the one instance the eni and volume stages may detach
 * from, and only while it still reads stopped. */
bool claim_taken_from_stopped(const struct claim *claim, const char *instance_id);

struct claim_backend;

/* The backend the configuration selects (ZooKeeper: zookeeper_connect, zookeeper_auth,
 * zookeeper_session_timeout_ms, cluster), connected within the deadline. */
int claim_open(const struct kb_config *cfg, int64_t deadline, struct claim_backend **out,
	       struct kb_error *err);
/* The id this instance holds, or a new one. -KB_ENOID when every candidate is held and
 * none may be taken over (the message lists each and why); -ENOENT with existing_only when
 * this instance holds none. */
int claim_acquire(struct claim_backend *backend, const struct claim_request *req,
		  int64_t deadline, struct claim **out, struct kb_error *err);
/* Who holds broker_id; -ENOENT when nobody does. */
int claim_holder(struct claim_backend *backend, int broker_id, int64_t deadline,
		 struct claim **out, struct kb_error *err);
/* Gives up the id instance_id holds. -ENOENT when it holds none; -KB_EHELD while Kafka is
 * registered with it, unless force. *released (may be NULL) is what was removed. */
int claim_release(struct claim_backend *backend, const char *instance_id, bool force,
		  int64_t deadline, struct claim **released, struct kb_error *err);
/* Requests made to the store so far (ZooKeeper: requests, a multi counting one). */
unsigned long claim_op_count(const struct claim_backend *backend);
void claim_close(struct claim_backend *backend);

/* The takeover rules, shared by every backend. */
enum claim_verdict {
	CLAIM_KEEP_OUT, /* never taken over now */
	CLAIM_TAKE,     /* may be taken over now */
	CLAIM_WAIT,     /* may become takeable before the deadline: look again */
};

/* registered: /brokers/ids/<id> exists (a live Kafka holds the id). age_ms: how long ago
 * the claim was written. why receives the reason, for logs and the "no id" error. */
enum claim_verdict claim_takeover_verdict(enum claim_owner_state state, bool registered,
					  int64_t age_ms, int grace_period_s,
					  bool take_over_stopped, char *why, size_t why_len);

/* Index into count choices of the attempt-th pick of instance_id: a rotation by a hash of
 * the instance id, mixed with the attempt so that two instances that collided once do not
 * follow each other. */
size_t claim_pick(const char *instance_id, unsigned attempt, size_t count);

/* The claim record as stored (DECISIONS.md: {"version":1,"broker_id","instance_id","az",
 * "az_id","eni_id","volume_id","claimed_at"}). */
char *claim_record_json(const struct claim *claim);
int claim_record_parse(const char *json, size_t len, struct claim **out, struct kb_error *err);

/* A broker id as written in a tag, a path or a node: canonical decimal ("7", never "07",
 * "+7", " 7" or "7x"), 0 <= id < limit (limit 0: INT_MAX). -EINVAL otherwise. */
int claim_parse_id(const char *text, size_t len, int limit, int *id);

#endif
