/* http.h: one libcurl transport per endpoint, shared by IMDS and the AWS Query API clients.
 *
 * A client is bound to one base URL and keeps one easy handle, so its connection (and TLS
 * session) is reused for every request to that endpoint: one handshake per endpoint per run.
 * TLS peer and host verification are always on; an http:// URL is refused unless the caller
 * says it was configured explicitly. The trust store (ca_bundle, else libcurl's built-in
 * bundle, plus its built-in CA directory) is read once per process, not once per endpoint,
 * and a certificate of it is decoded only when a verification looks for it (trust.h). Every attempt's connect and total timeouts are clamped
 * to the caller's deadline. Sockets are close-on-exec (we exec mkfs and cfn-signal). There
 * are no retries here: aws.c and imds.c own the retry policy. */
#ifndef KB_HTTP_H
#define KB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

struct http_options {
	bool allow_http;         /* accept an http:// base URL (explicitly configured) */
	bool no_proxy;           /* never go through a proxy (IMDS is link-local) */
	const char *ca_bundle;   /* NULL: the system trust store */
	int connect_timeout_ms;  /* TCP and TLS handshake of one attempt */
	int timeout_ms;          /* one whole attempt */
};

struct http_client;

/* base_url: "https://ec2.us-east-1.amazonaws.com", "http://127.0.0.1:8080/prefix". */
struct http_client *http_client_new(const char *base_url, const struct http_options *opts,
				    struct kb_error *err);
void http_client_free(struct http_client *client);

/* Borrowed: the Host header value requests carry ("host", "host:port" when the port is not
 * the scheme's default), which is what SigV4 signs. */
const char *http_client_host(const struct http_client *client);
/* Borrowed: the path part of the base URL, "" when none (SigV4's canonical URI is this
 * plus the request path). */
const char *http_client_base_path(const struct http_client *client);
/* Borrowed: the base URL as given. */
const char *http_client_url(const struct http_client *client);
/* Connections opened so far (libcurl's CURLINFO_NUM_CONNECTS, summed): 1 after any number
 * of requests while the endpoint kept the connection open. */
long http_client_connects(const struct http_client *client);

struct http_header {
	const char *name;
	const char *value;
};

struct http_request {
	const char *method; /* "GET", "PUT", "POST" */
	const char *path;   /* appended to the base URL, starts with '/' */
	const struct http_header *headers;
	size_t header_count;
	const char *body; /* may be NULL when body_len is 0 */
	size_t body_len;
};

struct http_response {
	long status;
	char *body; /* NUL-terminated, not counted in body_len */
	size_t body_len;
	char *date;       /* the Date header, NULL when absent */
	char *request_id; /* x-amzn-RequestId or x-amz-request-id, NULL when absent */
	int64_t duration_ms;
};

/* Sends one request. Returns 0 when the server answered, whatever the HTTP status, and a
 * negative errno when it did not, with libcurl's most specific message in err:
 *   -ETIMEDOUT     connect or transfer timeout, or the deadline had passed
 *   -ECONNREFUSED  connection refused or unreachable
 *   -EHOSTUNREACH  name resolution failed
 *   -ECONNRESET    connection dropped, nothing or half an answer, TLS handshake broken
 *   -EKEYREJECTED  TLS certificate verification failed (never transient)
 *   -EMSGSIZE      answer too large
 *   -EIO           anything else
 * resp is cleared first and always safe to http_response_clear(). */
int http_send(struct http_client *client, const struct http_request *req, int64_t deadline,
	      struct http_response *resp, struct kb_error *err);
void http_response_clear(struct http_response *resp);

/* The failures of http_send worth another attempt (timeouts and connection errors). */
bool http_error_is_transient(int ret);

/* Full-jitter exponential backoff, the AWS SDKs' formula: rand01 x min(base x 2^(retry-1),
 * cap), retry counted from 1. rand01 is in [0, 1). */
int64_t http_backoff_ms(int retry, int64_t base_ms, int64_t cap_ms, double rand01);
/* A uniform double in [0, 1) from OpenSSL's generator (jitter must differ across instances
 * booting together, so no fixed seed). */
double http_random01(void);

#endif
