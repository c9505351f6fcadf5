/* imds.c: the EC2 instance metadata service, IMDSv2 only (see imds.h). It never logs a
 * metadata answer that may hold a secret, never falls back to IMDSv1, and never waits past
 * the caller's deadline. */
#include "kb/imds.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kb/deadline.h"
#include "kb/http.h"
#include "kb/log.h"
#include "kb/private/imds.h"

#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_IPV6_ENDPOINT "http://[fd00:ec2::254]"
/* botocore asks for the longest TTL; the token is renewed a minute before it ends. */
#define IMDS_TOKEN_TTL_S 21600
#define IMDS_TOKEN_MARGIN_MS 60000
#define IMDS_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define IMDS_DEFAULT_TIMEOUT_MS 2000
/* Connection errors and 5xx: a bounded number of attempts with full-jitter backoff
 * (SDKREF's IMDS client retries 3 times; at boot the link can take a little longer). */
#define IMDS_MAX_ATTEMPTS 8
#define IMDS_RETRY_BASE_MS 200
#define IMDS_RETRY_CAP_MS 2000
/* imds_wait: first look again soon, then back off to once a second. */
#define IMDS_WAIT_FIRST_MS 50
#define IMDS_WAIT_CAP_MS 1000

struct imds_client {
	struct http_client *http;
	char *disabled; /* why, when AWS_EC2_METADATA_DISABLED says so */
	char *token;
	int64_t token_renew_at; /* monotonic ms */
	char *role;             /* instance profile role, cached after the first listing */
	unsigned calls;
};

static int endpoint_from_env(const char **endpoint, struct kb_error *err)
{
	const char *given = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");

	if (given && *given) {
		*endpoint = given;
		return 0;
	}
	if (!mode || !*mode || strcasecmp(mode, "IPv4") == 0) {
		*endpoint = IMDS_DEFAULT_ENDPOINT;
		return 0;
	}
	if (strcasecmp(mode, "IPv6") == 0) {
		*endpoint = IMDS_IPV6_ENDPOINT;
		return 0;
	}
	return kb_errorf(err, KB_ECONFIG,
			 "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: invalid value '%s': IPv4 or IPv6",
			 mode);
}

struct imds_client *imds_client_new(const struct imds_options *opts, struct kb_error *err)
{
	struct imds_client *c = calloc(1, sizeof(*c));
	/* IMDS is plain http on a link-local address by definition, and never proxied. */
	struct http_options http = {
		.allow_http = true,
		.no_proxy = true,
		.connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
								  : IMDS_DEFAULT_CONNECT_TIMEOUT_MS,
		.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : IMDS_DEFAULT_TIMEOUT_MS,
	};
	const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
	const char *endpoint = opts->endpoint;

	if (!c) {
		kb_errorf(err, ENOMEM, "out of memory");
		return NULL;
	}
	if (disabled && strcasecmp(disabled, "true") == 0) {
		c->disabled = strdup("instance metadata disabled by AWS_EC2_METADATA_DISABLED");
		if (!c->disabled)
			goto fail;
		return c;
	}
	if (!endpoint && endpoint_from_env(&endpoint, err) < 0)
		goto fail;
	c->http = http_client_new(endpoint, &http, err);
	if (!c->http) {
		kb_error_prefix(err, "instance metadata");
		goto fail;
	}
	return c;
fail:
	kb_errorf(err, ENOMEM, "out of memory");
	imds_client_free(c);
	return NULL;
}

static void forget_token(struct imds_client *c)
{
	if (c->token)
		OPENSSL_cleanse(c->token, strlen(c->token));
	free(c->token);
	c->token = NULL;
}

void imds_client_free(struct imds_client *client)
{
	if (!client)
		return;
	forget_token(client);
	http_client_free(client->http);
	free(client->disabled);
	free(client->role);
	free(client);
}

unsigned imds_client_calls(const struct imds_client *client)
{
	return client->calls;
}

static bool status_transient(long status)
{
	return status >= 500 || status == 429;
}

/* One request, retried on connection errors, 5xx and 429 (IMDS throttling) within the
 * deadline and IMDS_MAX_ATTEMPTS. On return 0 the server answered (any status). */
static int send_retrying(struct imds_client *c, const struct http_request *req, int64_t deadline,
			 struct http_response *resp, struct kb_error *err)
{
	for (int attempt = 1;; attempt++) {
		struct kb_error why = {{0}};
		int64_t delay;
		int ret;

		ret = http_send(c->http, req, deadline, resp, &why);
		c->calls++;
		if (ret == 0)
			log_debug("imds: %s %s attempt %d: HTTP %ld, %lld ms", req->method, req->path,
				  attempt, resp->status, (long long)resp->duration_ms);
		if (ret == 0 && !status_transient(resp->status))
			return 0;
		if (ret < 0 && !http_error_is_transient(ret))
			return kb_errorf(err, KB_EUNAVAIL, "instance metadata: %s", why.msg);
		if (ret == 0)
			snprintf(why.msg, sizeof(why.msg), "%s %s: HTTP %ld", req->method, req->path,
				 resp->status);
		delay = http_backoff_ms(attempt, IMDS_RETRY_BASE_MS, IMDS_RETRY_CAP_MS,
					http_random01());
		if (attempt >= IMDS_MAX_ATTEMPTS || delay >= deadline_remaining_ms(deadline)) {
			http_response_clear(resp);
			return kb_errorf(err, KB_EUNAVAIL,
					 "instance metadata unreachable: %s (after %d attempts)",
					 why.msg, attempt);
		}
		log_debug("imds: %s; retrying in %lld ms", why.msg, (long long)delay);
		http_response_clear(resp);
		deadline_sleep_ms(deadline, delay);
	}
}

static int fetch_token(struct imds_client *c, int64_t deadline, struct kb_error *err)
{
	const struct http_header ttl = {"X-aws-ec2-metadata-token-ttl-seconds", "21600"};
	const struct http_request req = {.method = "PUT", .path = "/latest/api/token",
					 .headers = &ttl, .header_count = 1};
	struct http_response resp;
	int ret;

	_Static_assert(IMDS_TOKEN_TTL_S == 21600, "the header above spells the TTL");
	if (c->token && deadline_now_ms() < c->token_renew_at)
		return 0;
	forget_token(c);
	ret = send_retrying(c, &req, deadline, &resp, err);
	if (ret < 0)
		return ret;
	if (resp.status != 200 || resp.body_len == 0) {
		/* 403: IMDS turned off for the instance, or a proxy header reached it; 404/405: an
		 * endpoint without IMDSv2. We never fall back to IMDSv1. */
		ret = kb_errorf(err, KB_EUNAVAIL,
				"instance metadata refused a session token (PUT /latest/api/token: "
				"HTTP %ld)",
				resp.status);
		goto out;
	}
	resp.body[strcspn(resp.body, "\r\n")] = '\0';
	c->token = resp.body;
	resp.body = NULL;
	log_add_secret(c->token);
	c->token_renew_at = deadline_now_ms() + IMDS_TOKEN_TTL_S * 1000LL - IMDS_TOKEN_MARGIN_MS;
out:
	http_response_clear(&resp);
	return ret;
}

static int get_once(struct imds_client *c, const char *path, int64_t deadline,
		    struct http_response *resp, struct kb_error *err)
{
	struct http_header token = {"X-aws-ec2-metadata-token", NULL};
	struct http_request req = {.method = "GET", .headers = &token, .header_count = 1};
	char *url_path = NULL;
	int ret;

	ret = fetch_token(c, deadline, err);
	if (ret < 0)
		return ret;
	if (asprintf(&url_path, "/latest/%s", path) < 0)
		return kb_errorf(err, ENOMEM, "out of memory");
	token.value = c->token;
	req.path = url_path;
	ret = send_retrying(c, &req, deadline, resp, err);
	free(url_path);
	return ret;
}

int imds_get(struct imds_client *client, const char *path, int64_t deadline, char **out,
	     struct kb_error *err)
{
	struct http_response resp;
	int ret;

	*out = NULL;
	if (client->disabled)
		return kb_errorf(err, KB_ECONFIG, "%s", client->disabled);
	ret = get_once(client, path, deadline, &resp, err);
	if (ret == 0 && resp.status == 401) {
		/* The token expired or IMDS restarted: one new token, one more try. */
		log_debug("imds: GET %s: HTTP 401, renewing the session token", path);
		http_response_clear(&resp);
		forget_token(client);
		ret = get_once(client, path, deadline, &resp, err);
	}
	if (ret < 0)
		return ret;
	if (resp.status == 200) {
		*out = resp.body;
		resp.body = NULL;
	} else if (resp.status == 404) {
		ret = kb_errorf(err, ENOENT, "instance metadata %s: not found", path);
	} else {
		ret = kb_errorf(err, KB_EUNAVAIL, "instance metadata %s: HTTP %ld", path,
				resp.status);
	}
	http_response_clear(&resp);
	return ret;
}

int imds_wait(struct imds_client *client, const char *path, int64_t deadline, char **out,
	      struct kb_error *err)
{
	int64_t interval = IMDS_WAIT_FIRST_MS;
	int64_t started = deadline_now_ms();

	for (;;) {
		struct kb_error why = {{0}};
		int ret = imds_get(client, path, deadline, out, &why);

		if (ret != -ENOENT) {
			if (ret < 0)
				kb_errorf(err, -ret, "%s", why.msg);
			return ret;
		}
		if (!deadline_sleep_ms(deadline, interval))
			return kb_errorf(err, KB_ETIMEOUT,
					 "instance metadata %s: still absent after %lld ms", path,
					 (long long)(deadline_now_ms() - started));
		interval = interval * 2 > IMDS_WAIT_CAP_MS ? IMDS_WAIT_CAP_MS : interval * 2;
	}
}

/* ---- credentials ---- */

void imds_credentials_clear(struct imds_credentials *creds)
{
	if (!creds)
		return;
	if (creds->secret_access_key)
		OPENSSL_cleanse(creds->secret_access_key, strlen(creds->secret_access_key));
	if (creds->token)
		OPENSSL_cleanse(creds->token, strlen(creds->token));
	free(creds->access_key_id);
	free(creds->secret_access_key);
	free(creds->token);
	memset(creds, 0, sizeof(*creds));
}

/* "2017-05-17T15:09:54Z", fractional seconds tolerated. */
static int parse_expiration(const char *s, int64_t *wall_ms)
{
	struct tm tm = {0};
	int consumed = 0;
	const char *rest;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed != 19)
		return -EINVAL;
	rest = s + consumed;
	if (*rest == '.') {
		rest++;
		while (*rest >= '0' && *rest <= '9')
			rest++;
	}
	if (strcmp(rest, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*wall_ms = (int64_t)timegm(&tm) * 1000;
	return 0;
}

static const char *member_string(json_t *root, const char *key)
{
	const char *s = json_string_value(json_object_get(root, key));

	return s && *s ? s : NULL;
}

int imds_parse_credentials(const char *json, size_t len, struct imds_credentials *out,
			   struct kb_error *err)
{
	json_error_t jerr;
	json_t *root;
	const char *code, *akid, *secret, *token, *expiration;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	/* jerr.text quotes the text near the error, which may be part of a secret: only the
	 * position is reported. */
	if (!root)
		return kb_errorf(err, EINVAL, "instance credentials: not JSON (line %d column %d)",
				 jerr.line, jerr.column);
	if (!json_is_object(root)) {
		ret = kb_errorf(err, EINVAL, "instance credentials: not a JSON object");
		goto out;
	}
	code = json_string_value(json_object_get(root, "Code"));
	if (json_object_get(root, "Code") && (!code || strcmp(code, "Success") != 0)) {
		const char *message = member_string(root, "Message");

		ret = kb_errorf(err, EINVAL, "instance credentials: Code %s: %s",
				code ? code : "(not a string)", message ? message : "no message");
		goto out;
	}
	akid = member_string(root, "AccessKeyId");
	secret = member_string(root, "SecretAccessKey");
	token = member_string(root, "Token");
	expiration = member_string(root, "Expiration");
	if (!akid || !secret || !token || !expiration) {
		ret = kb_errorf(err, EINVAL, "instance credentials: %s missing",
				!akid ? "AccessKeyId" : !secret ? "SecretAccessKey"
						    : !token	    ? "Token"
								    : "Expiration");
		goto out;
	}
	if (parse_expiration(expiration, &out->expiration_wall_ms) < 0) {
		ret = kb_errorf(err, EINVAL, "instance credentials: Expiration '%.40s' is not "
					     "YYYY-MM-DDTHH:MM:SSZ",
				expiration);
		goto out;
	}
	out->access_key_id = strdup(akid);
	out->secret_access_key = strdup(secret);
	out->token = strdup(token);
	if (!out->access_key_id || !out->secret_access_key || !out->token)
		ret = kb_errorf(err, ENOMEM, "out of memory");
out:
	if (ret < 0)
		imds_credentials_clear(out);
	json_decref(root);
	return ret;
}

/* The role name: first line of iam/security-credentials/, cached for refreshes. */
static int role_name(struct imds_client *c, int64_t deadline, struct kb_error *err)
{
	struct kb_error why = {{0}};
	char *list = NULL;
	int ret;

	if (c->role)
		return 0;
	ret = imds_get(c, "meta-data/iam/security-credentials/", deadline, &list, &why);
	if (ret == -ENOENT)
		return kb_errorf(err, ENOENT, "no instance profile: instance metadata lists no "
					      "IAM role");
	if (ret < 0)
		return kb_errorf(err, -ret, "%s", why.msg);
	list[strcspn(list, "\r\n")] = '\0';
	if (!*list || strchr(list, '/')) {
		free(list);
		return kb_errorf(err, EINVAL, "instance metadata lists no usable IAM role");
	}
	c->role = list;
	return 0;
}

int imds_get_credentials(struct imds_client *client, int64_t deadline,
			 struct imds_credentials *out, struct kb_error *err)
{
	struct kb_error why = {{0}};
	char *path = NULL;
	char *json = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	for (int listing = 0; listing < 2; listing++) {
		ret = role_name(client, deadline, err);
		if (ret < 0)
			return ret;
		free(path);
		if (asprintf(&path, "meta-data/iam/security-credentials/%s", client->role) < 0)
			return kb_errorf(err, ENOMEM, "out of memory");
		kb_error_clear(&why);
		ret = imds_get(client, path, deadline, &json, &why);
		if (ret != -ENOENT)
			break;
		/* The instance profile was replaced since the listing: list again, once. */
		free(client->role);
		client->role = NULL;
	}
	free(path);
	if (ret < 0)
		return kb_errorf(err, -ret, "%s", why.msg);
	ret = imds_parse_credentials(json, strlen(json), out, err);
	OPENSSL_cleanse(json, strlen(json));
	free(json);
	if (ret < 0)
		return ret;
	log_add_secret(out->secret_access_key);
	log_add_secret(out->token);
	return 0;
}
