/* zk.c: one ZooKeeper session over the C client's asynchronous API, with deadlines.
 *
 * The synchronous calls (zoo_get, zoo_multi) wait for an answer with no limit of their own:
 * a server that accepts the connection and then stalls holds them until the client gives the
 * connection up, 2/3 of the session timeout later. So every request goes out asynchronously
 * and the caller waits on a condition variable until its deadline. A request abandoned at the
 * deadline stays referenced until the client calls its completion (or is closed: after
 * zookeeper_close() no completion can run any more), so a late answer never touches freed
 * memory. It must never log the digest credentials: they are registered with the logger
 * before the client sees them, and the client's lines go through the logger. */
#include "kb/zk.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#include "kb/deadline.h"
#include "kb/log.h"

/* How often a wait re-reads the client's state: the session watcher wakes it sooner. */
#define ZK_POLL_MS 100

struct zk_call {
	struct zk *zk;
	int refs; /* the waiter and the completion, under zk->lock */
	bool done;
	bool abandoned;
	int rc;
	char *data;
	size_t data_len;
	struct Stat stat;
	char **names;
	size_t name_count;
	/* multi: kept until the completion ran, the client writes results there */
	zoo_op_t *ops;
	zoo_op_result_t *results;
	char **paths;
	size_t op_count;
	struct zk_call *next; /* abandoned list */
};

struct zk {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	zhandle_t *zh;
	char *hosts;
	char *chroot; /* "" when none */
	char *auth;
	int session_timeout_ms;
	int connect_timeout_ms;
	unsigned long requests;
	struct zk_call *abandoned;
	/* ACL of the nodes we create below the chroot when digest credentials are set */
	struct ACL acl_entries[2];
	struct ACL_vector acl;
	char scheme_auth[5], id_none[1], scheme_world[6], id_anyone[7];
};

int zk_split_connect(const char *connect, char **hosts, char **chroot)
{
	const char *slash = strchr(connect, '/');
	size_t len = slash ? (size_t)(slash - connect) : strlen(connect);

	*hosts = strndup(connect, len);
	*chroot = strdup(slash ? slash : "");
	if (!*hosts || !*chroot) {
		free(*hosts);
		free(*chroot);
		*hosts = *chroot = NULL;
		return -ENOMEM;
	}
	/* "/" alone is no chroot; a trailing slash would make every path invalid. */
	len = strlen(*chroot);
	while (len > 0 && (*chroot)[len - 1] == '/')
		(*chroot)[--len] = '\0';
	return 0;
}

int zk_client_line_level(const char *line, const char **text)
{
	static const struct {
		const char *tag;
		int level;
	} levels[] = {
		{"ZOO_ERROR@", LOG_LEVEL_ERROR},
		{"ZOO_WARN@", LOG_LEVEL_WARN},
		{"ZOO_INFO@", LOG_LEVEL_INFO},
		{"ZOO_DEBUG@", LOG_LEVEL_DEBUG},
	};

	*text = line;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		const char *at = strstr(line, levels[i].tag);

		if (at) {
			*text = at + strlen(levels[i].tag);
			return levels[i].level;
		}
	}
	/* A line we cannot place is shown, not hidden: it may be the only clue. */
	return LOG_LEVEL_WARN;
}

/* Lines look like "2025-01-15 12:00:01,123:4242(0x7f..):ZOO_WARN@zookeeper_interest@1557:
 * Exceeded deadline by 867ms"; our logger adds its own time and level. */
static void client_log(const char *line)
{
	const char *text;
	int level = zk_client_line_level(line, &text);

	log_msg((enum log_level)level, "zookeeper client: %s", text);
}

/* The client's INFO level prints its environment at every session start: kept for debug. */
static ZooLogLevel client_level(void)
{
	switch (log_get_level()) {
	case LOG_LEVEL_ERROR:
		return ZOO_LOG_LEVEL_ERROR;
	case LOG_LEVEL_DEBUG:
		return ZOO_LOG_LEVEL_DEBUG;
	default:
		return ZOO_LOG_LEVEL_WARN;
	}
}

static const char *state_name(int state)
{
	if (state == ZOO_CONNECTING_STATE)
		return "connecting";
	if (state == ZOO_ASSOCIATING_STATE)
		return "associating";
	if (state == ZOO_CONNECTED_STATE)
		return "connected";
	if (state == ZOO_EXPIRED_SESSION_STATE)
		return "session expired";
	if (state == ZOO_AUTH_FAILED_STATE)
		return "authentication failed";
	return "not connected";
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk *zk = ctx;

	(void)zh;
	(void)path;
	if (type != ZOO_SESSION_EVENT || !zk)
		return;
	log_debug("ZooKeeper %s: %s", zk->hosts, state_name(state));
	pthread_mutex_lock(&zk->lock);
	pthread_cond_broadcast(&zk->cond);
	pthread_mutex_unlock(&zk->lock);
}

static void call_free(struct zk_call *call)
{
	if (!call)
		return;
	free(call->data);
	zk_names_free(call->names, call->name_count);
	for (size_t i = 0; call->paths && i < call->op_count; i++)
		free(call->paths[i]);
	free(call->paths);
	free(call->ops);
	free(call->results);
	free(call);
}

/* Caller holds zk->lock. */
static void call_unref(struct zk_call *call)
{
	struct zk_call **p;

	if (--call->refs > 0)
		return;
	if (call->abandoned) {
		for (p = &call->zk->abandoned; *p; p = &(*p)->next) {
			if (*p == call) {
				*p = call->next;
				break;
			}
		}
	}
	call_free(call);
}

/* Completions run on the client's completion thread (or inside zookeeper_close()). */
static void call_complete(struct zk_call *call, int rc)
{
	struct zk *zk = call->zk;

	call->rc = rc;
	call->done = true;
	pthread_cond_broadcast(&zk->cond);
	call_unref(call);
}

static void data_done(int rc, const char *value, int value_len, const struct Stat *stat,
		      const void *ctx)
{
	struct zk_call *call = (struct zk_call *)ctx;
	struct zk *zk = call->zk; /* call may be freed by call_complete() */

	pthread_mutex_lock(&zk->lock);
	if (rc == ZOK) {
		size_t len = value && value_len > 0 ? (size_t)value_len : 0;

		call->data = malloc(len + 1);
		if (call->data) {
			if (len)
				memcpy(call->data, value, len);
			call->data[len] = '\0';
			call->data_len = len;
		} else {
			rc = ZSYSTEMERROR;
		}
		if (stat)
			call->stat = *stat;
	}
	call_complete(call, rc);
	pthread_mutex_unlock(&zk->lock);
}

static void stat_done(int rc, const struct Stat *stat, const void *ctx)
{
	struct zk_call *call = (struct zk_call *)ctx;
	struct zk *zk = call->zk; /* call may be freed by call_complete() */

	pthread_mutex_lock(&zk->lock);
	if (rc == ZOK && stat)
		call->stat = *stat;
	call_complete(call, rc);
	pthread_mutex_unlock(&zk->lock);
}

static void strings_done(int rc, const struct String_vector *strings, const void *ctx)
{
	struct zk_call *call = (struct zk_call *)ctx;
	struct zk *zk = call->zk; /* call may be freed by call_complete() */

	pthread_mutex_lock(&zk->lock);
	if (rc == ZOK && strings && strings->count > 0) {
		call->names = calloc((size_t)strings->count, sizeof(*call->names));
		for (int32_t i = 0; call->names && i < strings->count; i++) {
			call->names[i] = strdup(strings->data[i]);
			if (!call->names[i]) {
				rc = ZSYSTEMERROR;
				break;
			}
			call->name_count++;
		}
		if (!call->names)
			rc = ZSYSTEMERROR;
	}
	call_complete(call, rc);
	pthread_mutex_unlock(&zk->lock);
}

static void string_done(int rc, const char *value, const void *ctx)
{
	struct zk_call *call = (struct zk_call *)ctx;
	struct zk *zk = call->zk; /* call may be freed by call_complete() */

	(void)value;
	pthread_mutex_lock(&zk->lock);
	call_complete(call, rc);
	pthread_mutex_unlock(&zk->lock);
}

static void void_done(int rc, const void *ctx)
{
	struct zk_call *call = (struct zk_call *)ctx;
	struct zk *zk = call->zk; /* call may be freed by call_complete() */

	pthread_mutex_lock(&zk->lock);
	call_complete(call, rc);
	pthread_mutex_unlock(&zk->lock);
}

static void timespec_at(int64_t deadline, struct timespec *ts)
{
	int64_t wait = deadline_remaining_ms(deadline);

	if (wait > ZK_POLL_MS)
		wait = ZK_POLL_MS;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(wait / 1000);
	ts->tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The open handle's client threads are joined by zookeeper_close(); whatever it did not
 * complete can be freed after it. */
static void close_handle(struct zk *zk)
{
	struct zk_call *call;

	if (!zk->zh)
		return;
	zookeeper_close(zk->zh);
	zk->zh = NULL;
	pthread_mutex_lock(&zk->lock);
	while ((call = zk->abandoned)) {
		zk->abandoned = call->next;
		call_free(call);
	}
	pthread_mutex_unlock(&zk->lock);
}

static int open_handle(struct zk *zk, struct kb_error *err)
{
	int rc;

	zoo_set_debug_level(client_level());
	zk->zh = zookeeper_init2(zk->hosts, watcher, zk->session_timeout_ms, NULL, zk, 0,
				 client_log);
	if (!zk->zh)
		return kb_errorf(err, KB_ECONFIG, "ZooKeeper %s: cannot start a client: %s",
				 zk->hosts, strerror(errno ? errno : EINVAL));
	if (zk->auth[0] == '\0')
		return 0;
	/* Queued before anything else on every (re)connection; digest never fails on the
	 * server side (a wrong password only yields another identity), so no need to wait. */
	rc = zoo_add_auth(zk->zh, "digest", zk->auth, (int)strlen(zk->auth), NULL, NULL);
	if (rc != ZOK)
		return kb_errorf(err, EIO, "ZooKeeper %s: cannot add digest credentials: %s",
				 zk->hosts, zerror(rc));
	return 0;
}

static int wait_connected(struct zk *zk, int64_t deadline, struct kb_error *err)
{
	int64_t started = deadline_now_ms();
	/* A bound of its own: servers that never answer fail this attempt early, and the stage
	 * is retried until the run's deadline (a rolling restart) instead of waiting it out. */
	bool bounded = zk->connect_timeout_ms > 0 &&
		       deadline_after_ms(zk->connect_timeout_ms) < deadline;
	struct timespec ts;
	int state;
	int ret;

	if (bounded)
		deadline = deadline_after_ms(zk->connect_timeout_ms);
	for (;;) {
		state = zoo_state(zk->zh);
		if (state == ZOO_CONNECTED_STATE)
			return 0;
		if (state == ZOO_AUTH_FAILED_STATE)
			return kb_errorf(err, KB_EDENIED,
					 "ZooKeeper %s: authentication failed", zk->hosts);
		if (state == ZOO_EXPIRED_SESSION_STATE) {
			/* Our nodes are persistent: a new session sees them all. */
			log_warn("ZooKeeper %s: session expired, opening a new one", zk->hosts);
			close_handle(zk);
			ret = open_handle(zk, err);
			if (ret < 0)
				return ret;
			continue;
		}
		if (deadline_passed(deadline))
			return kb_errorf(err, KB_EUNAVAIL,
					 "ZooKeeper %s unreachable: no session after %lld ms, "
					 "%s (last state: %s)",
					 zk->hosts, (long long)(deadline_now_ms() - started),
					 bounded ? "zookeeper_connect_timeout_ms" : "until the deadline",
					 state_name(state));
		pthread_mutex_lock(&zk->lock);
		timespec_at(deadline, &ts);
		pthread_cond_timedwait(&zk->cond, &zk->lock, &ts);
		pthread_mutex_unlock(&zk->lock);
	}
}

static char *full_path(const struct zk *zk, const char *path)
{
	char *full = NULL;

	if (asprintf(&full, "%s%s", zk->chroot,
		     zk->chroot[0] && strcmp(path, "/") == 0 ? "" : path) < 0)
		return NULL;
	return full;
}

enum call_kind { CALL_GET, CALL_EXISTS, CALL_CHILDREN, CALL_CREATE, CALL_SET, CALL_MULTI };

struct zk_req {
	enum call_kind kind;
	const char *path;
	bool raw_path; /* path already includes the chroot */
	const char *data; /* create, set */
	size_t len;       /* set */
	const struct ACL_vector *acl;
	const struct zk_op *ops; /* multi */
	size_t op_count;
};

static int build_ops(struct zk *zk, struct zk_call *call, const struct zk_req *req)
{
	call->ops = calloc(req->op_count, sizeof(*call->ops));
	call->results = calloc(req->op_count, sizeof(*call->results));
	call->paths = calloc(req->op_count, sizeof(*call->paths));
	if (!call->ops || !call->results || !call->paths)
		return -ENOMEM;
	call->op_count = req->op_count;
	for (size_t i = 0; i < req->op_count; i++) {
		const struct zk_op *op = &req->ops[i];

		call->paths[i] = full_path(zk, op->path);
		if (!call->paths[i])
			return -ENOMEM;
		switch (op->type) {
		case ZK_OP_CREATE:
			zoo_create_op_init(&call->ops[i], call->paths[i], op->data, (int)op->len,
					   &zk->acl, 0, NULL, 0);
			break;
		case ZK_OP_SET:
			zoo_set_op_init(&call->ops[i], call->paths[i], op->data, (int)op->len,
					op->version, NULL);
			break;
		case ZK_OP_DELETE:
			zoo_delete_op_init(&call->ops[i], call->paths[i], op->version);
			break;
		case ZK_OP_CHECK:
			zoo_check_op_init(&call->ops[i], call->paths[i], op->version);
			break;
		}
	}
	return 0;
}

static int start_call(struct zk *zk, struct zk_call *call, const struct zk_req *req,
		      const char *path)
{
	switch (req->kind) {
	case CALL_GET:
		return zoo_aget(zk->zh, path, 0, data_done, call);
	case CALL_EXISTS:
		return zoo_aexists(zk->zh, path, 0, stat_done, call);
	case CALL_CHILDREN:
		return zoo_aget_children(zk->zh, path, 0, strings_done, call);
	case CALL_CREATE:
		return zoo_acreate(zk->zh, path, req->data, req->data ? (int)strlen(req->data) : -1,
				   req->acl, 0, string_done, call);
	case CALL_SET:
		return zoo_aset(zk->zh, path, req->data, (int)req->len, -1, stat_done, call);
	case CALL_MULTI:
		return zoo_amulti(zk->zh, (int)call->op_count, call->ops, call->results, void_done,
				  call);
	}
	return ZBADARGUMENTS;
}

static bool connection_lost(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED ||
	       rc == ZINVALIDSTATE || rc == ZCLOSING || rc == ZSESSIONMOVED;
}

/* Waits for the call's completion; 0 when it came (call->rc is ZooKeeper's answer). */
static int wait_call(struct zk *zk, struct zk_call *call, int64_t deadline)
{
	struct timespec ts;
	int ret = 0;

	pthread_mutex_lock(&zk->lock);
	while (!call->done && !deadline_passed(deadline)) {
		timespec_at(deadline, &ts);
		pthread_cond_timedwait(&zk->cond, &zk->lock, &ts);
	}
	if (!call->done) {
		call->abandoned = true;
		call->next = zk->abandoned;
		zk->abandoned = call;
		ret = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&zk->lock);
	return ret;
}

static void call_release(struct zk *zk, struct zk_call *call)
{
	pthread_mutex_lock(&zk->lock);
	call_unref(call);
	pthread_mutex_unlock(&zk->lock);
}

/* One attempt: 0 with *out answered (call->rc is ZooKeeper's answer), 1 when it was not
 * sent because the connection is going (try again), negative on failure. */
static int send_once(struct zk *zk, const struct zk_req *req, const char *path,
		     int64_t deadline, struct zk_call **out, struct kb_error *err)
{
	struct zk_call *call = calloc(1, sizeof(*call));
	int rc;

	*out = NULL;
	if (!call || (req->kind == CALL_MULTI && build_ops(zk, call, req) < 0)) {
		call_free(call);
		return kb_errorf(err, ENOMEM, "ZooKeeper request: out of memory");
	}
	call->zk = zk;
	call->refs = 2;
	rc = start_call(zk, call, req, path);
	if (rc != ZOK) {
		/* Not sent: no completion will come. */
		call_free(call);
		if (connection_lost(rc))
			return 1;
		return kb_errorf(err, EIO, "ZooKeeper %s: cannot send a request: %s", zk->hosts,
				 zerror(rc));
	}
	zk->requests++;
	if (wait_call(zk, call, deadline) < 0) {
		call_release(zk, call);
		return kb_errorf(err, KB_EUNAVAIL, "ZooKeeper %s: no answer before the deadline",
				 zk->hosts);
	}
	*out = call;
	return 0;
}

/* Sends req until ZooKeeper answers it (a lost connection is waited out and the request sent
 * again); *out holds the answer. */
static int send_request(struct zk *zk, const struct zk_req *req, int64_t deadline,
			struct zk_call **out, bool *resent, struct kb_error *err)
{
	char *path = NULL;
	int ret;

	if (req->path && !(path = req->raw_path ? strdup(req->path) : full_path(zk, req->path)))
		return kb_errorf(err, ENOMEM, "ZooKeeper request: out of memory");
	for (;;) {
		ret = wait_connected(zk, deadline, err);
		if (ret == 0)
			ret = send_once(zk, req, path, deadline, out, err);
		if (ret == 1) {
			/* The state changes under us: a pause keeps this from spinning until the
			 * client has noticed. */
			if (deadline_sleep_ms(deadline, ZK_POLL_MS / 10))
				continue;
			ret = kb_errorf(err, KB_EUNAVAIL, "ZooKeeper %s: connection lost until the "
					"deadline", zk->hosts);
		}
		if (ret < 0 || !connection_lost((*out)->rc))
			break;
		log_debug("ZooKeeper %s: %s; sending the request again", zk->hosts,
			  zerror((*out)->rc));
		if (resent)
			*resent = true;
		call_release(zk, *out);
		*out = NULL;
	}
	free(path);
	return ret;
}

/* ZooKeeper's answer to our convention. Expected outcomes get no message: the caller
 * decides whether they are errors. */
static int map_rc(struct zk *zk, int rc, const char *what, const char *path,
		  struct kb_error *err)
{
	if (rc == ZOK)
		return 0;
	if (rc == ZNONODE)
		return -ENOENT;
	if (rc == ZNODEEXISTS)
		return -EEXIST;
	if (rc == ZBADVERSION)
		return -ESTALE;
	if (rc == ZNOTEMPTY)
		return -ENOTEMPTY;
	if (rc == ZSYSTEMERROR)
		return kb_errorf(err, ENOMEM, "ZooKeeper %s %s: out of memory", what, path);
	if (rc == ZNOAUTH)
		return kb_errorf(err, KB_EDENIED,
				 "ZooKeeper %s: %s %s: not authorised (NOAUTH): the node's ACL "
				 "needs other credentials (zookeeper_auth)", zk->hosts, what, path);
	return kb_errorf(err, EIO, "ZooKeeper %s: %s %s: %s", zk->hosts, what, path,
			 zerror(rc));
}

static void copy_stat(const struct Stat *in, struct zk_stat *out)
{
	if (!out)
		return;
	out->version = in->version;
	out->ctime_ms = in->ctime;
	out->mtime_ms = in->mtime;
}

int zk_get(struct zk *zk, const char *path, int64_t deadline, char **data, size_t *len,
	   struct zk_stat *stat, struct kb_error *err)
{
	struct zk_req req = {.kind = CALL_GET, .path = path};
	struct zk_call *call;
	int ret;

	*data = NULL;
	ret = send_request(zk, &req, deadline, &call, NULL, err);
	if (ret < 0)
		return ret;
	ret = map_rc(zk, call->rc, "read", path, err);
	if (ret == 0) {
		*data = call->data;
		call->data = NULL;
		if (len)
			*len = call->data_len;
		copy_stat(&call->stat, stat);
	}
	call_release(zk, call);
	return ret;
}

int zk_exists(struct zk *zk, const char *path, int64_t deadline, struct zk_stat *stat,
	      struct kb_error *err)
{
	struct zk_req req = {.kind = CALL_EXISTS, .path = path};
	struct zk_call *call;
	int ret;

	ret = send_request(zk, &req, deadline, &call, NULL, err);
	if (ret < 0)
		return ret;
	ret = map_rc(zk, call->rc, "look up", path, err);
	if (ret == 0)
		copy_stat(&call->stat, stat);
	call_release(zk, call);
	return ret;
}

int zk_children(struct zk *zk, const char *path, int64_t deadline, char ***names,
		size_t *count, struct kb_error *err)
{
	struct zk_req req = {.kind = CALL_CHILDREN, .path = path};
	struct zk_call *call;
	int ret;

	*names = NULL;
	*count = 0;
	ret = send_request(zk, &req, deadline, &call, NULL, err);
	if (ret < 0)
		return ret;
	ret = map_rc(zk, call->rc, "list", path, err);
	if (ret == 0) {
		*names = call->names;
		*count = call->name_count;
		call->names = NULL;
		call->name_count = 0;
	}
	call_release(zk, call);
	return ret;
}

void zk_names_free(char **names, size_t count)
{
	for (size_t i = 0; names && i < count; i++)
		free(names[i]);
	free(names);
}

/* One node, empty; -EEXIST and -ENOENT (parent missing) returned as they are. */
static int create_one(struct zk *zk, const char *path, bool below_chroot,
		      const struct ACL_vector *acl, int64_t deadline, struct kb_error *err)
{
	struct zk_req req = {.kind = CALL_CREATE, .path = path, .raw_path = !below_chroot,
			     .acl = acl};
	struct zk_call *call;
	int ret;

	ret = send_request(zk, &req, deadline, &call, NULL, err);
	if (ret < 0)
		return ret;
	ret = map_rc(zk, call->rc, "create", path, err);
	call_release(zk, call);
	return ret;
}

int zk_create_path(struct zk *zk, const char *path, int64_t deadline, struct kb_error *err)
{
	size_t chroot_len = strlen(zk->chroot);
	char *full;
	int ret;

	/* Usually only the last node is missing: one request. */
	ret = create_one(zk, path, true, &zk->acl, deadline, err);
	if (ret != -ENOENT)
		return ret == -EEXIST ? 0 : ret;
	full = full_path(zk, path);
	if (!full)
		return kb_errorf(err, ENOMEM, "ZooKeeper create %s: out of memory", path);
	/* From the top: the chroot's own components stay open, ours get our ACL. */
	for (char *p = full;;) {
		size_t len;

		p = strchr(p + 1, '/');
		len = p ? (size_t)(p - full) : strlen(full);
		if (p)
			*p = '\0';
		ret = create_one(zk, full, false,
				 len <= chroot_len ? &ZOO_OPEN_ACL_UNSAFE : &zk->acl, deadline, err);
		if (ret == -EEXIST)
			ret = 0;
		if (ret < 0 || !p)
			break;
		*p = '/';
	}
	if (ret == -ENOENT)
		ret = kb_errorf(err, EIO, "ZooKeeper %s: create %s: a parent vanished meanwhile",
				zk->hosts, path);
	free(full);
	return ret;
}

int zk_set(struct zk *zk, const char *path, const char *data, size_t len, int64_t deadline,
	   struct zk_stat *stat, struct kb_error *err)
{
	struct zk_req req = {.kind = CALL_SET, .path = path, .data = data, .len = len};
	struct zk_call *call;
	int ret;

	ret = send_request(zk, &req, deadline, &call, NULL, err);
	if (ret < 0)
		return ret;
	ret = map_rc(zk, call->rc, "write", path, err);
	if (ret == 0)
		copy_stat(&call->stat, stat);
	call_release(zk, call);
	return ret;
}

/* The first op that failed: ZooKeeper marks the ops it did not get to with
 * ZRUNTIMEINCONSISTENCY and the ones before the failure with ZOK. */
static size_t first_failed(const struct zk_call *call, int *rc)
{
	for (size_t i = 0; i < call->op_count; i++) {
		int r = call->results[i].err;

		if (r != ZOK && r != ZRUNTIMEINCONSISTENCY) {
			*rc = r;
			return i;
		}
	}
	return 0;
}

int zk_multi(struct zk *zk, const struct zk_op *ops, size_t count, int64_t deadline,
	     size_t *failed, bool *resent, struct kb_error *err)
{
	struct zk_req req = {.kind = CALL_MULTI, .ops = ops, .op_count = count};
	struct zk_call *call;
	size_t index = 0;
	int rc;
	int ret;

	if (resent)
		*resent = false;
	ret = send_request(zk, &req, deadline, &call, resent, err);
	if (ret < 0)
		return ret;
	rc = call->rc;
	if (rc != ZOK)
		index = first_failed(call, &rc);
	if (failed)
		*failed = index;
	ret = map_rc(zk, rc, "multi on", count ? ops[index].path : "-", err);
	call_release(zk, call);
	return ret;
}

static void set_acl(struct zk *zk)
{
	if (zk->auth[0] == '\0') {
		zk->acl = ZOO_OPEN_ACL_UNSAFE;
		return;
	}
	/* "auth" with an empty id: every identity this session authenticated as. */
	strcpy(zk->scheme_auth, "auth");
	strcpy(zk->scheme_world, "world");
	strcpy(zk->id_anyone, "anyone");
	zk->acl_entries[0].perms = ZOO_PERM_ALL;
	zk->acl_entries[0].id.scheme = zk->scheme_auth;
	zk->acl_entries[0].id.id = zk->id_none;
	zk->acl_entries[1].perms = ZOO_PERM_READ;
	zk->acl_entries[1].id.scheme = zk->scheme_world;
	zk->acl_entries[1].id.id = zk->id_anyone;
	zk->acl.count = 2;
	zk->acl.data = zk->acl_entries;
}

static int zk_new(const struct zk_options *opts, struct zk **out)
{
	struct zk *zk = calloc(1, sizeof(*zk));
	pthread_condattr_t attr;

	*out = NULL;
	if (!zk)
		return -ENOMEM;
	pthread_mutex_init(&zk->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&zk->cond, &attr);
	pthread_condattr_destroy(&attr);
	zk->session_timeout_ms = opts->session_timeout_ms;
	zk->connect_timeout_ms = opts->connect_timeout_ms;
	zk->auth = strdup(opts->auth ? opts->auth : "");
	if (!zk->auth || zk_split_connect(opts->connect, &zk->hosts, &zk->chroot) < 0) {
		zk_close(zk);
		return -ENOMEM;
	}
	set_acl(zk);
	*out = zk;
	return 0;
}

int zk_open(const struct zk_options *opts, int64_t deadline, struct zk **out,
	    struct kb_error *err)
{
	struct zk *zk;
	int ret;

	*out = NULL;
	log_add_secret(opts->auth);
	if (opts->auth && strchr(opts->auth, ':'))
		log_add_secret(strchr(opts->auth, ':') + 1);
	if (zk_new(opts, &zk) < 0)
		return kb_errorf(err, ENOMEM, "ZooKeeper: out of memory");
	log_debug("ZooKeeper %s: connecting (chroot '%s', session timeout %d ms%s)", zk->hosts,
		  zk->chroot, zk->session_timeout_ms, zk->auth[0] ? ", digest credentials" : "");
	ret = open_handle(zk, err);
	if (ret == 0)
		ret = wait_connected(zk, deadline, err);
	if (ret < 0) {
		zk_close(zk);
		return ret;
	}
	*out = zk;
	return 0;
}

void zk_close(struct zk *zk)
{
	if (!zk)
		return;
	close_handle(zk);
	pthread_cond_destroy(&zk->cond);
	pthread_mutex_destroy(&zk->lock);
	free(zk->hosts);
	free(zk->chroot);
	free(zk->auth);
	free(zk);
}

const char *zk_servers(const struct zk *zk)
{
	return zk->hosts;
}

unsigned long zk_request_count(const struct zk *zk)
{
	return zk->requests;
}
