/* imds.h: the EC2 instance metadata service, IMDSv2 only.
 *
 * A session token is PUT once (TTL 21600 s) and sent on every GET; a 401 gets a new token and
 * one retry. Connection errors and 5xx are retried with backoff within the caller's deadline.
 * The endpoint is AWS_EC2_METADATA_SERVICE_ENDPOINT (or _MODE=IPv6), default
 * http://169.254.169.254; AWS_EC2_METADATA_DISABLED=true disables it. */
#ifndef KB_IMDS_H
#define KB_IMDS_H

#include <stdint.h>

#include "kb/error.h"

struct imds_client;

struct imds_options {
	const char *endpoint; /* NULL: from the environment, else the default */
	int connect_timeout_ms;
	int timeout_ms;
};

struct imds_client *imds_client_new(const struct imds_options *opts, struct kb_error *err);
void imds_client_free(struct imds_client *client);

/* GET /latest/<path> ("meta-data/instance-id"). *out is NUL-terminated, trailing newline
 * kept as sent; the caller frees it. -ENOENT on 404 (absent key); -KB_EUNAVAIL when IMDS did
 * not answer before the deadline. */
int imds_get(struct imds_client *client, const char *path, int64_t deadline, char **out,
	     struct kb_error *err);

/* As imds_get, but a 404 is retried (growing interval, capped) until the deadline: for the
 * keys of a just-attached ENI, which IMDS lists only after a lag. -KB_ETIMEOUT when it never
 * appeared. */
int imds_wait(struct imds_client *client, const char *path, int64_t deadline, char **out,
	      struct kb_error *err);

struct imds_credentials {
	char *access_key_id;
	char *secret_access_key; /* registered with the logger as a secret */
	char *token;             /* registered with the logger as a secret */
	int64_t expiration_wall_ms;
};

/* The instance role's credentials (iam/security-credentials/<role>). */
int imds_get_credentials(struct imds_client *client, int64_t deadline,
			 struct imds_credentials *out, struct kb_error *err);
void imds_credentials_clear(struct imds_credentials *creds);

/* Parses the security-credentials JSON; exposed for tests and the fuzz target. */
int imds_parse_credentials(const char *json, size_t len, struct imds_credentials *out,
			   struct kb_error *err);

#endif
