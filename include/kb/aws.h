/* aws.h: credentials, region, endpoints and one signed AWS Query API call.
 *
 * The layer every AWS client module (ec2, cfn, autoscaling) goes through: it builds the form
 * body, signs it with SigV4 (sigv4.c), sends it over one reused libcurl connection per endpoint
 * (http.c), retries throttling and transient errors as the SDKs' "standard" mode does, within
 * the caller's deadline, corrects the clock offset once from the response's Date header on
 * RequestExpired / skewed SignatureDoesNotMatch, and turns AWS's error XML into a code and a
 * message. It never logs a secret: the secret key and session token are registered with the
 * logger as soon as they are known.
 *
 * Settings follow the AWS SDKs: AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL,
 * AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_CLOUDFORMATION, AWS_ENDPOINT_URL_AUTO_SCALING,
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_MAX_ATTEMPTS, AWS_CA_BUNDLE. */
#ifndef KB_AWS_H
#define KB_AWS_H

#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

struct imds_client;

enum aws_service {
	AWS_SERVICE_EC2,
	AWS_SERVICE_CLOUDFORMATION,
	AWS_SERVICE_AUTOSCALING,
	AWS_SERVICE_COUNT,
};

struct aws_ctx_options {
	const char *region;       /* NULL: AWS_REGION, AWS_DEFAULT_REGION, then IMDS placement/region */
	struct imds_client *imds; /* borrowed, may be NULL: credentials (after the environment's) */
	int max_attempts;         /* 0: AWS_MAX_ATTEMPTS, else the project default */
	int connect_timeout_ms;
	int timeout_ms;           /* one attempt */
};

struct aws_ctx;

/* The region the environment names (AWS_REGION, then AWS_DEFAULT_REGION), NULL when none.
 * Borrowed from the environment. */
const char *aws_env_region(void);

struct aws_ctx *aws_ctx_new(const struct aws_ctx_options *opts, int64_t deadline,
			    struct kb_error *err);
void aws_ctx_free(struct aws_ctx *ctx);
/* Borrowed. */
const char *aws_ctx_region(const struct aws_ctx *ctx);
/* Calls made so far per service, attempts included (for the benchmark and logs). */
unsigned aws_ctx_calls(const struct aws_ctx *ctx, enum aws_service service);

/* Query API parameters, kept in insertion order (the body is built in that order). */
struct aws_params;

struct aws_params *aws_params_new(const char *action, const char *version);
void aws_params_free(struct aws_params *params);
int aws_params_add(struct aws_params *params, const char *name, const char *value);
/* Name built from a format ("Filter.%zu.Value.%zu"), value given as is. */
int aws_params_addf(struct aws_params *params, const char *value, const char *name_fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct aws_response {
	long http_status;
	char *body;
	size_t body_len;
	char *request_id;
	char *error_code;    /* AWS's code when the call failed ("VolumeInUse"), else NULL */
	char *error_message; /* AWS's message, else NULL */
};

void aws_response_free(struct aws_response *resp);

/* Signs and sends one call. Returns 0 on HTTP 2xx. On failure *out is still set when AWS
 * answered (its code and message, for callers that decide by code) and the return value is:
 * -KB_EDENIED for UnauthorizedOperation / AccessDenied*, -KB_EAWS for any other AWS error,
 * -KB_EUNAVAIL when no answer came before the deadline (connection errors, 5xx, throttling
 * until the budget or the deadline ran out). The error text reads "<Action>: <Code>: <Message>"
 * (plus the request id). */
int aws_query(struct aws_ctx *ctx, enum aws_service service, const struct aws_params *params,
	      int64_t deadline, struct aws_response **out, struct kb_error *err);

/* Code, message and request id of an AWS error document: EC2's <Response><Errors><Error>
 * and CloudFormation's / Auto Scaling's <ErrorResponse><Error> (matched by local name, any
 * namespace). Each out pointer may be NULL; what it gets is newly allocated, NULL when the
 * document lacks it. -EINVAL when the text is not an error document with a Code. */
int aws_parse_error(const char *xml, size_t len, char **code, char **message,
		    char **request_id);

#endif
