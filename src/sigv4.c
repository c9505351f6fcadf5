/* sigv4.c: AWS Signature Version 4 (see sigv4.h). Never reads the clock, never logs: the
 * secret key only ever enters HMAC, and the derived key is wiped with the state. */
#include "kb/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kb/private/sigv4.h"
#include "kb/strbuf.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[SHA256_DIGEST_LENGTH];

	SHA256(data, len, digest);
	hex_encode(digest, sizeof(digest), out);
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void put_encoded(struct strbuf *b, const char *s, size_t len, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			strbuf_putc(b, (char)c);
		} else {
			char esc[3] = {'%', digits[c >> 4], digits[c & 0xf]};

			strbuf_put(b, esc, 3);
		}
	}
}

char *sigv4_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct strbuf b = {0};

	put_encoded(&b, s, len, keep_slash);
	return strbuf_take(&b);
}

char *sigv4_normalize_path(const char *path)
{
	size_t len = strlen(path);
	/* Start offsets of the kept segments, so ".." can drop the last one. */
	size_t *starts = calloc(len + 1, sizeof(*starts));
	size_t depth = 0;
	struct strbuf b = {0};
	const char *p = path;

	if (!starts)
		return NULL;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && strncmp(p, "..", 2) == 0) {
			if (depth > 0)
				b.len = starts[--depth];
		} else if (n > 0 && !(n == 1 && *p == '.')) {
			starts[depth++] = b.len;
			strbuf_putc(&b, '/');
			strbuf_put(&b, p, n);
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (b.data)
		b.data[b.len] = '\0';
	if (b.len == 0 || (len > 0 && path[len - 1] == '/'))
		strbuf_putc(&b, '/');
	free(starts);
	return strbuf_take(&b);
}

struct canon_header {
	char *name; /* lowercase */
	char *value; /* trimmed, inner whitespace runs folded to one space */
	size_t order;
};

static char *lowercase_dup(const char *s)
{
	char *out = strdup(s);

	for (char *p = out; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* Trims and folds whitespace, multi-line (obs-fold) values included, as botocore does with
 * ' '.join(value.split()). */
static char *fold_value(const char *s)
{
	struct strbuf b = {0};
	bool pending_space = false;

	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			pending_space = b.len > 0;
			continue;
		}
		if (pending_space)
			strbuf_putc(&b, ' ');
		pending_space = false;
		strbuf_putc(&b, *s);
	}
	return strbuf_take(&b);
}

static int compare_headers(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Headers the signer adds itself; a caller's copy is not signed twice. */
static bool signer_owned(const char *name)
{
	return strcasecmp(name, "x-amz-date") == 0 || strcasecmp(name, "authorization") == 0 ||
	       strcasecmp(name, "x-amz-security-token") == 0;
}

static int add_header(struct canon_header *list, size_t *count, const char *name,
		      const char *value)
{
	struct canon_header *h = &list[*count];

	h->name = lowercase_dup(name);
	h->value = fold_value(value);
	h->order = *count;
	(*count)++;
	return h->name && h->value ? 0 : -ENOMEM;
}

static void free_headers(struct canon_header *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(list[i].name);
		free(list[i].value);
	}
	free(list);
}

/* Collects, sorts and merges the headers (duplicates joined with ',' in request order, as
 * the suite's get-header-key-duplicate and get-header-value-order cases require). */
static int canonical_headers(struct sigv4_state *st, const struct sigv4_request *req,
			     const struct sigv4_config *cfg, struct strbuf *out)
{
	const char *token = cfg->creds->session_token;
	struct canon_header *list = calloc(req->header_count + 3, sizeof(*list));
	struct strbuf names = {0};
	size_t count = 0;
	int ret = 0;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; ret == 0 && i < req->header_count; i++) {
		if (!signer_owned(req->headers[i].name))
			ret = add_header(list, &count, req->headers[i].name, req->headers[i].value);
	}
	if (ret == 0)
		ret = add_header(list, &count, "x-amz-date", st->amz_date);
	if (ret == 0 && token && *token && !cfg->omit_session_token)
		ret = add_header(list, &count, "x-amz-security-token", token);
	if (ret == 0 && cfg->sign_body)
		ret = add_header(list, &count, "x-amz-content-sha256", st->payload_hash);
	if (ret < 0)
		goto out;
	qsort(list, count, sizeof(*list), compare_headers);
	for (size_t i = 0; i < count; i++) {
		bool same = i > 0 && strcmp(list[i].name, list[i - 1].name) == 0;

		if (same) {
			strbuf_putc(out, ',');
		} else {
			if (i > 0)
				strbuf_putc(out, '\n');
			strbuf_printf(out, "%s:", list[i].name);
			strbuf_printf(&names, "%s%s", names.len ? ";" : "", list[i].name);
		}
		strbuf_puts(out, list[i].value);
	}
	strbuf_putc(out, '\n');
	st->signed_headers = strbuf_take(&names);
	if (!st->signed_headers)
		ret = -ENOMEM;
out:
	strbuf_release(&names);
	free_headers(list, count);
	return ret;
}

struct encoded_param {
	char *name;
	char *value;
};

static int compare_params(const void *a, const void *b)
{
	const struct encoded_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Parameters sorted by encoded name, then encoded value. */
static int canonical_query(const struct sigv4_request *req, struct strbuf *out)
{
	struct encoded_param *list = calloc(req->query_count + 1, sizeof(*list));
	int ret = 0;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < req->query_count; i++) {
		const struct sigv4_param *p = &req->query[i];

		list[i].name = sigv4_uri_encode(p->name, strlen(p->name), false);
		list[i].value = sigv4_uri_encode(p->value, strlen(p->value), false);
		if (!list[i].name || !list[i].value)
			ret = -ENOMEM;
	}
	if (ret == 0) {
		qsort(list, req->query_count, sizeof(*list), compare_params);
		for (size_t i = 0; i < req->query_count; i++)
			strbuf_printf(out, "%s%s=%s", i ? "&" : "", list[i].name, list[i].value);
	}
	for (size_t i = 0; i < req->query_count; i++) {
		free(list[i].name);
		free(list[i].value);
	}
	free(list);
	return ret;
}

static int format_time(struct sigv4_state *st, int64_t time_s)
{
	time_t t = (time_t)time_s;
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	if (strftime(st->amz_date, sizeof(st->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -EINVAL;
	memcpy(st->date, st->amz_date, 8);
	st->date[8] = '\0';
	return 0;
}

int sigv4_build_canonical_request(struct sigv4_state *st, const struct sigv4_request *req,
				  const struct sigv4_config *cfg)
{
	struct strbuf b = {0};
	const char *path = req->path && *req->path ? req->path : "/";
	char *normalized = NULL;
	int ret;

	ret = format_time(st, cfg->time_s);
	if (ret < 0)
		return ret;
	sha256_hex(req->payload ? req->payload : "", req->payload_len, st->payload_hash);
	if (req->normalize_path) {
		normalized = sigv4_normalize_path(path);
		if (!normalized)
			return -ENOMEM;
		path = normalized;
	}
	strbuf_printf(&b, "%s\n", req->method);
	put_encoded(&b, path, strlen(path), true);
	strbuf_putc(&b, '\n');
	ret = canonical_query(req, &b);
	strbuf_putc(&b, '\n');
	if (ret == 0)
		ret = canonical_headers(st, req, cfg, &b);
	if (ret == 0) {
		strbuf_printf(&b, "\n%s\n%s", st->signed_headers, st->payload_hash);
		st->canonical_request = strbuf_take(&b);
		if (!st->canonical_request)
			ret = -ENOMEM;
	}
	strbuf_release(&b);
	free(normalized);
	return ret;
}

int sigv4_build_string_to_sign(struct sigv4_state *st, const struct sigv4_config *cfg)
{
	char hash[65];

	if (!st->canonical_request)
		return -EINVAL;
	if (asprintf(&st->scope, "%s/%s/%s/aws4_request", st->date, cfg->region, cfg->service) < 0) {
		st->scope = NULL;
		return -ENOMEM;
	}
	sha256_hex(st->canonical_request, strlen(st->canonical_request), hash);
	if (asprintf(&st->string_to_sign, SIGV4_ALGORITHM "\n%s\n%s\n%s", st->amz_date,
		     st->scope, hash) < 0) {
		st->string_to_sign = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int hmac_sha256(const unsigned char *key, size_t key_len, const char *data,
		       unsigned char out[32])
{
	unsigned int out_len = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, strlen(data), out,
		  &out_len) || out_len != 32)
		return -EIO;
	return 0;
}

int sigv4_derive_signing_key(struct sigv4_state *st, const struct sigv4_config *cfg)
{
	const char *secret = cfg->creds->secret_access_key;
	size_t secret_len = strlen(secret);
	unsigned char *k_secret = malloc(secret_len + 4);
	unsigned char key[32];
	int ret;

	if (!k_secret)
		return -ENOMEM;
	memcpy(k_secret, "AWS4", 4);
	memcpy(k_secret + 4, secret, secret_len);
	ret = hmac_sha256(k_secret, secret_len + 4, st->date, key);
	if (ret == 0)
		ret = hmac_sha256(key, sizeof(key), cfg->region, key);
	if (ret == 0)
		ret = hmac_sha256(key, sizeof(key), cfg->service, key);
	if (ret == 0)
		ret = hmac_sha256(key, sizeof(key), "aws4_request", st->signing_key);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(k_secret, secret_len + 4);
	free(k_secret);
	return ret;
}

int sigv4_compute_signature(struct sigv4_state *st)
{
	unsigned char mac[32];
	int ret;

	if (!st->string_to_sign)
		return -EINVAL;
	ret = hmac_sha256(st->signing_key, sizeof(st->signing_key), st->string_to_sign, mac);
	if (ret == 0)
		hex_encode(mac, sizeof(mac), st->signature);
	return ret;
}

int sigv4_build_authorization(struct sigv4_state *st, const struct sigv4_config *cfg)
{
	if (!st->scope || !st->signed_headers || !st->signature[0])
		return -EINVAL;
	if (asprintf(&st->authorization,
		     SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		     cfg->creds->access_key_id, st->scope, st->signed_headers,
		     st->signature) < 0) {
		st->authorization = NULL;
		return -ENOMEM;
	}
	return 0;
}

int sigv4_sign(struct sigv4_state *st, const struct sigv4_request *req,
	       const struct sigv4_config *cfg, struct kb_error *err)
{
	int ret;

	memset(st, 0, sizeof(*st));
	if (!cfg->creds || !cfg->creds->access_key_id || !cfg->creds->secret_access_key ||
	    !cfg->region || !cfg->service)
		return kb_errorf(err, EINVAL, "signing: credentials, region or service missing");
	ret = sigv4_build_canonical_request(st, req, cfg);
	if (ret == 0)
		ret = sigv4_build_string_to_sign(st, cfg);
	if (ret == 0)
		ret = sigv4_derive_signing_key(st, cfg);
	if (ret == 0)
		ret = sigv4_compute_signature(st);
	if (ret == 0)
		ret = sigv4_build_authorization(st, cfg);
	if (ret < 0)
		return kb_errorf(err, -ret, "signing %s %s: %s", req->method, req->path,
				 strerror(-ret));
	return 0;
}

void sigv4_state_clear(struct sigv4_state *st)
{
	if (!st)
		return;
	free(st->canonical_request);
	free(st->signed_headers);
	free(st->scope);
	free(st->string_to_sign);
	free(st->authorization);
	OPENSSL_cleanse(st, sizeof(*st));
}
