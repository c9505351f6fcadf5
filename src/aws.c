/* aws.c: credentials, region, endpoints and the signed, retried AWS Query API call (see
 * aws.h). It never logs a secret (they are registered with the logger as soon as they are
 * read) and never sleeps past the caller's deadline: a retry whose wait would end after it is
 * not made, and the last error is returned instead. */
#include "kb/aws.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kb/deadline.h"
#include "kb/http.h"
#include "kb/imds.h"
#include "kb/log.h"
#include "kb/private/aws.h"
#include "kb/sigv4.h"
#include "kb/strbuf.h"
#include "kb/xml.h"

/* config.c's aws_max_attempts default: a boot may meet a throttled account. */
#define AWS_DEFAULT_MAX_ATTEMPTS 10
#define AWS_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define AWS_DEFAULT_TIMEOUT_MS 10000
/* The SDKs correct their clock when the server's differs by more than this (aws-sdk-java
 * v2 ClockSkew). */
#define SKEW_THRESHOLD_MS (4 * 60 * 1000)
/* botocore credentials.py: refresh 15 minutes before expiry if possible, 10 at the latest. */
#define REFRESH_ADVISORY_MS (15 * 60 * 1000)
#define REFRESH_MANDATORY_MS (10 * 60 * 1000)
/* After a failed advisory refresh, calls go on with the old credentials for this long
 * before IMDS is asked again, so a struggling IMDS does not cost every call its retries. */
#define REFRESH_RETRY_MS (60 * 1000)
#define FORM_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

static const struct {
	const char *name; /* SigV4 service and endpoint prefix */
	const char *env;  /* service ID uppercased, spaces and hyphens as '_' (SDKREF) */
} services[AWS_SERVICE_COUNT] = {
	[AWS_SERVICE_EC2] = {"ec2", "AWS_ENDPOINT_URL_EC2"},
	[AWS_SERVICE_CLOUDFORMATION] = {"cloudformation", "AWS_ENDPOINT_URL_CLOUDFORMATION"},
	[AWS_SERVICE_AUTOSCALING] = {"autoscaling", "AWS_ENDPOINT_URL_AUTO_SCALING"},
};

struct aws_param {
	char *name;
	char *value;
};

struct aws_params {
	struct aws_param *items;
	size_t count;
	char *action;
};

struct aws_endpoint {
	char *url;
	bool configured;
	struct http_client *http; /* owned by ctx->clients, shared by services with one URL */
};

struct aws_ctx {
	char *region;
	struct imds_client *imds;
	int max_attempts;
	struct http_options http_opts;
	char *ca_bundle; /* http_opts.ca_bundle points here */
	struct aws_endpoint endpoints[AWS_SERVICE_COUNT];
	struct http_client *clients[AWS_SERVICE_COUNT];
	struct imds_credentials creds; /* expiration 0 for the environment's */
	bool env_creds;
	int64_t refresh_not_before; /* corrected wall ms, after a failed advisory refresh */
	int64_t clock_offset_ms; /* AWS's clock minus ours */
	struct aws_retry_quota quota;
	unsigned calls[AWS_SERVICE_COUNT];
	double (*random)(void *arg);
	void *random_arg;
	int64_t (*wall)(void *arg);
	void *wall_arg;
};

/* ---- parameters ---- */

struct aws_params *aws_params_new(const char *action, const char *version)
{
	struct aws_params *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->action = strdup(action);
	if (!p->action || aws_params_add(p, "Action", action) < 0 ||
	    aws_params_add(p, "Version", version) < 0) {
		aws_params_free(p);
		return NULL;
	}
	return p;
}

void aws_params_free(struct aws_params *params)
{
	if (!params)
		return;
	for (size_t i = 0; i < params->count; i++) {
		free(params->items[i].name);
		free(params->items[i].value);
	}
	free(params->items);
	free(params->action);
	free(params);
}

static int params_push(struct aws_params *params, char *name, const char *value)
{
	struct aws_param *grown;
	char *copy = strdup(value);

	grown = copy && name ? realloc(params->items, (params->count + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(copy);
		free(name);
		return -ENOMEM;
	}
	params->items = grown;
	params->items[params->count++] = (struct aws_param){name, copy};
	return 0;
}

int aws_params_add(struct aws_params *params, const char *name, const char *value)
{
	return params_push(params, strdup(name), value);
}

int aws_params_addf(struct aws_params *params, const char *value, const char *name_fmt, ...)
{
	char *name = NULL;
	va_list ap;
	int n;

	va_start(ap, name_fmt);
	n = vasprintf(&name, name_fmt, ap);
	va_end(ap);
	return params_push(params, n < 0 ? NULL : name, value);
}

char *aws_params_encode(const struct aws_params *params)
{
	struct strbuf b = {0};

	/* Everything but RFC 3986 unreserved is percent-encoded, as botocore's Query
	 * serializer does (it sends a space as '+', we as %20: a form decoder reads both as a
	 * space). This buffer is both hashed and sent. */
	for (size_t i = 0; i < params->count; i++) {
		char *name = sigv4_uri_encode(params->items[i].name,
					      strlen(params->items[i].name), false);
		char *value = sigv4_uri_encode(params->items[i].value,
					       strlen(params->items[i].value), false);

		if (!name || !value)
			b.failed = true;
		else
			strbuf_printf(&b, "%s%s=%s", i ? "&" : "", name, value);
		free(name);
		free(value);
	}
	return strbuf_take(&b);
}

void aws_response_free(struct aws_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	free(resp->request_id);
	free(resp->error_code);
	free(resp->error_message);
	free(resp);
}

/* ---- error documents ---- */

/* The <Error> element: EC2's <Response><Errors><Error> (AWS-PROTOCOL.md section 4), the Query
 * protocol's <ErrorResponse><Error> (CloudFormation, Auto Scaling). */
static xmlNode *error_element(xmlNode *root)
{
	xmlNode *errors;

	if (strcmp((const char *)root->name, "ErrorResponse") == 0)
		return xml_child(root, "Error");
	if (strcmp((const char *)root->name, "Response") != 0)
		return NULL;
	errors = xml_child(root, "Errors");
	return errors ? xml_child(errors, "Error") : NULL;
}

int aws_parse_error(const char *xml, size_t len, char **code, char **message,
		    char **request_id)
{
	struct kb_error why = {{0}};
	char *c = NULL, *m = NULL, *rid = NULL;
	xmlDoc *doc = NULL;
	xmlNode *root, *error;
	int ret;

	/* xml_read refuses DTDs, entities and oversized documents: the body is untrusted. */
	ret = xml_read(xml, len, &doc, &why);
	root = ret == 0 ? xmlDocGetRootElement(doc) : NULL;
	error = root ? error_element(root) : NULL;
	if (error && (xml_child_text(error, "Code", &c, &why) < 0 || !c || !*c))
		error = NULL;
	/* EC2 spells it RequestID, CloudFormation and Auto Scaling RequestId. */
	if (error && (xml_child_text(error, "Message", &m, &why) < 0 ||
		      xml_child_text(root, "RequestID", &rid, &why) < 0 ||
		      (!rid && xml_child_text(root, "RequestId", &rid, &why) < 0)))
		error = NULL;
	ret = error ? 0 : -EINVAL;
	xmlFreeDoc(doc);
	if (ret < 0) {
		free(c);
		free(m);
		free(rid);
		c = m = rid = NULL;
	}
	if (code)
		*code = c;
	else
		free(c);
	if (message)
		*message = m;
	else
		free(m);
	if (request_id)
		*request_id = rid;
	else
		free(rid);
	return ret;
}

/* ---- retry policy (botocore retries/standard.py, quota.py; AWS-PROTOCOL.md section 5) ---- */

static bool in_list(const char *code, const char *const *list)
{
	for (; code && *list; list++) {
		if (strcmp(code, *list) == 0)
			return true;
	}
	return false;
}

enum aws_retry_kind aws_retry_classify(long http_status, const char *code, int transport_ret)
{
	static const char *const throttling[] = {
		"Throttling", "ThrottlingException", "ThrottledException",
		"RequestThrottledException", "TooManyRequestsException",
		"ProvisionedThroughputExceededException", "TransactionInProgressException",
		"RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
		"RequestThrottled", "SlowDown", "PriorRequestNotComplete",
		"EC2ThrottledException", NULL,
	};
	static const char *const transient[] = {
		"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", NULL,
	};

	if (transport_ret == -ETIMEDOUT)
		return AWS_RETRY_TIMEOUT;
	if (transport_ret < 0)
		return http_error_is_transient(transport_ret) ? AWS_RETRY_TRANSIENT
							      : AWS_RETRY_NONE;
	if (http_status >= 200 && http_status < 300)
		return AWS_RETRY_NONE;
	if (in_list(code, throttling))
		return AWS_RETRY_THROTTLING;
	if (in_list(code, transient) || http_status == 500 || http_status == 502 ||
	    http_status == 503 || http_status == 504)
		return AWS_RETRY_TRANSIENT;
	return AWS_RETRY_NONE;
}

void aws_quota_init(struct aws_retry_quota *q)
{
	q->tokens = AWS_QUOTA_MAX;
	q->last_cost = 0;
}

bool aws_quota_acquire(struct aws_retry_quota *q, enum aws_retry_kind kind)
{
	int cost = kind == AWS_RETRY_TIMEOUT ? 10 : 5;

	if (kind == AWS_RETRY_NONE || q->tokens < cost)
		return false;
	q->tokens -= cost;
	q->last_cost = cost;
	return true;
}

void aws_quota_success(struct aws_retry_quota *q)
{
	q->tokens += q->last_cost ? q->last_cost : 1;
	if (q->tokens > AWS_QUOTA_MAX)
		q->tokens = AWS_QUOTA_MAX;
	q->last_cost = 0;
}

bool aws_code_is_clock_skew(const char *code)
{
	static const char *const skew[] = {
		"RequestExpired", "SignatureDoesNotMatch", "InvalidSignatureException",
		"RequestTimeTooSkewed", "RequestInTheFuture", "AuthFailure", NULL,
	};

	return in_list(code, skew);
}

bool aws_code_is_credentials(const char *code)
{
	static const char *const refused[] = {
		"AuthFailure", "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
		"RequestExpired", NULL,
	};

	return in_list(code, refused);
}

/* RFC 7231 IMF-fixdate ("Wed, 15 Jan 2025 12:00:00 GMT"), without the locale strptime uses. */
static bool parse_http_date(const char *s, int64_t *wall_ms)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4] = "";
	struct tm tm = {0};
	const char *m;
	char zone[4] = "";

	if (sscanf(s, "%*3s, %d %3s %d %d:%d:%d %3s", &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, zone) != 7 || strcmp(zone, "GMT") != 0)
		return false;
	m = strlen(mon) == 3 ? strstr(months, mon) : NULL;
	if (!m || (m - months) % 3 != 0)
		return false;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year -= 1900;
	*wall_ms = (int64_t)timegm(&tm) * 1000;
	return true;
}

bool aws_date_skew_ms(const char *date_header, int64_t local_wall_ms, int64_t *offset_ms)
{
	int64_t server_ms;
	int64_t diff;

	if (!date_header || !parse_http_date(date_header, &server_ms))
		return false;
	diff = server_ms - local_wall_ms;
	if (diff < SKEW_THRESHOLD_MS && diff > -SKEW_THRESHOLD_MS)
		return false;
	*offset_ms = diff;
	return true;
}

/* ---- endpoints and region ---- */

const char *aws_service_name(enum aws_service service)
{
	return (unsigned)service < AWS_SERVICE_COUNT ? services[service].name : "?";
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

const char *aws_env_region(void)
{
	const char *r = env_nonempty("AWS_REGION");

	return r ? r : env_nonempty("AWS_DEFAULT_REGION");
}

int aws_resolve_endpoint(enum aws_service service, const char *region, char **url,
			 bool *configured, struct kb_error *err)
{
	const char *ignore = env_nonempty("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	const char *given = NULL;

	*url = NULL;
	*configured = false;
	if (!ignore || strcasecmp(ignore, "true") != 0) {
		given = env_nonempty(services[service].env);
		if (!given)
			given = env_nonempty("AWS_ENDPOINT_URL");
	}
	if (given) {
		*url = strdup(given);
		*configured = true;
	} else if (asprintf(url, "https://%s.%s.amazonaws.com%s", services[service].name, region,
			    strncmp(region, "cn-", 3) == 0 ? ".cn" : "") < 0) {
		*url = NULL;
	}
	return *url ? 0 : kb_errorf(err, ENOMEM, "out of memory");
}

static bool region_valid(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 64)
		return false;
	for (; *r; r++) {
		if (!islower((unsigned char)*r) && !isdigit((unsigned char)*r) && *r != '-')
			return false;
	}
	return true;
}

static int resolve_region(struct aws_ctx *ctx, const struct aws_ctx_options *opts,
			  int64_t deadline, struct kb_error *err)
{
	const char *given = opts->region ? opts->region : aws_env_region();
	char *from_imds = NULL;
	int ret;

	if (!given && !opts->imds)
		return kb_errorf(err, KB_ECONFIG,
				 "no AWS region: set AWS_REGION or run on EC2 (instance metadata)");
	if (!given) {
		ret = imds_get(opts->imds, "meta-data/placement/region", deadline, &from_imds, err);
		if (ret < 0) {
			kb_error_prefix(err, "AWS region");
			return ret;
		}
		from_imds[strcspn(from_imds, "\r\n")] = '\0';
		given = from_imds;
	}
	ret = 0;
	if (!region_valid(given))
		ret = kb_errorf(err, KB_ECONFIG, "AWS region '%s' is not a region name", given);
	else if (!(ctx->region = strdup(given)))
		ret = kb_errorf(err, ENOMEM, "out of memory");
	free(from_imds);
	return ret;
}

static struct http_client *endpoint_client(struct aws_ctx *ctx, enum aws_service service,
					   struct kb_error *err)
{
	struct aws_endpoint *ep = &ctx->endpoints[service];
	struct http_options opts = ctx->http_opts;

	if (ep->http)
		return ep->http;
	/* Services configured onto one URL share its connection. */
	for (int s = 0; s < AWS_SERVICE_COUNT; s++) {
		if (ctx->endpoints[s].http && strcmp(ctx->endpoints[s].url, ep->url) == 0) {
			ep->http = ctx->endpoints[s].http;
			return ep->http;
		}
	}
	opts.allow_http = ep->configured;
	ctx->clients[service] = http_client_new(ep->url, &opts, err);
	if (!ctx->clients[service])
		kb_error_prefix(err, "%s endpoint", services[service].name);
	ep->http = ctx->clients[service];
	return ep->http;
}

/* ---- credentials ---- */

static int64_t corrected_wall_ms(const struct aws_ctx *ctx)
{
	return ctx->wall(ctx->wall_arg) + ctx->clock_offset_ms;
}

/* Environment first, as every SDK does; both halves of the key pair or neither. */
static int creds_from_env(struct aws_ctx *ctx, struct kb_error *err)
{
	const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
	const char *token = env_nonempty("AWS_SESSION_TOKEN");

	if (!token)
		token = env_nonempty("AWS_SECURITY_TOKEN");
	if (secret)
		log_add_secret(secret);
	if (token)
		log_add_secret(token);
	if (!akid && !secret)
		return 0;
	if (!akid || !secret)
		return kb_errorf(err, KB_ECONFIG,
				 "partial credentials in the environment: AWS_ACCESS_KEY_ID and "
				 "AWS_SECRET_ACCESS_KEY go together");
	ctx->creds.access_key_id = strdup(akid);
	ctx->creds.secret_access_key = strdup(secret);
	ctx->creds.token = token ? strdup(token) : NULL;
	if (!ctx->creds.access_key_id || !ctx->creds.secret_access_key ||
	    (token && !ctx->creds.token))
		return kb_errorf(err, ENOMEM, "out of memory");
	ctx->env_creds = true;
	log_debug("aws: credentials from the environment (%s)", akid);
	return 1;
}

static int creds_fetch_imds(struct aws_ctx *ctx, int64_t deadline, struct kb_error *err)
{
	struct imds_credentials fresh = {0};
	int64_t now = corrected_wall_ms(ctx);
	int64_t window;
	int ret;

	ret = imds_get_credentials(ctx->imds, deadline, &fresh, err);
	if (ret < 0)
		return ret;
	imds_credentials_clear(&ctx->creds);
	ctx->creds = fresh;
	/* botocore: credentials IMDS hands out already (nearly) expired are used as they are,
	 * with the next refresh pushed 2..10 minutes out, so a struggling IMDS is not
	 * hammered on every call. */
	window = REFRESH_ADVISORY_MS +
		 (int64_t)((2 + 8 * ctx->random(ctx->random_arg)) * 60 * 1000);
	if (now >= fresh.expiration_wall_ms - window) {
		log_warn("aws: instance credentials expire at %lld ms (now %lld): using them, "
			 "next refresh in %lld s",
			 (long long)fresh.expiration_wall_ms, (long long)now,
			 (long long)(window - REFRESH_ADVISORY_MS) / 1000);
		ctx->creds.expiration_wall_ms = now + window;
	}
	log_debug("aws: credentials from instance metadata (%s)", ctx->creds.access_key_id);
	return 0;
}

static int creds_ensure(struct aws_ctx *ctx, int64_t deadline, bool force, struct kb_error *err)
{
	struct kb_error why = {{0}};
	int64_t now, expires;
	int ret;

	if (ctx->env_creds)
		return 0;
	if (!ctx->imds)
		return kb_errorf(err, KB_ECONFIG,
				 "no AWS credentials: set AWS_ACCESS_KEY_ID and "
				 "AWS_SECRET_ACCESS_KEY, or attach an instance profile");
	now = corrected_wall_ms(ctx);
	expires = ctx->creds.expiration_wall_ms;
	if (ctx->creds.access_key_id && !force &&
	    (now < expires - REFRESH_ADVISORY_MS ||
	     (now < ctx->refresh_not_before && now < expires - REFRESH_MANDATORY_MS)))
		return 0;
	ret = creds_fetch_imds(ctx, deadline, &why);
	if (ret == 0)
		return 0;
	if (ctx->creds.access_key_id && !force && now < expires - REFRESH_MANDATORY_MS) {
		log_warn("aws: keeping the current credentials: refresh failed: %s", why.msg);
		ctx->refresh_not_before = now + REFRESH_RETRY_MS;
		return 0;
	}
	kb_errorf(err, -ret, "%s", why.msg);
	kb_error_prefix(err, "AWS credentials");
	return ret;
}

/* ---- the context ---- */

static double default_random(void *arg)
{
	(void)arg;
	return http_random01();
}

static int64_t default_wall(void *arg)
{
	(void)arg;
	return deadline_wall_ms();
}

static int resolve_max_attempts(const struct aws_ctx_options *opts, struct kb_error *err)
{
	const char *env = env_nonempty("AWS_MAX_ATTEMPTS");
	char *end;
	long n;

	if (opts->max_attempts > 0)
		return opts->max_attempts;
	if (!env)
		return AWS_DEFAULT_MAX_ATTEMPTS;
	errno = 0;
	n = strtol(env, &end, 10);
	if (errno || *end || n < 1 || n > 100)
		return kb_errorf(err, KB_ECONFIG,
				 "AWS_MAX_ATTEMPTS: invalid value '%s': an integer from 1 to 100",
				 env);
	return (int)n;
}

struct aws_ctx *aws_ctx_new(const struct aws_ctx_options *opts, int64_t deadline,
			    struct kb_error *err)
{
	struct aws_ctx *ctx = calloc(1, sizeof(*ctx));
	int ret;

	if (!ctx) {
		kb_errorf(err, ENOMEM, "out of memory");
		return NULL;
	}
	ctx->imds = opts->imds;
	ctx->random = default_random;
	ctx->wall = default_wall;
	aws_quota_init(&ctx->quota);
	if (env_nonempty("AWS_CA_BUNDLE") &&
	    !(ctx->ca_bundle = strdup(env_nonempty("AWS_CA_BUNDLE")))) {
		kb_errorf(err, ENOMEM, "out of memory");
		goto fail;
	}
	ctx->http_opts.ca_bundle = ctx->ca_bundle;
	ctx->http_opts.connect_timeout_ms = opts->connect_timeout_ms > 0
						    ? opts->connect_timeout_ms
						    : AWS_DEFAULT_CONNECT_TIMEOUT_MS;
	ctx->http_opts.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms
							 : AWS_DEFAULT_TIMEOUT_MS;
	ret = resolve_max_attempts(opts, err);
	if (ret < 0)
		goto fail;
	ctx->max_attempts = ret;
	ret = creds_from_env(ctx, err);
	if (ret < 0)
		goto fail;
	ret = resolve_region(ctx, opts, deadline, err);
	for (int s = 0; ret == 0 && s < AWS_SERVICE_COUNT; s++)
		ret = aws_resolve_endpoint(s, ctx->region, &ctx->endpoints[s].url,
					   &ctx->endpoints[s].configured, err);
	if (ret < 0)
		goto fail;
	log_debug("aws: region %s, ec2 %s, cloudformation %s, autoscaling %s, %d attempts",
		  ctx->region, ctx->endpoints[0].url, ctx->endpoints[1].url,
		  ctx->endpoints[2].url, ctx->max_attempts);
	return ctx;
fail:
	aws_ctx_free(ctx);
	return NULL;
}

void aws_ctx_free(struct aws_ctx *ctx)
{
	if (!ctx)
		return;
	for (int s = 0; s < AWS_SERVICE_COUNT; s++) {
		http_client_free(ctx->clients[s]);
		free(ctx->endpoints[s].url);
	}
	imds_credentials_clear(&ctx->creds);
	free(ctx->ca_bundle);
	free(ctx->region);
	free(ctx);
}

const char *aws_ctx_region(const struct aws_ctx *ctx)
{
	return ctx->region;
}

unsigned aws_ctx_calls(const struct aws_ctx *ctx, enum aws_service service)
{
	return (unsigned)service < AWS_SERVICE_COUNT ? ctx->calls[service] : 0;
}

void aws_ctx_set_random(struct aws_ctx *ctx, double (*fn)(void *arg), void *arg)
{
	ctx->random = fn;
	ctx->random_arg = arg;
}

void aws_ctx_set_wall_clock(struct aws_ctx *ctx, int64_t (*fn)(void *arg), void *arg)
{
	ctx->wall = fn;
	ctx->wall_arg = arg;
}

int64_t aws_ctx_clock_offset_ms(const struct aws_ctx *ctx)
{
	return ctx->clock_offset_ms;
}

int aws_ctx_quota_tokens(const struct aws_ctx *ctx)
{
	return ctx->quota.tokens;
}

long aws_ctx_connects(const struct aws_ctx *ctx, enum aws_service service)
{
	const struct http_client *http = ctx->endpoints[service].http;

	return http ? http_client_connects(http) : 0;
}

/* ---- one call ---- */

struct attempt {
	int transport; /* http_send's return value */
	struct http_response resp;
	char *code, *message, *request_id;
	struct kb_error err;    /* why nothing came back */
	struct sigv4_state sig; /* kept for the SignatureDoesNotMatch log */
};

static void attempt_clear(struct attempt *a)
{
	http_response_clear(&a->resp);
	free(a->code);
	free(a->message);
	free(a->request_id);
	sigv4_state_clear(&a->sig);
	memset(a, 0, sizeof(*a));
}

/* Signs the call at AWS's time as we know it; the body is hashed as it will be sent. */
static int sign_attempt(struct aws_ctx *ctx, enum aws_service service, struct http_client *http,
			const char *body, struct attempt *a)
{
	struct sigv4_credentials creds = {ctx->creds.access_key_id, ctx->creds.secret_access_key,
					  ctx->creds.token};
	struct sigv4_config cfg = {.region = ctx->region, .service = services[service].name,
				   .time_s = corrected_wall_ms(ctx) / 1000, .creds = &creds};
	struct sigv4_header headers[] = {
		{"Host", http_client_host(http)},
		{"Content-Type", FORM_CONTENT_TYPE},
	};
	struct sigv4_request req = {.method = "POST", .normalize_path = true,
				    .headers = headers, .header_count = 2,
				    .payload = body, .payload_len = strlen(body)};
	char *path = NULL;
	int ret;

	if (asprintf(&path, "%s/", http_client_base_path(http)) < 0)
		return kb_errorf(&a->err, ENOMEM, "out of memory");
	req.path = path;
	ret = sigv4_sign(&a->sig, &req, &cfg, &a->err);
	free(path);
	return ret;
}

static int send_attempt(struct aws_ctx *ctx, enum aws_service service, struct http_client *http,
			const char *body, int64_t deadline, struct attempt *a)
{
	const char *token = ctx->creds.token;
	struct http_header headers[] = {
		{"Content-Type", FORM_CONTENT_TYPE},
		{"X-Amz-Date", NULL},
		{"Authorization", NULL},
		{"X-Amz-Security-Token", token},
	};
	struct http_request req = {.method = "POST", .path = "/", .headers = headers,
				   .header_count = token && *token ? 4 : 3, .body = body,
				   .body_len = strlen(body)};
	int ret = sign_attempt(ctx, service, http, body, a);

	if (ret < 0)
		return ret;
	headers[1].value = a->sig.amz_date;
	headers[2].value = a->sig.authorization;
	a->transport = http_send(http, &req, deadline, &a->resp, &a->err);
	/* A body that is no error document (a proxy's HTML 503) leaves the code NULL: the
	 * HTTP status alone then decides. */
	if (a->transport == 0 && (a->resp.status < 200 || a->resp.status >= 300) &&
	    aws_parse_error(a->resp.body, a->resp.body_len, &a->code, &a->message,
			    &a->request_id) < 0)
		log_debug("aws: HTTP %ld without an AWS error document", a->resp.status);
	if (a->transport == 0 && !a->request_id && a->resp.request_id &&
	    !(a->request_id = strdup(a->resp.request_id)))
		return kb_errorf(&a->err, ENOMEM, "out of memory");
	return 0;
}

static void log_attempt(const struct aws_ctx *ctx, enum aws_service service, const char *action,
			int attempt, const struct attempt *a, const char *note)
{
	if (a->transport < 0) {
		log_debug("aws: %s %s attempt %d/%d: %s, %lld ms%s", services[service].name,
			  action, attempt, ctx->max_attempts, a->err.msg,
			  (long long)a->resp.duration_ms, note);
		return;
	}
	log_debug("aws: %s %s attempt %d/%d: HTTP %ld%s%s, %lld ms, request id %s%s",
		  services[service].name, action, attempt, ctx->max_attempts, a->resp.status,
		  a->code ? " " : "", a->code ? a->code : "", (long long)a->resp.duration_ms,
		  a->request_id ? a->request_id : "none", note);
}

static int take_response(struct attempt *a, struct aws_response **out, struct kb_error *err)
{
	struct aws_response *r = calloc(1, sizeof(*r));

	if (!r)
		return kb_errorf(err, ENOMEM, "out of memory");
	r->http_status = a->resp.status;
	r->body = a->resp.body;
	r->body_len = a->resp.body_len;
	r->request_id = a->request_id;
	r->error_code = a->code;
	r->error_message = a->message;
	a->resp.body = NULL;
	a->request_id = a->code = a->message = NULL;
	*out = r;
	return 0;
}

static bool code_is_denied(const char *code)
{
	return code && (strcmp(code, "UnauthorizedOperation") == 0 ||
			strncmp(code, "AccessDenied", 12) == 0);
}

/* gave_up: why a retryable failure was not retried again, NULL for a final error. */
static int fail(const char *action, struct attempt *a, const char *gave_up,
		struct aws_response **out, struct kb_error *err)
{
	long status = a->resp.status;
	int code;

	if (a->transport < 0)
		return kb_errorf(err, KB_EUNAVAIL, "%s: %s%s%s%s", action, a->err.msg,
				 gave_up ? " (" : "", gave_up ? gave_up : "", gave_up ? ")" : "");
	code = gave_up ? KB_EUNAVAIL : code_is_denied(a->code) ? KB_EDENIED : KB_EAWS;
	kb_errorf(err, code, "%s: %s: %s (HTTP %ld, request id %s%s%s)", action,
		  a->code ? a->code : "error", a->message ? a->message : "no message", status,
		  a->request_id ? a->request_id : "none", gave_up ? "; " : "",
		  gave_up ? gave_up : "");
	if (take_response(a, out, err) < 0)
		return -ENOMEM;
	return -code;
}

/* Once per call: a request AWS found too old or too new, with a Date header far from our
 * clock, is signed again with AWS's time (DECISIONS.md "Clock skew"). */
static bool retry_after_skew(struct aws_ctx *ctx, const struct attempt *a, bool *done)
{
	int64_t offset;

	if (*done || a->transport < 0 || !aws_code_is_clock_skew(a->code) ||
	    !aws_date_skew_ms(a->resp.date, corrected_wall_ms(ctx), &offset))
		return false;
	*done = true;
	ctx->clock_offset_ms += offset;
	log_warn("aws: local clock is %lld s %s AWS's (Date: %s): signing with AWS's time",
		 (long long)llabs(ctx->clock_offset_ms / 1000),
		 ctx->clock_offset_ms > 0 ? "behind" : "ahead of", a->resp.date);
	return true;
}

/* Once per call: instance credentials AWS refused are fetched again (they may have been
 * rotated early); environment credentials cannot be. */
static bool retry_after_refresh(struct aws_ctx *ctx, const struct attempt *a, int64_t deadline,
				bool *done)
{
	struct kb_error why = {{0}};

	if (*done || ctx->env_creds || !ctx->imds || a->transport < 0 ||
	    !aws_code_is_credentials(a->code))
		return false;
	*done = true;
	if (creds_ensure(ctx, deadline, true, &why) < 0) {
		log_warn("aws: %s, and refreshing the credentials failed: %s", a->code, why.msg);
		return false;
	}
	return true;
}

/* Why a retryable failure is not retried; NULL when it is (delay set, quota taken). */
static const char *retry_refusal(struct aws_ctx *ctx, enum aws_retry_kind kind, int attempt,
				 int64_t deadline, int64_t *delay)
{
	if (attempt >= ctx->max_attempts)
		return "no attempts left";
	*delay = http_backoff_ms(attempt, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS,
				 ctx->random(ctx->random_arg));
	if (*delay >= deadline_remaining_ms(deadline))
		return "the deadline leaves no time for another attempt";
	if (!aws_quota_acquire(&ctx->quota, kind))
		return "retry quota exhausted";
	return NULL;
}

/* One aws_query in progress. */
struct call {
	enum aws_service service;
	const char *action;
	int64_t deadline;
	int attempt; /* counted against max_attempts; the skew and refresh retries are not */
	bool skew_fixed, refreshed;
	struct attempt a;
};

/* After a failed attempt: 0 to try again after *delay ms, else the call's result. */
static int after_failure(struct aws_ctx *ctx, struct call *c, int64_t *delay,
			 struct aws_response **out, struct kb_error *err)
{
	struct attempt *a = &c->a;
	enum aws_retry_kind kind;
	const char *refusal;
	char note[96];

	*delay = 0;
	if (a->code && strcmp(a->code, "SignatureDoesNotMatch") == 0)
		log_debug("aws: %s: SignatureDoesNotMatch; canonical request:\n%s\n"
			  "string to sign:\n%s",
			  c->action, a->sig.canonical_request, a->sig.string_to_sign);
	if (retry_after_skew(ctx, a, &c->skew_fixed) ||
	    retry_after_refresh(ctx, a, c->deadline, &c->refreshed)) {
		log_attempt(ctx, c->service, c->action, c->attempt, a, "; signing again");
		return 0;
	}
	kind = aws_retry_classify(a->resp.status, a->code, a->transport);
	if (kind == AWS_RETRY_NONE) {
		log_attempt(ctx, c->service, c->action, c->attempt, a, "");
		return fail(c->action, a, NULL, out, err);
	}
	refusal = retry_refusal(ctx, kind, c->attempt, c->deadline, delay);
	if (refusal) {
		snprintf(note, sizeof(note), "gave up after %d attempts: %s", c->attempt, refusal);
		log_attempt(ctx, c->service, c->action, c->attempt, a, "");
		return fail(c->action, a, note, out, err);
	}
	snprintf(note, sizeof(note), "; retrying in %lld ms", (long long)*delay);
	log_attempt(ctx, c->service, c->action, c->attempt, a, note);
	c->attempt++;
	return 0;
}

int aws_query(struct aws_ctx *ctx, enum aws_service service, const struct aws_params *params,
	      int64_t deadline, struct aws_response **out, struct kb_error *err)
{
	struct call c = {.service = service, .action = params->action, .deadline = deadline,
			 .attempt = 1};
	struct http_client *http;
	char *body = NULL;
	int64_t delay;
	int ret;

	*out = NULL;
	ctx->quota.last_cost = 0;
	http = endpoint_client(ctx, service, err);
	if (!http)
		return -KB_ECONFIG;
	body = aws_params_encode(params);
	if (!body)
		return kb_errorf(err, ENOMEM, "%s: out of memory", c.action);
	for (;;) {
		ret = creds_ensure(ctx, deadline, false, err);
		if (ret < 0) {
			kb_error_prefix(err, "%s", c.action);
			break;
		}
		attempt_clear(&c.a);
		ret = send_attempt(ctx, service, http, body, deadline, &c.a);
		if (ret < 0) {
			kb_errorf(err, -ret, "%s: %s", c.action, c.a.err.msg);
			break;
		}
		ctx->calls[service]++;
		if (c.a.transport == 0 && c.a.resp.status >= 200 && c.a.resp.status < 300) {
			log_attempt(ctx, service, c.action, c.attempt, &c.a, "");
			aws_quota_success(&ctx->quota);
			ret = take_response(&c.a, out, err);
			break;
		}
		ret = after_failure(ctx, &c, &delay, out, err);
		if (ret < 0)
			break;
		/* The wait ends before the deadline (retry_refusal checked); a next attempt
		 * that finds it passed fails at once. */
		(void)deadline_sleep_ms(deadline, delay);
	}
	attempt_clear(&c.a);
	free(body);
	return ret;
}
