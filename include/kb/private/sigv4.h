/* private/sigv4.h: the steps of sigv4_sign(), one by one, for the tests (aws-c-auth keeps
 * its steps in include/aws/auth/private/aws_signing.h for the same reason). Product code
 * calls sigv4_sign() only. Each step reads what the earlier ones left in the state. */
#ifndef KB_PRIVATE_SIGV4_H
#define KB_PRIVATE_SIGV4_H

#include "kb/sigv4.h"

/* Fills amz_date, date, payload_hash, signed_headers, canonical_request. */
int sigv4_build_canonical_request(struct sigv4_state *st, const struct sigv4_request *req,
				  const struct sigv4_config *cfg);
/* Fills scope, string_to_sign. */
int sigv4_build_string_to_sign(struct sigv4_state *st, const struct sigv4_config *cfg);
/* Fills signing_key. */
int sigv4_derive_signing_key(struct sigv4_state *st, const struct sigv4_config *cfg);
/* Fills signature. */
int sigv4_compute_signature(struct sigv4_state *st);
/* Fills authorization. */
int sigv4_build_authorization(struct sigv4_state *st, const struct sigv4_config *cfg);

/* RFC 3986 dot-segment removal plus empty-segment collapse; a trailing '/' is kept. */
char *sigv4_normalize_path(const char *path);

#endif
