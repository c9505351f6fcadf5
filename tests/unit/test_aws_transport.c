/* test_aws_transport.c: http, imds and aws_query against a scripted HTTP server on loopback,
 * in process, so the retry policy, the deadline, clock skew, credential refresh and the IMDS
 * token dance are checked deterministically (the randomness and the replies are fixed). The
 * fake AWS (tests/aws/) checks the same paths against botocore's signature verification.
 * The server is http_stub.h's: the last reply of a script repeats. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_stub.h"
#include "kb/deadline.h"
#include "kb/http.h"
#include "kb/log.h"
#include "kb/private/aws.h"
#include "kb/private/imds.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- http ---- */

static void plain_http_needs_explicit_configuration(void **state)
{
	struct http_options opts = {0};
	struct kb_error err = {{0}};
	struct http_client *c;

	(void)state;
	assert_null(http_client_new("http://127.0.0.1:1", &opts, &err));
	assert_non_null(strstr(err.msg, "plain http"));
	kb_error_clear(&err);
	assert_null(http_client_new("ftp://example.com/", &opts, &err));
	opts.allow_http = true;
	c = http_client_new("http://127.0.0.1:8080/prefix/", &opts, &err);
	assert_string_equal(http_client_host(c), "127.0.0.1:8080");
	assert_string_equal(http_client_base_path(c), "/prefix");
	http_client_free(c);
	c = http_client_new("https://ec2.us-east-1.amazonaws.com:443", &opts, &err);
	assert_string_equal(http_client_host(c), "ec2.us-east-1.amazonaws.com");
	assert_string_equal(http_client_base_path(c), "");
	http_client_free(c);
	c = http_client_new("http://[::1]:8080", &opts, &err);
	assert_string_equal(http_client_host(c), "[::1]:8080");
	http_client_free(c);
	http_client_free(NULL);
}

static int sockets_without_cloexec(int *sockets)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int missing = 0;

	*sockets = 0;
	while ((e = readdir(d))) {
		char path[300], target[64];
		int fd = atoi(e->d_name);
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0 || fd == dirfd(d))
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:", 7) != 0)
			continue;
		(*sockets)++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			missing++;
	}
	closedir(d);
	return missing;
}

static void connection_is_reused_cloexec_and_headers_captured(void **state)
{
	static const struct stub_reply script[] = {
		{200, "one", "Date: Wed, 15 Jan 2025 12:00:00 GMT\r\nx-amzn-RequestId: rid-1\r\n"},
		{404, "", NULL},
		{200, "three", "x-amz-request-id: rid-3\r\n"},
	};
	struct stub *s = stub_start(script, COUNT(script));
	struct http_options opts = {.allow_http = true};
	struct kb_error err = {{0}};
	struct http_client *c = http_client_new(stub_url(s), &opts, &err);
	struct http_request req = {.method = "GET", .path = "/x"};
	struct http_response resp;
	int sockets_before, sockets_after;

	(void)state;
	assert_int_equal(sockets_without_cloexec(&sockets_before), 0);
	assert_int_equal(http_send(c, &req, deadline_after_ms(5000), &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "one");
	assert_string_equal(resp.date, "Wed, 15 Jan 2025 12:00:00 GMT");
	assert_string_equal(resp.request_id, "rid-1");
	http_response_clear(&resp);
	assert_int_equal(sockets_without_cloexec(&sockets_after), 0);
	assert_true(sockets_after > sockets_before); /* the kept connection, both ends */
	assert_int_equal(http_send(c, &req, deadline_after_ms(5000), &resp, &err), 0);
	assert_int_equal(resp.status, 404);
	assert_null(resp.date);
	http_response_clear(&resp);
	req.method = "PUT";
	assert_int_equal(http_send(c, &req, deadline_after_ms(5000), &resp, &err), 0);
	assert_string_equal(resp.request_id, "rid-3");
	http_response_clear(&resp);
	assert_int_equal(http_client_connects(c), 1);
	assert_int_equal(stub_connections(s), 1);
	assert_non_null(strstr(stub_request(s, 2), "PUT /x HTTP/1.1\r\n"));
	assert_null(strcasestr(stub_request(s, 2), "Content-Type"));
	http_client_free(c);
	stub_stop(s);
}

static void deadline_bounds_every_attempt(void **state)
{
	static const struct stub_reply script[] = {{STUB_SILENT, NULL, NULL}};
	struct stub *s = stub_start(script, COUNT(script));
	struct http_options opts = {.allow_http = true, .timeout_ms = 10000};
	struct kb_error err = {{0}};
	struct http_client *c = http_client_new(stub_url(s), &opts, &err);
	struct http_request req = {.method = "GET", .path = "/"};
	struct http_response resp;
	int64_t started = deadline_now_ms();

	(void)state;
	assert_int_equal(http_send(c, &req, deadline_after_ms(300), &resp, &err), -ETIMEDOUT);
	assert_in_range(deadline_now_ms() - started, 250, 5000);
	assert_non_null(strstr(err.msg, "timed out"));
	kb_error_clear(&err);
	started = deadline_now_ms();
	assert_int_equal(http_send(c, &req, deadline_now_ms() - 1, &resp, &err), -ETIMEDOUT);
	assert_true(deadline_now_ms() - started < 50);
	assert_non_null(strstr(err.msg, "deadline passed"));
	http_client_free(c);
	stub_stop(s);
}

/* ---- aws_query ---- */

static double zero(void *arg)
{
	(void)arg;
	return 0.0;
}

static double almost_one(void *arg)
{
	(void)arg;
	return 0.999;
}

static int setup_env(void **state)
{
	(void)state;
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_MAX_ATTEMPTS");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SECURITY_TOKEN");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	setenv("AWS_ACCESS_KEY_ID", "AKIDTRANSPORT", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "transport/secret+key", 1);
	return 0;
}

static struct imds_client *imds_for(const struct stub *s)
{
	struct imds_options opts = {.endpoint = stub_url(s), .timeout_ms = 5000};
	struct kb_error err = {{0}};
	struct imds_client *c = imds_client_new(&opts, &err);

	assert_non_null(c);
	return c;
}

/* A scripted EC2 endpoint (and IMDS when given a script), a context pointed at them with no
 * backoff randomness, and the last call's answer. */
struct rig {
	struct stub *ec2;
	struct stub *imds_server;
	struct imds_client *imds;
	struct aws_ctx *ctx;
	struct aws_response *out;
	struct kb_error err;
};

static void rig_start(struct rig *r, const struct stub_reply *ec2, size_t ec2_len, int attempts,
		      const struct stub_reply *imds, size_t imds_len)
{
	struct aws_ctx_options opts = {.region = "us-east-1", .max_attempts = attempts,
				       .timeout_ms = 5000};

	memset(r, 0, sizeof(*r));
	r->ec2 = stub_start(ec2, ec2_len);
	if (imds) {
		r->imds_server = stub_start(imds, imds_len);
		r->imds = imds_for(r->imds_server);
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
	}
	setenv("AWS_ENDPOINT_URL_EC2", stub_url(r->ec2), 1);
	opts.imds = r->imds;
	r->ctx = aws_ctx_new(&opts, DEADLINE_NEVER, &r->err);
	assert_non_null(r->ctx);
	aws_ctx_set_random(r->ctx, zero, NULL);
}

/* DescribeVolumes VolumeId.1=vol-1, with a fresh error buffer. */
static int rig_query(struct rig *r, int64_t deadline)
{
	struct aws_params *p = aws_params_new("DescribeVolumes", "2016-11-15");
	int ret;

	assert_int_equal(aws_params_add(p, "VolumeId.1", "vol-1"), 0);
	aws_response_free(r->out);
	kb_error_clear(&r->err);
	ret = aws_query(r->ctx, AWS_SERVICE_EC2, p, deadline, &r->out, &r->err);
	aws_params_free(p);
	return ret;
}

static void rig_stop(struct rig *r)
{
	aws_response_free(r->out);
	aws_ctx_free(r->ctx);
	imds_client_free(r->imds);
	stub_stop(r->imds_server);
	stub_stop(r->ec2);
}

#define EC2_ERROR(code, msg)                                                             \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" code \
	"</Code><Message>" msg "</Message></Error></Errors><RequestID>req-" code            \
	"</RequestID></Response>"
#define OK_BODY "<DescribeVolumesResponse><requestId>ok</requestId></DescribeVolumesResponse>"

static const struct stub_reply throttled = {
	503, EC2_ERROR("RequestLimitExceeded", "Request limit exceeded."), NULL};

static void throttling_is_retried_until_success(void **state)
{
	const struct stub_reply script[] = {throttled, throttled, {200, OK_BODY, NULL}};
	struct rig r;

	(void)state;
	rig_start(&r, script, COUNT(script), 10, NULL, 0);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	assert_int_equal(r.out->http_status, 200);
	assert_string_equal(r.out->body, OK_BODY);
	assert_null(r.out->error_code);
	assert_int_equal(stub_served(r.ec2), 3);
	assert_int_equal(aws_ctx_calls(r.ctx, AWS_SERVICE_EC2), 3);
	assert_int_equal(aws_ctx_connects(r.ctx, AWS_SERVICE_EC2), 1);
	assert_int_equal(stub_connections(r.ec2), 1);
	/* Two retries cost 5 each; the success refunds the last one. */
	assert_int_equal(aws_ctx_quota_tokens(r.ctx), 495);
	/* What was hashed is what was sent: the encoded body, and the signed headers. */
	for (size_t i = 0; i < 3; i++) {
		assert_non_null(strstr(stub_request(r.ec2, i),
				       "\r\n\r\nAction=DescribeVolumes&Version=2016-11-15&"
				       "VolumeId.1=vol-1"));
		assert_non_null(strstr(stub_request(r.ec2, i),
				       "SignedHeaders=content-type;host;x-amz-date, Signature="));
		assert_non_null(strstr(stub_request(r.ec2, i), "Credential=AKIDTRANSPORT/"));
	}
	rig_stop(&r);
}

static void endless_throttling_fails_with_awss_code(void **state)
{
	const struct stub_reply script[] = {throttled};
	struct rig r;

	(void)state;
	rig_start(&r, script, COUNT(script), 4, NULL, 0);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), -KB_EUNAVAIL);
	assert_non_null(r.out);
	assert_string_equal(r.out->error_code, "RequestLimitExceeded");
	assert_string_equal(r.out->request_id, "req-RequestLimitExceeded");
	assert_string_equal(r.err.msg, "DescribeVolumes: RequestLimitExceeded: Request limit "
				       "exceeded. (HTTP 503, request id req-RequestLimitExceeded; "
				       "gave up after 4 attempts: no attempts left)");
	assert_int_equal(stub_served(r.ec2), 4);
	rig_stop(&r);
}

static void retries_never_sleep_past_the_deadline(void **state)
{
	const struct stub_reply script[] = {throttled};
	struct rig r;
	int64_t started;

	(void)state;
	rig_start(&r, script, COUNT(script), 10, NULL, 0);
	/* Waits of 999 ms, then 1998 ms: the second would end after the deadline. */
	aws_ctx_set_random(r.ctx, almost_one, NULL);
	started = deadline_now_ms();
	assert_int_equal(rig_query(&r, started + 2500), -KB_EUNAVAIL);
	assert_true(deadline_now_ms() - started < 2500);
	assert_int_equal(stub_served(r.ec2), 2);
	assert_non_null(strstr(r.err.msg, "RequestLimitExceeded"));
	assert_non_null(strstr(r.err.msg, "the deadline leaves no time"));
	rig_stop(&r);
}

static void final_errors_return_at_once_with_awss_code(void **state)
{
	const struct stub_reply script[] = {
		{400, EC2_ERROR("InvalidParameterValue", "Value (x) for parameter is invalid"),
		 NULL},
		{403, EC2_ERROR("UnauthorizedOperation", "You are not authorized"), NULL},
		{412, EC2_ERROR("DryRunOperation", "Request would have succeeded"), NULL},
	};
	struct rig r;

	(void)state;
	rig_start(&r, script, COUNT(script), 10, NULL, 0);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), -KB_EAWS);
	assert_string_equal(r.err.msg, "DescribeVolumes: InvalidParameterValue: Value (x) for "
				       "parameter is invalid (HTTP 400, request id "
				       "req-InvalidParameterValue)");
	assert_int_equal(r.out->http_status, 400);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), -KB_EDENIED);
	assert_string_equal(r.out->error_code, "UnauthorizedOperation");
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), -KB_EAWS);
	assert_string_equal(r.out->error_code, "DryRunOperation");
	assert_int_equal(stub_served(r.ec2), 3);
	rig_stop(&r);
}

static void retry_quota_ends_a_storm(void **state)
{
	const struct stub_reply script[] = {{500, "<html>oops</html>", NULL}};
	struct rig r;

	(void)state;
	rig_start(&r, script, COUNT(script), 200, NULL, 0);
	assert_int_equal(rig_query(&r, deadline_after_ms(30000)), -KB_EUNAVAIL);
	assert_int_equal(stub_served(r.ec2), 101); /* 500 tokens / 5 per retry */
	assert_int_equal(aws_ctx_quota_tokens(r.ctx), 0);
	assert_non_null(strstr(r.err.msg, "retry quota exhausted"));
	assert_non_null(strstr(r.err.msg, "HTTP 500"));
	assert_null(r.out->error_code);
	rig_stop(&r);
}

static void connection_errors_are_retried_then_unavailable(void **state)
{
	struct aws_ctx_options opts = {.region = "us-east-1", .max_attempts = 3};
	struct stub *gone = stub_start(NULL, 0);
	struct rig r;

	(void)state;
	memset(&r, 0, sizeof(r));
	/* Where a server listened a moment ago and nothing does now. */
	setenv("AWS_ENDPOINT_URL_EC2", stub_url(gone), 1);
	stub_stop(gone);
	r.ctx = aws_ctx_new(&opts, DEADLINE_NEVER, &r.err);
	aws_ctx_set_random(r.ctx, zero, NULL);
	assert_int_equal(rig_query(&r, deadline_after_ms(5000)), -KB_EUNAVAIL);
	assert_null(r.out);
	assert_non_null(strstr(r.err.msg, "DescribeVolumes: POST http://127.0.0.1:"));
	assert_non_null(strstr(r.err.msg, "gave up after 3 attempts"));
	assert_int_equal(aws_ctx_calls(r.ctx, AWS_SERVICE_EC2), 3);
	aws_ctx_free(r.ctx);
}

static void a_hung_up_request_is_retried_on_a_new_connection(void **state)
{
	const struct stub_reply script[] = {{STUB_HANG_UP, NULL, NULL}, {200, OK_BODY, NULL}};
	struct rig r;

	(void)state;
	rig_start(&r, script, COUNT(script), 3, NULL, 0);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	assert_string_equal(r.out->body, OK_BODY);
	assert_int_equal(stub_served(r.ec2), 2);
	assert_int_equal(stub_connections(r.ec2), 2);
	assert_int_equal(aws_ctx_connects(r.ctx, AWS_SERVICE_EC2), 2);
	rig_stop(&r);
}

static int64_t wall_now(void *arg)
{
	(void)arg;
	return deadline_wall_ms();
}

static int64_t amz_date_ms(const char *request)
{
	const char *d = strcasestr(request, "\r\nX-Amz-Date: ");
	struct tm tm = {0};

	assert_non_null(d);
	assert_non_null(strptime(d + 14, "%Y%m%dT%H%M%SZ", &tm));
	return (int64_t)timegm(&tm) * 1000;
}

static void clock_skew_is_corrected_once(void **state)
{
	char date[64], headers[96];
	time_t ahead = time(NULL) + 7200;
	struct stub_reply script[3];
	struct tm tm;
	struct rig r;
	int64_t first, second;

	(void)state;
	gmtime_r(&ahead, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(headers, sizeof(headers), "Date: %s\r\n", date);
	script[0] = (struct stub_reply){400, EC2_ERROR("RequestExpired", "Request has expired."),
					headers};
	script[1] = (struct stub_reply){200, OK_BODY, headers};
	script[2] = script[0];
	rig_start(&r, script, COUNT(script), 10, NULL, 0);
	aws_ctx_set_wall_clock(r.ctx, wall_now, NULL);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	first = amz_date_ms(stub_request(r.ec2, 0));
	second = amz_date_ms(stub_request(r.ec2, 1));
	assert_in_range(second - first, 7200000 - 5000, 7200000 + 5000);
	assert_in_range(aws_ctx_clock_offset_ms(r.ctx), 7200000 - 5000, 7200000 + 5000);
	/* The server keeps saying expired, with a Date that now agrees: no second correction,
	 * no retry (RequestExpired is not transient). */
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), -KB_EAWS);
	assert_string_equal(r.out->error_code, "RequestExpired");
	assert_int_equal(stub_served(r.ec2), 3);
	rig_stop(&r);
}

/* ---- credentials from IMDS ---- */

#define CREDS(akid)                                                                        \
	"{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"" akid "\","            \
	"\"SecretAccessKey\":\"secret-of-" akid "\",\"Token\":\"token-of-" akid "\","          \
	"\"Expiration\":\"2100-01-01T00:00:00Z\"}"
#define CREDS_EXPIRE_MS 4102444800000LL /* 2100-01-01T00:00:00Z */
#define AUTH_FAILURE {401, EC2_ERROR("AuthFailure", "AWS was not able to validate it"), NULL}

static void refused_instance_credentials_are_refreshed_once(void **state)
{
	static const struct stub_reply imds_script[] = {
		{200, "imds-token-1", NULL},
		{200, "kafka-broker-role\n", NULL},
		{200, CREDS("ASIAFIRST"), NULL},
		{200, CREDS("ASIASECOND"), NULL},
	};
	static const struct stub_reply ec2_script[] = {
		AUTH_FAILURE, {200, OK_BODY, NULL}, AUTH_FAILURE,
	};
	struct rig r;
	char *line;

	(void)state;
	rig_start(&r, ec2_script, COUNT(ec2_script), 10, imds_script, COUNT(imds_script));
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	assert_non_null(strstr(stub_request(r.ec2, 0), "Credential=ASIAFIRST/"));
	assert_non_null(strstr(stub_request(r.ec2, 0),
			       "X-Amz-Security-Token: token-of-ASIAFIRST\r\n"));
	assert_non_null(strstr(stub_request(r.ec2, 1), "Credential=ASIASECOND/"));
	assert_non_null(strstr(stub_request(r.ec2, 1),
			       "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
	/* Token PUT, role listing, credentials twice: the role name is cached. */
	assert_int_equal(stub_served(r.imds_server), 4);
	assert_int_equal(imds_client_calls(r.imds), 4);
	assert_non_null(strstr(stub_request(r.imds_server, 3),
			       "GET /latest/meta-data/iam/security-credentials/kafka-broker-role "));
	/* Refused again after the refresh: the error, not a loop. */
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), -KB_EAWS);
	assert_string_equal(r.out->error_code, "AuthFailure");
	line = log_redact_new("secret-of-ASIASECOND token-of-ASIASECOND secret-of-ASIAFIRST");
	assert_string_equal(line, LOG_REDACTED " " LOG_REDACTED " " LOG_REDACTED);
	free(line);
	rig_stop(&r);
}

static int64_t fixed_wall_ms;

static int64_t fixed_wall(void *arg)
{
	(void)arg;
	return fixed_wall_ms;
}

static void credentials_refresh_early_keeps_old_ones_until_ten_minutes(void **state)
{
	static const struct stub_reply imds_script[] = {
		{200, "imds-token", NULL},
		{200, "kafka-broker-role\n", NULL},
		{200, CREDS("ASIAFIRST"), NULL},
		{200, "{\"Code\":\"Failure\",\"Message\":\"IMDS broke\"}", NULL},
	};
	static const struct stub_reply ec2_script[] = {{200, OK_BODY, NULL}};
	struct rig r;

	(void)state;
	rig_start(&r, ec2_script, COUNT(ec2_script), 10, imds_script, COUNT(imds_script));
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	assert_int_equal(stub_served(r.imds_server), 3);
	/* 12 minutes before expiry: a refresh is tried, fails, the old credentials sign. */
	fixed_wall_ms = CREDS_EXPIRE_MS - 12 * 60 * 1000;
	aws_ctx_set_wall_clock(r.ctx, fixed_wall, NULL);
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	assert_int_equal(stub_served(r.imds_server), 4);
	assert_non_null(strstr(stub_request(r.ec2, 1), "Credential=ASIAFIRST/"));
	/* Within a minute of that failure IMDS is left alone. */
	fixed_wall_ms += 30 * 1000;
	assert_int_equal(rig_query(&r, deadline_after_ms(10000)), 0);
	assert_int_equal(stub_served(r.imds_server), 4);
	/* 9 minutes before expiry the refresh must succeed, or the call fails unsent. */
	fixed_wall_ms = CREDS_EXPIRE_MS - 9 * 60 * 1000;
	assert_true(rig_query(&r, deadline_after_ms(10000)) < 0);
	assert_null(r.out);
	assert_string_equal(r.err.msg, "DescribeVolumes: AWS credentials: instance credentials: "
				       "Code Failure: IMDS broke");
	assert_int_equal(stub_served(r.imds_server), 5);
	assert_int_equal(stub_served(r.ec2), 3);
	rig_stop(&r);
}

static void region_comes_from_imds_when_the_environment_names_none(void **state)
{
	static const struct stub_reply script[] = {
		{200, "token", NULL}, {200, "eu-west-3\n", NULL},
	};
	struct stub *s = stub_start(script, COUNT(script));
	struct imds_client *imds = imds_for(s);
	struct aws_ctx_options opts = {.imds = imds};
	struct kb_error err = {{0}};
	struct aws_ctx *ctx;

	(void)state;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	ctx = aws_ctx_new(&opts, deadline_after_ms(5000), &err);
	assert_non_null(ctx);
	assert_string_equal(aws_ctx_region(ctx), "eu-west-3");
	assert_non_null(strstr(stub_request(s, 1), "GET /latest/meta-data/placement/region "));
	aws_ctx_free(ctx);
	imds_client_free(imds);
	stub_stop(s);
}

/* ---- IMDS ---- */

static void imds_token_is_put_sent_and_renewed_on_401(void **state)
{
	static const struct stub_reply script[] = {
		{200, "token-A", NULL}, {401, "", NULL}, {200, "token-B", NULL},
		{200, "i-0123456789abcdef0", NULL}, {200, "us-east-1a", NULL},
	};
	struct stub *s = stub_start(script, COUNT(script));
	struct imds_client *c = imds_for(s);
	struct kb_error err = {{0}};
	char *out = NULL;

	(void)state;
	assert_int_equal(imds_get(c, "meta-data/instance-id", deadline_after_ms(5000), &out, &err), 0);
	assert_string_equal(out, "i-0123456789abcdef0");
	free(out);
	assert_int_equal(imds_get(c, "meta-data/placement/availability-zone",
				  deadline_after_ms(5000), &out, &err),
			 0);
	assert_string_equal(out, "us-east-1a");
	free(out);
	assert_int_equal(stub_served(s), 5);
	assert_non_null(strstr(stub_request(s, 0), "PUT /latest/api/token HTTP/1.1\r\n"));
	assert_non_null(strstr(stub_request(s, 0),
			       "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"));
	assert_non_null(strstr(stub_request(s, 1), "X-aws-ec2-metadata-token: token-A\r\n"));
	assert_non_null(strstr(stub_request(s, 2), "PUT /latest/api/token"));
	assert_non_null(strstr(stub_request(s, 3), "X-aws-ec2-metadata-token: token-B\r\n"));
	assert_non_null(strstr(stub_request(s, 4),
			       "GET /latest/meta-data/placement/availability-zone "));
	assert_non_null(strstr(stub_request(s, 4), "X-aws-ec2-metadata-token: token-B\r\n"));
	imds_client_free(c);
	stub_stop(s);
}

static void imds_absent_key_is_enoent_and_wait_retries_it(void **state)
{
	static const struct stub_reply script[] = {
		{200, "token", NULL}, {404, "", NULL}, {404, "", NULL}, {404, "", NULL},
		{200, "10.0.1.0/24", NULL}, {404, "", NULL},
	};
	struct stub *s = stub_start(script, COUNT(script));
	struct imds_client *c = imds_for(s);
	struct kb_error err = {{0}};
	const char *path = "meta-data/network/interfaces/macs/0e:00:00:00:00:01/"
			   "subnet-ipv4-cidr-block";
	int64_t started;
	char *out = NULL;

	(void)state;
	assert_int_equal(imds_get(c, path, deadline_after_ms(5000), &out, &err), -ENOENT);
	assert_null(out);
	started = deadline_now_ms();
	assert_int_equal(imds_wait(c, path, deadline_after_ms(5000), &out, &err), 0);
	assert_string_equal(out, "10.0.1.0/24");
	free(out);
	/* Two misses: waits of 50 and 100 ms. */
	assert_in_range(deadline_now_ms() - started, 150, 5000);
	started = deadline_now_ms();
	kb_error_clear(&err);
	assert_int_equal(imds_wait(c, path, deadline_after_ms(600), &out, &err), -KB_ETIMEOUT);
	assert_in_range(deadline_now_ms() - started, 550, 2000);
	assert_non_null(strstr(err.msg, "still absent"));
	imds_client_free(c);
	stub_stop(s);
}

static void imds_5xx_is_retried_and_refused_token_is_final(void **state)
{
	static const struct stub_reply flaky[] = {
		{200, "token", NULL}, {503, "", NULL}, {500, "", NULL}, {200, "i-1", NULL},
	};
	static const struct stub_reply refused[] = {{403, "", NULL}};
	struct stub *s = stub_start(flaky, COUNT(flaky));
	struct imds_client *c = imds_for(s);
	struct kb_error err = {{0}};
	char *out = NULL;

	(void)state;
	assert_int_equal(imds_get(c, "meta-data/instance-id", deadline_after_ms(10000), &out, &err),
			 0);
	assert_string_equal(out, "i-1");
	free(out);
	assert_int_equal(stub_served(s), 4);
	imds_client_free(c);
	stub_stop(s);

	s = stub_start(refused, COUNT(refused));
	c = imds_for(s);
	assert_int_equal(imds_get(c, "meta-data/instance-id", deadline_after_ms(10000), &out, &err),
			 -KB_EUNAVAIL);
	assert_non_null(strstr(err.msg, "refused a session token"));
	/* No IMDSv1 fallback: nothing was asked without a token. */
	assert_int_equal(stub_served(s), 1);
	imds_client_free(c);
	stub_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_http_needs_explicit_configuration),
		cmocka_unit_test(connection_is_reused_cloexec_and_headers_captured),
		cmocka_unit_test(deadline_bounds_every_attempt),
		cmocka_unit_test_setup(throttling_is_retried_until_success, setup_env),
		cmocka_unit_test_setup(endless_throttling_fails_with_awss_code, setup_env),
		cmocka_unit_test_setup(retries_never_sleep_past_the_deadline, setup_env),
		cmocka_unit_test_setup(final_errors_return_at_once_with_awss_code, setup_env),
		cmocka_unit_test_setup(retry_quota_ends_a_storm, setup_env),
		cmocka_unit_test_setup(connection_errors_are_retried_then_unavailable, setup_env),
		cmocka_unit_test_setup(a_hung_up_request_is_retried_on_a_new_connection, setup_env),
		cmocka_unit_test_setup(clock_skew_is_corrected_once, setup_env),
		cmocka_unit_test_setup(refused_instance_credentials_are_refreshed_once, setup_env),
		cmocka_unit_test_setup(credentials_refresh_early_keeps_old_ones_until_ten_minutes,
				       setup_env),
		cmocka_unit_test_setup(region_comes_from_imds_when_the_environment_names_none,
				       setup_env),
		cmocka_unit_test(imds_token_is_put_sent_and_renewed_on_401),
		cmocka_unit_test(imds_absent_key_is_enoent_and_wait_retries_it),
		cmocka_unit_test(imds_5xx_is_retried_and_refused_token_is_final),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
