/* claim_zk.c: the claim in ZooKeeper.
 *
 * Below the chroot, /kafka-bootstrap/<cluster>/claims/<id> holds the claim record and
 * /kafka-bootstrap/<cluster>/instances/<instance-id> the id its instance holds. Both are
 * persistent (the tool exits before Kafka starts) and only ever change together, in one
 * multi, so "the index of i names N" and "claim N names i" are the same fact: a rerun reads
 * the index alone, and an instance can never hold two claims (its second multi would fail on
 * its own index).
 *
 * A new claim is a create, never a read followed by a write: the listing of /claims only
 * steers which free id to try, the multi decides. Each instance picks among the free ids by a
 * hash of its instance id and lists again after a collision, so N instances booting together
 * make O(N) creates, not the N^2/2 of lowest-first. A takeover is a versioned set of the claim
 * with the new index and the old index's deletion in one multi: of two replacements racing for
 * one dead owner's id, exactly one wins. /kafka-bootstrap/<cluster>/clock is a scratch node
 * whose writes tell ZooKeeper's time (server_now()). It must never take an id from an owner
 * that claim_takeover_verdict() does not give up, and never write in plan mode. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim_backend.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/zk.h"

/* How often a takeover that waits (an owner shutting down) looks again. */
#define CLAIM_ZK_POLL_MS 2000

struct claim_zk {
	struct claim_backend base; /* first */
	struct zk *zk;
	char *root; /* /kafka-bootstrap/<cluster> */
	char *claims;
	char *instances;
	char *clock;
};

static struct claim_zk *to_zk(struct claim_backend *base)
{
	return (struct claim_zk *)base;
}

static char *pathf(const char *dir, const char *name)
{
	char *path = NULL;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	return path;
}

static char *claim_path(const struct claim_zk *b, int id)
{
	char *path = NULL;

	if (asprintf(&path, "%s/%d", b->claims, id) < 0)
		return NULL;
	return path;
}

/* ZooKeeper rejects "", "." and ".." as node names, and a "/" would nest the path. */
static bool valid_name(const char *name)
{
	return name && name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

/* The id instance_id's index names: 0, -ENOENT when it has none. */
static int read_index(struct claim_zk *b, const char *instance_id, int64_t deadline, int *id,
		      struct zk_stat *stat, struct kb_error *err)
{
	char *path = pathf(b->instances, instance_id);
	char *data = NULL;
	size_t len = 0;
	int ret;

	if (!path)
		return kb_errorf(err, ENOMEM, "claim: out of memory");
	ret = zk_get(b->zk, path, deadline, &data, &len, stat, err);
	if (ret == 0 && claim_parse_id(data, len, 0, id) < 0)
		ret = kb_errorf(err, EIO, "ZooKeeper %s: %s holds '%.*s', not a broker id",
				zk_servers(b->zk), path, (int)(len > 32 ? 32 : len), data);
	free(data);
	free(path);
	return ret;
}

/* The record of claim id: 0, -ENOENT when nobody holds it, -EINVAL (with a message) when
 * the node holds something else. */
static int read_claim(struct claim_zk *b, int id, int64_t deadline, struct claim **out,
		      struct zk_stat *stat, struct kb_error *err)
{
	char *path = claim_path(b, id);
	char *data = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	if (!path)
		return kb_errorf(err, ENOMEM, "claim: out of memory");
	ret = zk_get(b->zk, path, deadline, &data, &len, stat, err);
	if (ret == 0)
		ret = claim_record_parse(data, len, out, err);
	if (ret == 0 && (*out)->broker_id != id) {
		claim_free(*out);
		*out = NULL;
		ret = kb_errorf(err, EINVAL, "claim record names broker id %d", id);
	}
	if (ret == -EINVAL)
		kb_error_prefix(err, "ZooKeeper %s", path);
	free(data);
	free(path);
	return ret;
}

static int registered(struct claim_zk *b, int id, int64_t deadline, bool *live,
		      struct kb_error *err)
{
	char path[48];
	int ret;

	snprintf(path, sizeof(path), "/brokers/ids/%d", id);
	ret = zk_exists(b->zk, path, deadline, NULL, err);
	*live = ret == 0;
	return ret == -ENOENT ? 0 : ret;
}

/* The ids of the existing claims, as a flag per candidate. */
static int list_taken(struct claim_zk *b, const struct claim_request *req, int64_t deadline,
		      bool *taken, struct kb_error *err)
{
	char **names = NULL;
	size_t count = 0;
	int ret;

	memset(taken, 0, req->candidate_count * sizeof(*taken));
	ret = zk_children(b->zk, b->claims, deadline, &names, &count, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < count; i++) {
		int id;

		if (claim_parse_id(names[i], strlen(names[i]), 0, &id) < 0)
			continue;
		for (size_t c = 0; c < req->candidate_count; c++)
			taken[c] |= req->candidates[c].broker_id == id;
	}
	zk_names_free(names, count);
	return 0;
}

static int ensure_parents(struct claim_zk *b, int64_t deadline, struct kb_error *err)
{
	int ret = zk_create_path(b->zk, b->claims, deadline, err);

	if (ret == 0)
		ret = zk_create_path(b->zk, b->instances, deadline, err);
	if (ret < 0)
		kb_error_prefix(err, "creating %s", b->root);
	return ret;
}

/* The claim this instance's index names: a rerun, or an earlier attempt (or a concurrent run)
 * of this very instance. The ENI and volume come from the candidates: the one read is the
 * index. An id without a candidate here is reported by the stage. */
static int own_claim(struct claim_zk *b, const struct claim_request *req, int64_t deadline,
		     struct claim **out, struct kb_error *err)
{
	const struct claim_candidate *cand;
	struct claim_candidate bare = {0};
	int ret;

	ret = read_index(b, req->instance_id, deadline, &bare.broker_id, NULL, err);
	if (ret < 0)
		return ret;
	cand = claim_find_candidate(req, bare.broker_id);
	*out = claim_for_candidate(req, cand ? cand : &bare, CLAIM_HELD);
	return *out ? 0 : kb_errorf(err, ENOMEM, "claim: out of memory");
}

/* After a resend: is claim id this instance's own (its first multi went through)? */
static int claim_is_mine(struct claim_zk *b, const struct claim_request *req, int id,
			 int64_t deadline, bool *mine, struct kb_error *err)
{
	struct claim *holder = NULL;
	int ret = read_claim(b, id, deadline, &holder, NULL, err);

	*mine = ret == 0 && strcmp(holder->instance_id, req->instance_id) == 0;
	claim_free(holder);
	return ret == -ENOENT ? 0 : ret;
}

/* One multi: the claim and the index. 0: claimed; 1: somebody else has the id. */
static int create_claim(struct claim_zk *b, const struct claim_request *req,
			const struct claim_candidate *cand, int64_t deadline, struct claim **out,
			struct kb_error *err)
{
	struct claim *claim = claim_for_candidate(req, cand, CLAIM_CREATED);
	char *json = claim ? claim_record_json(claim) : NULL;
	char *cpath = claim_path(b, cand->broker_id);
	char *ipath = pathf(b->instances, req->instance_id);
	char id[16];
	size_t failed = 0;
	bool resent = false;
	bool parents_made = false;
	bool mine;
	int ret;

	if (!claim || !json || !cpath || !ipath) {
		ret = kb_errorf(err, ENOMEM, "claim: out of memory");
		goto out;
	}
	snprintf(id, sizeof(id), "%d", cand->broker_id);
	struct zk_op ops[] = {
		{.type = ZK_OP_CREATE, .path = cpath, .data = json, .len = strlen(json)},
		{.type = ZK_OP_CREATE, .path = ipath, .data = id, .len = strlen(id)},
	};
	for (;;) {
		ret = zk_multi(b->zk, ops, 2, deadline, &failed, &resent, err);
		if (ret != -ENOENT || parents_made)
			break;
		/* First claim of the cluster: its parents do not exist yet. */
		ret = ensure_parents(b, deadline, err);
		if (ret < 0)
			goto out;
		parents_made = true;
	}
	if (ret == -ENOENT)
		ret = kb_errorf(err, EIO, "claim: %s vanished while claiming", b->root);
	if (ret == -EEXIST && failed == 1) {
		/* Our index exists but the claim did not: this instance holds another id. */
		ret = own_claim(b, req, deadline, out, err);
		goto out;
	}
	if (ret == -EEXIST && resent) {
		ret = claim_is_mine(b, req, cand->broker_id, deadline, &mine, err);
		if (ret < 0)
			goto out;
		if (mine) {
			log_info("claim: broker id %d: the create went through before the "
				 "connection was lost", cand->broker_id);
			ret = 0;
		} else {
			ret = -EEXIST;
		}
	}
	if (ret == -EEXIST) {
		ret = 1;
		goto out;
	}
	if (ret < 0)
		goto out;
	*out = claim;
	claim = NULL;
out:
	claim_free(claim);
	free(json);
	free(cpath);
	free(ipath);
	return ret;
}

/* Free ids first. 0: claimed (or planned); 1: none was free. */
static int claim_free_id(struct claim_zk *b, const struct claim_request *req,
			 int64_t deadline, struct claim **out, struct kb_error *err)
{
	bool *taken = calloc(req->candidate_count + 1, sizeof(*taken));
	size_t *free_ids = calloc(req->candidate_count + 1, sizeof(*free_ids));
	unsigned attempt = 0;
	int ret;

	if (!taken || !free_ids) {
		ret = kb_errorf(err, ENOMEM, "claim: out of memory");
		goto out;
	}
	for (;;) {
		size_t nfree = 0;
		const struct claim_candidate *cand;

		ret = list_taken(b, req, deadline, taken, err);
		if (ret < 0)
			break;
		for (size_t c = 0; c < req->candidate_count; c++) {
			if (!taken[c])
				free_ids[nfree++] = c;
		}
		if (nfree == 0) {
			ret = 1;
			break;
		}
		cand = &req->candidates[free_ids[claim_pick(req->instance_id, attempt, nfree)]];
		if (req->plan) {
			*out = claim_for_candidate(req, cand, CLAIM_CREATED);
			ret = *out ? 0 : kb_errorf(err, ENOMEM, "claim: out of memory");
			if (*out)
				(*out)->planned = true;
			break;
		}
		ret = create_claim(b, req, cand, deadline, out, err);
		if (ret <= 0)
			break;
		log_debug("claim: broker id %d was taken meanwhile; looking again",
			  cand->broker_id);
		attempt++;
		if (deadline_passed(deadline)) {
			ret = kb_errorf(err, KB_ETIMEOUT, "claim: every free id was taken by "
					"another instance first, until the deadline");
			break;
		}
	}
out:
	free(taken);
	free(free_ids);
	return ret;
}

/* What the survey of held ids learned about one candidate. */
struct held {
	struct claim *holder; /* NULL: free now, or not a claim record */
	struct zk_stat stat;
	enum claim_owner_state state;
	enum claim_verdict verdict;
	char why[256];
};

struct survey {
	struct held *held;
	size_t count;
	bool any_free;
	size_t own; /* index of a claim naming this instance, count when none */
};

static void survey_clear(struct survey *s)
{
	for (size_t i = 0; s->held && i < s->count; i++)
		claim_free(s->held[i].holder);
	free(s->held);
	memset(s, 0, sizeof(*s));
}

static int read_holders(struct claim_zk *b, const struct claim_request *req, int64_t deadline,
			struct survey *s, struct kb_error *err)
{
	s->count = req->candidate_count;
	s->own = s->count;
	s->held = calloc(s->count + 1, sizeof(*s->held));
	if (!s->held)
		return kb_errorf(err, ENOMEM, "claim: out of memory");
	for (size_t c = 0; c < s->count; c++) {
		struct held *h = &s->held[c];
		struct kb_error why = {{0}};
		int ret;

		ret = read_claim(b, req->candidates[c].broker_id, deadline, &h->holder, &h->stat,
				 &why);
		if (ret == -ENOENT) {
			s->any_free = true;
		} else if (ret == -EINVAL) {
			h->verdict = CLAIM_KEEP_OUT;
			snprintf(h->why, sizeof(h->why), "not a kafka-bootstrap claim: %.200s",
				 why.msg);
		} else if (ret < 0) {
			return kb_errorf(err, -ret, "%s", why.msg);
		} else if (strcmp(h->holder->instance_id, req->instance_id) == 0) {
			s->own = c;
		}
	}
	return 0;
}

/* One question to the caller for every distinct owner. */
static int owner_states(const struct claim_request *req, struct survey *s, int64_t deadline,
			struct kb_error *err)
{
	const char **ids = calloc(s->count + 1, sizeof(*ids));
	enum claim_owner_state *states = calloc(s->count + 1, sizeof(*states));
	size_t n = 0;
	int ret = 0;

	if (!ids || !states) {
		ret = kb_errorf(err, ENOMEM, "claim: out of memory");
		goto out;
	}
	for (size_t c = 0; c < s->count; c++) {
		bool seen = false;

		if (!s->held[c].holder)
			continue;
		for (size_t i = 0; i < n; i++)
			seen |= strcmp(ids[i], s->held[c].holder->instance_id) == 0;
		if (!seen)
			ids[n++] = s->held[c].holder->instance_id;
	}
	if (n > 0)
		ret = req->owner_states(req->owner_ctx, ids, n, deadline, states, err);
	for (size_t c = 0; ret == 0 && c < s->count; c++) {
		for (size_t i = 0; s->held[c].holder && i < n; i++) {
			if (strcmp(ids[i], s->held[c].holder->instance_id) == 0)
				s->held[c].state = states[i];
		}
	}
out:
	free(ids);
	free(states);
	return ret;
}

/* ZooKeeper's clock now: the mtime of our write to a scratch node. A claim's mtime was set by
 * the same clock (the server's, when it applied the write), so the difference is the claim's
 * age whatever this instance's clock says, and at boot that may be minutes off (DECISIONS.md
 * "Clock skew"; the unit does not wait for time-sync.target). The first write of a cluster
 * creates the node. */
static int server_now(struct claim_zk *b, const struct claim_request *req, int64_t deadline,
		      int64_t *now, struct kb_error *err)
{
	const char *data = req->instance_id;
	struct zk_stat stat = {0};
	int ret;

	ret = zk_set(b->zk, b->clock, data, strlen(data), deadline, &stat, err);
	if (ret == -ENOENT) {
		ret = zk_create_path(b->zk, b->clock, deadline, err);
		if (ret == 0)
			ret = zk_set(b->zk, b->clock, data, strlen(data), deadline, &stat, err);
	}
	if (ret == -ENOENT)
		ret = kb_errorf(err, EIO, "%s vanished while being written", b->clock);
	if (ret < 0) {
		kb_error_prefix(err, "reading ZooKeeper's clock through %s", b->clock);
		return ret;
	}
	*now = stat.mtime_ms;
	return 0;
}

/* "Now" for the claims' ages: asked only when an owner EC2 does not know is judged (no other
 * verdict depends on the age), so an ordinary claim costs no write. Plan writes nothing, not
 * even the clock node: it goes by this instance's clock and says so. */
static int judge_now(struct claim_zk *b, const struct claim_request *req,
		     const struct survey *s, int64_t deadline, int64_t *now, bool *local,
		     struct kb_error *err)
{
	bool needed = false;

	*now = 0;
	*local = false;
	for (size_t c = 0; c < s->count; c++)
		needed |= s->held[c].holder && s->held[c].state == CLAIM_OWNER_UNKNOWN;
	if (!needed)
		return 0;
	if (req->plan) {
		*local = true;
		*now = deadline_wall_ms();
		return 0;
	}
	return server_now(b, req, deadline, now, err);
}

/* The verdict for each held id; the registration is only looked up where it matters. */
static int judge(struct claim_zk *b, const struct claim_request *req, struct survey *s,
		 int64_t deadline, struct kb_error *err)
{
	int64_t now;
	bool local;
	int ret = judge_now(b, req, s, deadline, &now, &local, err);

	for (size_t c = 0; ret == 0 && c < s->count; c++) {
		struct held *h = &s->held[c];
		/* Both times are ZooKeeper's; a claim "from the future" (written by another
		 * server of the ensemble, whose clock is ahead) counts as new. */
		int64_t age = now > h->stat.mtime_ms ? now - h->stat.mtime_ms : 0;
		bool live = false;

		if (!h->holder)
			continue;
		h->verdict = claim_takeover_verdict(h->state, false, age, req->grace_period_s,
						    req->take_over_stopped, h->why,
						    sizeof(h->why));
		if (h->verdict == CLAIM_KEEP_OUT)
			continue;
		ret = registered(b, req->candidates[c].broker_id, deadline, &live, err);
		if (ret == 0 && live)
			h->verdict = claim_takeover_verdict(h->state, true, age,
							    req->grace_period_s,
							    req->take_over_stopped, h->why,
							    sizeof(h->why));
	}
	for (size_t c = 0; ret == 0 && local && c < s->count; c++) {
		struct held *h = &s->held[c];
		size_t len = strlen(h->why);

		if (h->holder && h->state == CLAIM_OWNER_UNKNOWN)
			snprintf(h->why + len, sizeof(h->why) - len, " (age by this instance's "
				 "clock: plan does not write ZooKeeper's clock node)");
	}
	return ret;
}

/* The takeover multi: set the claim at the version we read, create our index, delete the old
 * owner's index if it names this id. 0: taken over; 1: somebody else changed it first. */
static int take_claim(struct claim_zk *b, const struct claim_request *req, size_t c,
		      const struct held *h, int64_t deadline, struct claim **out,
		      struct kb_error *err)
{
	const struct claim_candidate *cand = &req->candidates[c];
	struct claim *claim = claim_for_candidate(req, cand, CLAIM_TAKEN_OVER);
	char *json = claim ? claim_record_json(claim) : NULL;
	char *cpath = claim_path(b, cand->broker_id);
	char *ipath = pathf(b->instances, req->instance_id);
	char *old_ipath = pathf(b->instances, h->holder->instance_id);
	struct zk_stat old_stat = {0};
	size_t failed = 0;
	bool resent = false;
	bool mine;
	char id[16];
	int old_id = -1;
	int ret;

	if (!claim || !json || !cpath || !ipath || !old_ipath ||
	    !(claim->previous_owner = strdup(h->holder->instance_id)) ||
	    !(claim->reason = strdup(h->why))) {
		ret = kb_errorf(err, ENOMEM, "claim: out of memory");
		goto out;
	}
	claim->previous_state = h->state;
	snprintf(id, sizeof(id), "%d", cand->broker_id);
	ret = read_index(b, h->holder->instance_id, deadline, &old_id, &old_stat, err);
	if (ret < 0 && ret != -ENOENT)
		goto out;
	struct zk_op ops[] = {
		{.type = ZK_OP_SET, .path = cpath, .data = json, .len = strlen(json),
		 .version = h->stat.version},
		{.type = ZK_OP_CREATE, .path = ipath, .data = id, .len = strlen(id)},
		{.type = ZK_OP_DELETE, .path = old_ipath, .version = old_stat.version},
	};
	ret = zk_multi(b->zk, ops, old_id == cand->broker_id ? 3 : 2, deadline, &failed, &resent,
		       err);
	if (ret == -EEXIST && failed == 1) {
		ret = own_claim(b, req, deadline, out, err);
		goto out;
	}
	if ((ret == -ESTALE || ret == -ENOENT) && resent) {
		ret = claim_is_mine(b, req, cand->broker_id, deadline, &mine, err);
		if (ret == 0 && !mine)
			ret = -ESTALE;
	}
	if (ret == -ESTALE || ret == -ENOENT) {
		ret = 1;
		goto out;
	}
	if (ret < 0)
		goto out;
	log_warn("claim: took over broker id %d from %s (%s)", cand->broker_id,
		 claim->previous_owner, h->why);
	*out = claim;
	claim = NULL;
out:
	claim_free(claim);
	free(json);
	free(cpath);
	free(ipath);
	free(old_ipath);
	return ret;
}

/* Each candidate on the log; the error, bounded, lists as many as fit: "0: i-0abc, owner
 * running; 1: ...". */
static int no_id_error(const struct claim_request *req, const struct survey *s,
		       struct kb_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int ret;

	if (!mem)
		return kb_errorf(err, ENOMEM, "claim: out of memory");
	for (size_t c = 0; c < s->count; c++) {
		const struct held *h = &s->held[c];
		const char *holder = h->holder ? h->holder->instance_id : "?";

		log_warn("claim: broker id %d: held by %s (%s): %s", req->candidates[c].broker_id,
			 holder, h->holder ? claim_owner_state_name(h->state) : "-", h->why);
		fprintf(mem, "%s%d: %s, %s", c ? "; " : "", req->candidates[c].broker_id, holder,
			h->why);
	}
	fclose(mem);
	if (req->candidate_count == 0)
		ret = kb_errorf(err, KB_ENOID, "no broker id available in %s: no candidate (no ENI "
				"tagged for this cluster in this AZ)", req->az ? req->az : "this AZ");
	else
		ret = kb_errorf(err, KB_ENOID, "no broker id available in %s: all %zu candidates "
				"are held (each is on the log): %s", req->az ? req->az : "this AZ",
				req->candidate_count, text ? text : "");
	free(text);
	return ret;
}

/* Takes one of the ids judged takeable, in the order of this instance's hash. 0: done (or
 * planned), 1: none was takeable, 2: every takeable one changed under us (look again). */
static int take_one(struct claim_zk *b, const struct claim_request *req,
		    const struct survey *s, int64_t deadline, struct claim **out,
		    struct kb_error *err)
{
	size_t start = claim_pick(req->instance_id, 0, s->count ? s->count : 1);
	int result = 1;

	for (size_t k = 0; k < s->count; k++) {
		size_t c = (start + k) % s->count;
		const struct held *h = &s->held[c];
		int ret;

		if (h->verdict != CLAIM_TAKE && !(req->plan && h->verdict == CLAIM_WAIT))
			continue;
		if (req->plan) {
			*out = claim_for_candidate(req, &req->candidates[c], CLAIM_TAKEN_OVER);
			if (!*out || !((*out)->previous_owner = strdup(h->holder->instance_id)) ||
			    !((*out)->reason = strdup(h->why)))
				return kb_errorf(err, ENOMEM, "claim: out of memory");
			(*out)->previous_state = h->state;
			(*out)->planned = true;
			return 0;
		}
		ret = take_claim(b, req, c, h, deadline, out, err);
		if (ret <= 0)
			return ret;
		log_info("claim: broker id %d changed before the takeover",
			 req->candidates[c].broker_id);
		result = 2;
	}
	return result;
}

static bool any_waiting(const struct survey *s)
{
	for (size_t c = 0; c < s->count; c++) {
		if (s->held[c].verdict == CLAIM_WAIT)
			return true;
	}
	return false;
}

/* Every candidate is held. 0: taken over (or planned); 1: one became free, claim it;
 * -KB_ENOID: none may be taken. */
static int take_over(struct claim_zk *b, const struct claim_request *req, int64_t deadline,
		     struct claim **out, struct kb_error *err)
{
	struct survey s = {0};
	int ret;

	for (;;) {
		survey_clear(&s);
		ret = read_holders(b, req, deadline, &s, err);
		if (ret < 0 || s.any_free) {
			ret = ret < 0 ? ret : 1;
			break;
		}
		if (s.own < s.count) {
			/* Our claim without our index: only a hand edit does that. Ours anyway. */
			*out = claim_for_candidate(req, &req->candidates[s.own], CLAIM_HELD);
			ret = *out ? 0 : kb_errorf(err, ENOMEM, "claim: out of memory");
			break;
		}
		ret = owner_states(req, &s, deadline, err);
		if (ret == 0)
			ret = judge(b, req, &s, deadline, err);
		if (ret == 0)
			ret = take_one(b, req, &s, deadline, out, err);
		if (ret <= 0)
			break;
		if (ret == 2 && !deadline_passed(deadline))
			continue;
		if (!any_waiting(&s) || deadline_remaining_ms(deadline) < CLAIM_ZK_POLL_MS) {
			ret = no_id_error(req, &s, err);
			break;
		}
		log_info("claim: every candidate is held; waiting for an owner to go away");
		deadline_sleep_ms(deadline, CLAIM_ZK_POLL_MS);
	}
	survey_clear(&s);
	return ret;
}

static int zk_acquire(struct claim_backend *base, const struct claim_request *req,
		      int64_t deadline, struct claim **out, struct kb_error *err)
{
	struct claim_zk *b = to_zk(base);
	int ret;

	if (!valid_name(req->instance_id))
		return kb_errorf(err, KB_EINTERNAL, "claim: invalid instance id '%s'",
				 req->instance_id ? req->instance_id : "");
	/* A rerun, a reboot: one read, no write. */
	ret = own_claim(b, req, deadline, out, err);
	if (ret != -ENOENT || req->existing_only)
		return ret;
	for (;;) {
		ret = claim_free_id(b, req, deadline, out, err);
		if (ret != 1)
			return ret;
		ret = take_over(b, req, deadline, out, err);
		if (ret != 1)
			return ret;
	}
}

static int zk_holder(struct claim_backend *base, int broker_id, int64_t deadline,
		     struct claim **out, struct kb_error *err)
{
	return read_claim(to_zk(base), broker_id, deadline, out, NULL, err);
}

/* What release removes: this instance's index and, when it names this instance, the claim
 * the index points to (else only the index: an inconsistency left by hand). */
struct owned {
	struct claim *claim; /* broker_id always set */
	struct zk_stat index_stat, claim_stat;
	bool claim_is_ours;
};

static int read_owned(struct claim_zk *b, const char *instance_id, int64_t deadline,
		      struct owned *o, struct kb_error *err)
{
	struct kb_error why = {{0}};
	int id;
	int ret;

	ret = read_index(b, instance_id, deadline, &id, &o->index_stat, err);
	if (ret < 0)
		return ret;
	ret = read_claim(b, id, deadline, &o->claim, &o->claim_stat, &why);
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		return kb_errorf(err, -ret, "%s", why.msg);
	o->claim_is_ours = ret == 0 && strcmp(o->claim->instance_id, instance_id) == 0;
	if (!o->claim_is_ours)
		log_warn("release: claim %d does not name %s: removing only its index", id,
			 instance_id);
	if (!o->claim && !(o->claim = calloc(1, sizeof(*o->claim))))
		return kb_errorf(err, ENOMEM, "release: out of memory");
	o->claim->broker_id = id;
	return 0;
}

static int zk_release(struct claim_backend *base, const char *instance_id, bool force,
		      int64_t deadline, struct claim **released, struct kb_error *err)
{
	struct claim_zk *b = to_zk(base);
	struct owned o = {0};
	char *ipath = pathf(b->instances, instance_id);
	char *cpath = NULL;
	bool live = false;
	bool resent = false;
	int ret;

	if (!valid_name(instance_id))
		ret = kb_errorf(err, KB_EINTERNAL, "release: invalid instance id '%s'", instance_id);
	else
		ret = read_owned(b, instance_id, deadline, &o, err);
	if (ret == 0 && (!ipath || !(cpath = claim_path(b, o.claim->broker_id))))
		ret = kb_errorf(err, ENOMEM, "release: out of memory");
	if (ret == 0 && !force)
		ret = registered(b, o.claim->broker_id, deadline, &live, err);
	if (ret == 0 && live)
		ret = kb_errorf(err, KB_EHELD, "broker id %d is registered in /brokers/ids: Kafka "
				"still runs with it (stop it, or --force)", o.claim->broker_id);
	if (ret < 0)
		goto out;
	struct zk_op ops[] = {
		{.type = ZK_OP_DELETE, .path = ipath, .version = o.index_stat.version},
		{.type = ZK_OP_DELETE, .path = cpath, .version = o.claim_stat.version},
	};
	ret = zk_multi(b->zk, ops, o.claim_is_ours ? 2 : 1, deadline, NULL, &resent, err);
	if (ret == -ENOENT && resent)
		ret = 0; /* the first delete went through */
	if (ret == -ENOENT || ret == -ESTALE)
		ret = kb_errorf(err, EAGAIN, "release: claim %d changed meanwhile",
				o.claim->broker_id);
	if (ret == 0 && released) {
		*released = o.claim;
		o.claim = NULL;
	}
out:
	claim_free(o.claim);
	free(cpath);
	free(ipath);
	return ret;
}

static unsigned long zk_op_count(const struct claim_backend *base)
{
	return zk_request_count(((const struct claim_zk *)base)->zk);
}

static void zk_backend_close(struct claim_backend *base)
{
	struct claim_zk *b = to_zk(base);

	zk_close(b->zk);
	free(b->root);
	free(b->claims);
	free(b->instances);
	free(b->clock);
	free(b);
}

static const struct claim_backend_ops zk_ops = {
	.name = "zookeeper",
	.acquire = zk_acquire,
	.holder = zk_holder,
	.release = zk_release,
	.op_count = zk_op_count,
	.close = zk_backend_close,
};

int claim_zk_open(const struct kb_config *cfg, int64_t deadline, struct claim_backend **out,
		  struct kb_error *err)
{
	const char *cluster = cfg->cluster[0] ? cfg->cluster : "default";
	struct zk_options opts = {
		.connect = cfg->zookeeper_connect,
		.auth = cfg->zookeeper_auth,
		.session_timeout_ms = cfg->zookeeper_session_timeout_ms,
		.connect_timeout_ms = cfg->zookeeper_connect_timeout_ms,
	};
	struct claim_zk *b;
	int ret;

	*out = NULL;
	if (!cfg->zookeeper_connect[0])
		return kb_errorf(err, KB_ECONFIG, "key 'zookeeper_connect' is not set: the claim "
				 "needs ZooKeeper");
	if (!valid_name(cluster))
		return kb_errorf(err, KB_ECONFIG, "key 'cluster': '%s' cannot name a ZooKeeper "
				 "node (no '/', not '.' or '..')", cluster);
	b = calloc(1, sizeof(*b));
	if (!b)
		return kb_errorf(err, ENOMEM, "claim: out of memory");
	b->base.ops = &zk_ops;
	if (asprintf(&b->root, "/kafka-bootstrap/%s", cluster) < 0)
		b->root = NULL;
	b->claims = b->root ? pathf(b->root, "claims") : NULL;
	b->instances = b->root ? pathf(b->root, "instances") : NULL;
	b->clock = b->root ? pathf(b->root, "clock") : NULL;
	if (!b->claims || !b->instances || !b->clock) {
		zk_backend_close(&b->base);
		return kb_errorf(err, ENOMEM, "claim: out of memory");
	}
	ret = zk_open(&opts, deadline, &b->zk, err);
	if (ret < 0) {
		zk_backend_close(&b->base);
		return ret;
	}
	*out = &b->base;
	return 0;
}
