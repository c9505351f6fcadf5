/* zk.h: one ZooKeeper session, shared by the claim and by `signal --wait-registered`.
 *
 * The connect string is ZooKeeper's own, host:port[,host:port...][/chroot]. The chroot is
 * applied here, by prefixing paths, rather than by the C client, so that a chroot that does
 * not exist yet (a cluster's first boot) can be created like any other parent. With digest
 * credentials, nodes created below the chroot get an ACL that lets those credentials do
 * everything and everyone else read; chroot components themselves stay open, because Kafka
 * (without our credentials) creates its own nodes there.
 *
 * Every call takes an absolute deadline. A lost connection is waited out and the request
 * sent again, within the deadline; -KB_EUNAVAIL (naming the servers) when the deadline
 * passes first. A write sent again may have been applied the first time: zk_multi() says so,
 * and the caller decides by reading. The C client's own log lines go through log.h, at their
 * own levels. Digest credentials are registered as a secret before the client sees them. */
#ifndef KB_ZK_H
#define KB_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

struct zk;

struct zk_options {
	const char *connect;    /* host:port[,host:port...][/chroot] */
	const char *auth;       /* digest "user:password"; NULL or "" for none */
	int session_timeout_ms; /* the server clamps it to 2..20 ticks */
	/* Longest wait for a session, each time one is needed; 0: the caller's deadline only. */
	int connect_timeout_ms;
};

/* Opens a session and waits until it is connected. */
int zk_open(const struct zk_options *opts, int64_t deadline, struct zk **out,
	    struct kb_error *err);
/* Closes the session; zk_close(NULL) does nothing. */
void zk_close(struct zk *zk);
/* "host:port,host:port", for messages. Borrowed. */
const char *zk_servers(const struct zk *zk);
/* Requests sent so far, resends included (a multi is one request). */
unsigned long zk_request_count(const struct zk *zk);

struct zk_stat {
	int32_t version;
	int64_t ctime_ms; /* the server's wall clock when the node was created */
	int64_t mtime_ms; /* ... and last written */
};

/* Reads return 0, -ENOENT when the node does not exist, -KB_EDENIED (NOAUTH),
 * -KB_EUNAVAIL. Paths are below the chroot. */
int zk_get(struct zk *zk, const char *path, int64_t deadline, char **data, size_t *len,
	   struct zk_stat *stat, struct kb_error *err);
int zk_exists(struct zk *zk, const char *path, int64_t deadline, struct zk_stat *stat,
	      struct kb_error *err);
/* Children names, unsorted; free with zk_names_free(). */
int zk_children(struct zk *zk, const char *path, int64_t deadline, char ***names,
		size_t *count, struct kb_error *err);
void zk_names_free(char **names, size_t count);

/* Creates path and every missing ancestor (chroot included), empty, persistent; existing
 * nodes are left as they are. */
int zk_create_path(struct zk *zk, const char *path, int64_t deadline, struct kb_error *err);
/* Overwrites path's data whatever its version; *stat is the node after the write, so its
 * mtime_ms is the server's clock at that moment. -ENOENT when the node does not exist. */
int zk_set(struct zk *zk, const char *path, const char *data, size_t len, int64_t deadline,
	   struct zk_stat *stat, struct kb_error *err);

enum zk_op_type { ZK_OP_CREATE, ZK_OP_SET, ZK_OP_DELETE, ZK_OP_CHECK };

struct zk_op {
	enum zk_op_type type;
	const char *path;
	const char *data; /* create, set */
	size_t len;
	int version; /* set, delete, check: expected version, -1 for any */
};

/* All ops or none (ZooKeeper's multi). Returns 0, or the first failing op's error:
 * -EEXIST (create: node exists), -ENOENT (no node, or a create's parent missing),
 * -ESTALE (version differs), -ENOTEMPTY, -KB_EDENIED; *failed is its index. *resent is set
 * when the request was sent again after a lost connection: the first one may have been
 * applied, so an -EEXIST or -ESTALE can be this caller's own earlier success. */
int zk_multi(struct zk *zk, const struct zk_op *ops, size_t count, int64_t deadline,
	     size_t *failed, bool *resent, struct kb_error *err);

/* Exposed for tests. */
int zk_split_connect(const char *connect, char **hosts, char **chroot);
/* The log level of one line of the C client's log ("...:ZOO_WARN@func@line: text") and
 * where its text starts. */
int zk_client_line_level(const char *line, const char **text);

#endif
