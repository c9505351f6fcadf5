/* private/imds.h: counters for tests, the probe and the benchmark (imds.h stays pinned). */
#ifndef KB_PRIVATE_IMDS_H
#define KB_PRIVATE_IMDS_H

#include "kb/imds.h"

/* HTTP requests sent to IMDS so far (token PUTs, GETs and their retries). */
unsigned imds_client_calls(const struct imds_client *client);

#endif
