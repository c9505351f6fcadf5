/* sigv4_suite_case.c: runs one case directory of AWS's SigV4 test suite (header variant).
 *
 * Usage: sigv4_suite_case <case-dir>. Reads context.json and request.txt, runs each signing
 * step and compares its buffer byte for byte with header-canonical-request.txt,
 * header-string-to-sign.txt, header-signature.txt and the Authorization line of
 * header-signed-request.txt; then signs end to end, and checks that one flipped byte of the
 * secret key changes the signature (so the comparison can fail). ctest runs it once per
 * directory, so a failure names the case. See README.md here for the cases that do not apply. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kb/file.h"
#include "kb/private/sigv4.h"

#define MAX_ITEMS 64

struct parsed_request {
	char *method;
	char *path;
	struct sigv4_param query[MAX_ITEMS];
	size_t query_count;
	struct sigv4_header headers[MAX_ITEMS];
	size_t header_count;
	char *body;
};

struct context {
	char *akid, *secret, *token, *region, *service;
	int64_t time_s;
	int normalize, sign_body, omit_token;
};

static int failures;

static char *read_file(const char *dir, const char *name)
{
	struct kb_error err = {{0}};
	char path[4096];
	char *data = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, &data, &len, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(2);
	}
	return data;
}

static char *percent_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned hi, lo;

		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2]) && sscanf(s + i + 1, "%1x%1x", &hi, &lo) == 2) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void parse_query(struct parsed_request *r, const char *q)
{
	while (*q && r->query_count < MAX_ITEMS) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		size_t name_len = eq ? (size_t)(eq - q) : n;

		r->query[r->query_count].name = percent_decode(q, name_len);
		r->query[r->query_count].value = eq ? percent_decode(eq + 1, n - name_len - 1)
						    : strdup("");
		r->query_count++;
		q += n;
		if (*q == '&')
			q++;
	}
}

/* "METHOD target HTTP/1.1": the target may hold spaces (get-space-*). */
static void parse_request_line(struct parsed_request *r, const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len);
	const char *sp2 = line + len;
	char *target, *q;

	while (sp2 > sp1 && *--sp2 != ' ')
		;
	r->method = strndup(line, (size_t)(sp1 - line));
	target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	q = strchr(target, '?');
	if (q) {
		*q = '\0';
		parse_query(r, q + 1);
	}
	r->path = target;
}

static void parse_request(struct parsed_request *r, const char *text)
{
	const char *p = text;
	size_t n = strcspn(p, "\n");

	parse_request_line(r, p, n);
	p += n + (p[n] == '\n');
	while (*p && *p != '\n') {
		n = strcspn(p, "\n");
		if ((*p == ' ' || *p == '\t') && r->header_count > 0) {
			/* obs-fold: the signer folds the whitespace. */
			struct sigv4_header *h = &r->headers[r->header_count - 1];
			char *joined = NULL;

			if (asprintf(&joined, "%s\n%.*s", h->value, (int)n, p) < 0)
				exit(2);
			free((char *)h->value);
			h->value = joined;
		} else if (r->header_count < MAX_ITEMS) {
			const char *colon = memchr(p, ':', n);

			if (!colon)
				exit(2);
			r->headers[r->header_count].name = strndup(p, (size_t)(colon - p));
			r->headers[r->header_count].value =
				strndup(colon + 1, n - (size_t)(colon - p) - 1);
			r->header_count++;
		}
		p += n + (p[n] == '\n');
	}
	r->body = strdup(*p == '\n' ? p + 1 : "");
}

static char *json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? strdup(s) : NULL;
}

static void load_context(struct context *c, const char *dir)
{
	char *text = read_file(dir, "context.json");
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	json_t *creds = json_object_get(root, "credentials");
	struct tm tm = {0};
	const char *ts = json_string_value(json_object_get(root, "timestamp"));

	if (!root || !creds || !ts || !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		fprintf(stderr, "%s/context.json: unreadable\n", dir);
		exit(2);
	}
	c->akid = json_str(creds, "access_key_id");
	c->secret = json_str(creds, "secret_access_key");
	c->token = json_str(creds, "token");
	c->region = json_str(root, "region");
	c->service = json_str(root, "service");
	c->time_s = (int64_t)timegm(&tm);
	c->normalize = json_is_true(json_object_get(root, "normalize"));
	c->sign_body = json_is_true(json_object_get(root, "sign_body"));
	c->omit_token = json_is_true(json_object_get(root, "omit_session_token"));
	json_decref(root);
	free(text);
}

static void expect_equal(const char *what, const char *expected, const char *got)
{
	if (got && strcmp(expected, got) == 0) {
		printf("ok   %s\n", what);
		return;
	}
	printf("FAIL %s\n--- expected\n%s\n--- got\n%s\n---\n", what, expected,
	       got ? got : "(null)");
	failures++;
}

/* The value of the Authorization line of header-signed-request.txt. */
static char *expected_authorization(const char *dir)
{
	char *text = read_file(dir, "header-signed-request.txt");
	char *line = strstr(text, "\nAuthorization:");
	char *out;

	if (!line) {
		fprintf(stderr, "%s: no Authorization line\n", dir);
		exit(2);
	}
	line += strlen("\nAuthorization:");
	out = strndup(line, strcspn(line, "\n"));
	free(text);
	return out;
}

static void check_steps(const char *dir, const struct sigv4_request *req,
			const struct sigv4_config *cfg)
{
	char *creq = read_file(dir, "header-canonical-request.txt");
	char *sts = read_file(dir, "header-string-to-sign.txt");
	char *sig = read_file(dir, "header-signature.txt");
	char *authz = expected_authorization(dir);
	struct sigv4_state st = {0};

	if (sigv4_build_canonical_request(&st, req, cfg) < 0 ||
	    sigv4_build_string_to_sign(&st, cfg) < 0 || sigv4_derive_signing_key(&st, cfg) < 0 ||
	    sigv4_compute_signature(&st) < 0 || sigv4_build_authorization(&st, cfg) < 0) {
		printf("FAIL a signing step returned an error\n");
		failures++;
	}
	expect_equal("canonical request", creq, st.canonical_request);
	expect_equal("string to sign", sts, st.string_to_sign);
	expect_equal("signature", sig, st.signature);
	expect_equal("authorization", authz, st.authorization);
	sigv4_state_clear(&st);
	free(creq);
	free(sts);
	free(sig);
	free(authz);
}

static void check_end_to_end(const char *dir, const struct sigv4_request *req,
			     struct sigv4_config *cfg, struct sigv4_credentials *creds)
{
	char *sig = read_file(dir, "header-signature.txt");
	struct kb_error err = {{0}};
	struct sigv4_state st = {0};
	char *flipped = strdup(creds->secret_access_key);
	const char *original = creds->secret_access_key;

	if (sigv4_sign(&st, req, cfg, &err) < 0) {
		printf("FAIL sigv4_sign: %s\n", err.msg);
		failures++;
	}
	expect_equal("sigv4_sign signature", sig, st.signature);
	sigv4_state_clear(&st);

	flipped[0] ^= 0x01;
	creds->secret_access_key = flipped;
	if (sigv4_sign(&st, req, cfg, &err) < 0 || strcmp(st.signature, sig) == 0) {
		printf("FAIL a flipped secret byte still gives the expected signature\n");
		failures++;
	} else {
		printf("ok   flipped secret byte changes the signature\n");
	}
	creds->secret_access_key = original;
	sigv4_state_clear(&st);
	free(flipped);
	free(sig);
}

static void release(struct parsed_request *r, struct context *c)
{
	for (size_t i = 0; i < r->query_count; i++) {
		free((char *)r->query[i].name);
		free((char *)r->query[i].value);
	}
	for (size_t i = 0; i < r->header_count; i++) {
		free((char *)r->headers[i].name);
		free((char *)r->headers[i].value);
	}
	free(r->method);
	free(r->path);
	free(r->body);
	free(c->akid);
	free(c->secret);
	free(c->token);
	free(c->region);
	free(c->service);
}

int main(int argc, char **argv)
{
	struct parsed_request r = {0};
	struct context c = {0};
	struct sigv4_credentials creds;
	struct sigv4_config cfg;
	struct sigv4_request req;
	char *text;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <case-dir>\n", argv[0]);
		return 2;
	}
	load_context(&c, argv[1]);
	text = read_file(argv[1], "request.txt");
	parse_request(&r, text);
	free(text);
	creds = (struct sigv4_credentials){c.akid, c.secret, c.token};
	cfg = (struct sigv4_config){.region = c.region, .service = c.service,
				    .time_s = c.time_s, .creds = &creds,
				    .sign_body = c.sign_body, .omit_session_token = c.omit_token};
	req = (struct sigv4_request){.method = r.method, .path = r.path,
				     .normalize_path = c.normalize, .query = r.query,
				     .query_count = r.query_count, .headers = r.headers,
				     .header_count = r.header_count, .payload = r.body,
				     .payload_len = strlen(r.body)};
	check_steps(argv[1], &req, &cfg);
	check_end_to_end(argv[1], &req, &cfg, &creds);
	release(&r, &c);
	return failures ? 1 : 0;
}
