/* claim_backend.h: what a claim backend implements; callers only see claim.h.
 * (wireguard-tools' ipc.c does the same with its per-OS backends.) */
#ifndef KB_CLAIM_BACKEND_H
#define KB_CLAIM_BACKEND_H

#include "kb/claim.h"

struct claim_backend_ops {
	const char *name;
	int (*acquire)(struct claim_backend *backend, const struct claim_request *req,
		       int64_t deadline, struct claim **out, struct kb_error *err);
	int (*holder)(struct claim_backend *backend, int broker_id, int64_t deadline,
		      struct claim **out, struct kb_error *err);
	int (*release)(struct claim_backend *backend, const char *instance_id, bool force,
		       int64_t deadline, struct claim **released, struct kb_error *err);
	unsigned long (*op_count)(const struct claim_backend *backend);
	void (*close)(struct claim_backend *backend);
};

/* First member of every backend's own struct. */
struct claim_backend {
	const struct claim_backend_ops *ops;
};

int claim_zk_open(const struct kb_config *cfg, int64_t deadline, struct claim_backend **out,
		  struct kb_error *err);

/* Helpers every backend uses (claim.c). */
struct claim *claim_for_candidate(const struct claim_request *req,
				  const struct claim_candidate *cand, enum claim_how how);
const struct claim_candidate *claim_find_candidate(const struct claim_request *req, int id);

#endif
