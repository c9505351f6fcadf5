/* sigv4.h: AWS Signature Version 4, header variant.
 *
 * Built as aws-c-auth's aws_signing.c is: one state struct holds every intermediate buffer,
 * filled by steps run in order (canonical request, string to sign, signing key, signature,
 * Authorization value); include/kb/private/sigv4.h exposes the steps so tests can check each
 * one against AWS's test suite byte for byte. The time comes in with the configuration, never
 * from the clock, so a corrected clock offset and the test suite's fixed times use one path.
 *
 * The signer owns the headers it adds: X-Amz-Date always, X-Amz-Security-Token when the
 * credentials carry a session token, X-Amz-Content-Sha256 when asked (S3 style). The caller
 * sends them with the values left in the state. Every header the caller passes is signed, so
 * it passes exactly the headers it sends (Query API: Host and Content-Type). */
#ifndef KB_SIGV4_H
#define KB_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

struct sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" for long-term credentials */
};

struct sigv4_config {
	const char *region;
	const char *service;
	int64_t time_s; /* seconds since the epoch, already corrected for clock skew */
	const struct sigv4_credentials *creds;
	bool sign_body;          /* add and sign x-amz-content-sha256 (S3 style) */
	bool omit_session_token; /* token sent but left out of the signature (never for AWS APIs
				  * we call; the suite has a case for it) */
};

struct sigv4_header {
	const char *name;
	const char *value;
};

/* A query parameter, not yet percent-encoded. */
struct sigv4_param {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;
	const char *path; /* as in the request line ("" means "/"); SigV4 for every service
			   * but S3 percent-encodes it (again) */
	bool normalize_path; /* remove dot segments and empty segments (every service but S3) */
	const struct sigv4_param *query;
	size_t query_count;
	const struct sigv4_header *headers;
	size_t header_count;
	const void *payload; /* exactly the bytes sent */
	size_t payload_len;
};

struct sigv4_state {
	char amz_date[17]; /* 20150830T123600Z: the X-Amz-Date value */
	char date[9];      /* 20150830 */
	char payload_hash[65];
	char *canonical_request;
	char *signed_headers;
	char *scope; /* 20150830/us-east-1/service/aws4_request */
	char *string_to_sign;
	unsigned char signing_key[32];
	char signature[65];
	char *authorization; /* the Authorization header value */
};

/* Runs every step. On failure the state holds what was built so far; clear it either way. */
int sigv4_sign(struct sigv4_state *st, const struct sigv4_request *req,
	       const struct sigv4_config *cfg, struct kb_error *err);
/* Frees the buffers and wipes the signing key. */
void sigv4_state_clear(struct sigv4_state *st);

/* Percent-encodes every byte but A-Za-z0-9-_.~ (RFC 3986 unreserved), and '/' too unless
 * keep_slash, as SigV4 and botocore's Query serializer do. Newly allocated, NULL when out of
 * memory. */
char *sigv4_uri_encode(const char *s, size_t len, bool keep_slash);

#endif
