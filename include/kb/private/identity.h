/* private/identity.h: the identity document's parser, for its fuzz target
 * (tests/fuzz/fuzz_imds_identity.c). Product code outside identity.c uses stages.h only. */
#ifndef KB_PRIVATE_IDENTITY_H
#define KB_PRIVATE_IDENTITY_H

#include "kb/error.h"
#include "kb/pipeline.h"

/* IMDS's dynamic/instance-identity/document (NUL-terminated): sets instance_id, az, region,
 * private_ip and account_id of id, each a single token (trailing newline dropped, freeing
 * what the slot held). A refusal says why in err; fields set before it stay set, for the
 * caller to free. */
int identity_parse_document(struct kb_identity *id, const char *text, struct kb_error *err);

#endif
