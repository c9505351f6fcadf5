/* private/aws.h: the policy parts of aws.c as pure functions, and hooks for tests and the
 * test-only probe (tests/tools/kb-aws-probe.c). Product code outside aws.c uses aws.h only. */
#ifndef KB_PRIVATE_AWS_H
#define KB_PRIVATE_AWS_H

#include <stdbool.h>
#include <stdint.h>

#include "kb/aws.h"

/* What a failed attempt asks of the retry policy (botocore retries/standard.py). */
enum aws_retry_kind {
	AWS_RETRY_NONE,       /* success or a final error */
	AWS_RETRY_THROTTLING, /* throttling code: retry, quota cost 5 */
	AWS_RETRY_TRANSIENT,  /* 500/502/503/504, RequestTimeout, connection error: cost 5 */
	AWS_RETRY_TIMEOUT,    /* connect or read timeout: cost 10 */
};

/* transport_ret: http_send's return value (0 when an answer came). */
enum aws_retry_kind aws_retry_classify(long http_status, const char *code, int transport_ret);

#define AWS_RETRY_BASE_MS 1000
#define AWS_RETRY_CAP_MS 20000
#define AWS_QUOTA_MAX 500

/* The SDKs' retry quota: a retry is taken only while the bucket can pay for it. */
struct aws_retry_quota {
	int tokens;
	int last_cost; /* of the last retry of the current call, 0 when it had none */
};

void aws_quota_init(struct aws_retry_quota *q);
/* Takes the retry's cost; false (nothing taken) when the bucket cannot pay. */
bool aws_quota_acquire(struct aws_retry_quota *q, enum aws_retry_kind kind);
/* A call succeeded: refunds the last retry's cost, or 1 when it needed none. */
void aws_quota_success(struct aws_retry_quota *q);

/* Codes meaning the request's time was off: with a skewed Date, correct and retry once. */
bool aws_code_is_clock_skew(const char *code);
/* Codes meaning the credentials were refused: refresh them (IMDS) and retry once. */
bool aws_code_is_credentials(const char *code);

/* Server time minus local_wall_ms when the HTTP Date header differs from it by more than
 * 4 minutes (the SDKs' threshold); false when not skewed or unparsable. */
bool aws_date_skew_ms(const char *date_header, int64_t local_wall_ms, int64_t *offset_ms);

/* The endpoint URL of a service: AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL (unless
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else https://<service>.<region>.amazonaws.com
 * (.com.cn in cn- regions). *configured is true for a URL from the environment (plain http
 * is then accepted). */
int aws_resolve_endpoint(enum aws_service service, const char *region, char **url,
			 bool *configured, struct kb_error *err);
/* "ec2", "cloudformation", "autoscaling": the SigV4 service name. */
const char *aws_service_name(enum aws_service service);

/* The form body of a call ("Action=...&Version=...&..."), percent-encoded. */
char *aws_params_encode(const struct aws_params *params);

/* Tests: the randomness behind the backoff and the wall clock behind signing times. */
void aws_ctx_set_random(struct aws_ctx *ctx, double (*fn)(void *arg), void *arg);
void aws_ctx_set_wall_clock(struct aws_ctx *ctx, int64_t (*fn)(void *arg), void *arg);
int64_t aws_ctx_clock_offset_ms(const struct aws_ctx *ctx);
int aws_ctx_quota_tokens(const struct aws_ctx *ctx);
/* Connections opened to the service's endpoint so far. */
long aws_ctx_connects(const struct aws_ctx *ctx, enum aws_service service);

#endif
