/* http.c: the one libcurl transport (see http.h). Never turns TLS verification off, never
 * follows a redirect, never retries. */
#include "kb/http.h"

#include <curl/curl.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/strbuf.h"
#include "kb/trust.h"
#include "kb/version.h"

/* Far above any answer we ask for (a DescribeNetworkInterfaces page is tens of kB), low
 * enough that a broken endpoint cannot exhaust a broker's memory at boot. */
#define HTTP_MAX_BODY (32u << 20)

struct http_client {
	CURL *easy;
	char *url;       /* as given */
	char *origin;    /* scheme://host[:port], without the base path */
	char *host;      /* Host header value */
	char *base_path; /* "" or "/prefix" */
	long connects;
	bool swept; /* stray sockets made close-on-exec after the first transfer */
	struct trust_bundle *trust; /* NULL: libcurl loads the trust store itself */
	struct http_options opts;
	char errbuf[CURL_ERROR_SIZE];
};

static curl_socket_t open_cloexec_socket(void *clientp, curlsocktype purpose,
					 struct curl_sockaddr *address)
{
	(void)clientp;
	(void)purpose;
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* libcurl 7.88 creates the wakeup socketpair of an easy handle's internal multi handle, on
 * its first transfer, without SOCK_CLOEXEC, and has no hook for it (later releases fixed
 * this). No socket of ours may reach mkfs or cfn-signal, so once per handle every socket
 * of the process still inheritable is made close-on-exec. Without /proc nothing is done:
 * the connection sockets themselves come from open_cloexec_socket. */
static void cloexec_stray_sockets(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		int fd = atoi(e->d_name);
		struct stat st;
		int flags;

		if (e->d_name[0] == '.' || fd == dirfd(dir) || fstat(fd, &st) < 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
			log_debug("http: cannot make socket %d close-on-exec: %s", fd,
				  strerror(errno));
	}
	closedir(dir);
}

static void client_release_parts(struct http_client *c)
{
	free(c->url);
	free(c->origin);
	free(c->host);
	free(c->base_path);
}

void http_client_free(struct http_client *client)
{
	if (!client)
		return;
	if (client->easy) {
		curl_easy_cleanup(client->easy);
		curl_global_cleanup();
	}
	/* After the handle: its TLS contexts' stores use the bundle until they are freed. */
	trust_bundle_free(client->trust);
	client_release_parts(client);
	free(client);
}

/* Splits the base URL with libcurl's own parser, so the Host we sign is the one it sends. */
static int parse_base_url(struct http_client *c, const char *url, struct kb_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int ret = 0;
	size_t n;

	if (!u)
		return kb_errorf(err, ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		ret = kb_errorf(err, EINVAL, "endpoint '%s' is not a URL", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
		ret = kb_errorf(err, EINVAL, "endpoint '%s': scheme must be https", url);
		goto out;
	}
	/* Host carries the port only when it is not the scheme's default (SigV4, botocore). */
	if (port && strcmp(port, strcmp(scheme, "https") == 0 ? "443" : "80") == 0) {
		curl_free(port);
		port = NULL;
	}
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		path[--n] = '\0';
	if (asprintf(&c->host, "%s%s%s", host, port ? ":" : "", port ? port : "") < 0)
		c->host = NULL;
	if (c->host && asprintf(&c->origin, "%s://%s", scheme, c->host) < 0)
		c->origin = NULL;
	c->base_path = strdup(path);
	c->url = strdup(url);
	if (!c->host || !c->origin || !c->base_path || !c->url)
		ret = kb_errorf(err, ENOMEM, "out of memory");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return ret;
}

/* libcurl 7.88 calls this for every new TLS connection, before it sets the store up
 * (CAPATH, verification flags): the store gets the bundle's lookup. */
static CURLcode ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *userptr)
{
	struct http_client *c = userptr;

	(void)easy;
	return trust_bundle_attach(c->trust, SSL_CTX_get_cert_store(ssl_ctx)) < 0
		       ? CURLE_OUT_OF_MEMORY
		       : CURLE_OK;
}

/* The trust store: the configured bundle, else the one libcurl was built with, read once per
 * process (trust.h) instead of once per connection. Whatever the bundle module refuses, or a
 * libcurl without the hook, gets libcurl's own loading, as before. */
static CURLcode setup_trust(struct http_client *c)
{
	struct kb_error why = {{0}};
	const char *path = c->opts.ca_bundle && *c->opts.ca_bundle ? c->opts.ca_bundle : NULL;
	char *builtin = NULL;
	CURLcode rc;

	if (!path && curl_easy_getinfo(c->easy, CURLINFO_CAINFO, &builtin) == CURLE_OK)
		path = builtin;
	if (!path)
		return CURLE_OK;
	if (trust_bundle_new(path, &c->trust, &why) == 0) {
		rc = curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_DATA, c);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
		if (rc == CURLE_OK)
			return curl_easy_setopt(c->easy, CURLOPT_CAINFO, NULL);
		(void)curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_FUNCTION, NULL);
		trust_bundle_free(c->trust);
		c->trust = NULL;
		log_debug("http: %s: libcurl has no TLS context hook; it loads %s itself", c->url,
			  path);
	} else {
		log_debug("http: %s; libcurl loads it itself", why.msg);
	}
	return path == builtin ? CURLE_OK : curl_easy_setopt(c->easy, CURLOPT_CAINFO, path);
}

static int setup_easy(struct http_client *c, struct kb_error *err)
{
	bool https = strncmp(c->origin, "https:", 6) == 0;
	CURLcode rc = CURLE_OK;

	/* Options that stay for every request on this handle. */
	rc |= curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	rc |= curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
	rc |= curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	rc |= curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	rc |= curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "kafka-bootstrap/" KB_VERSION);
	rc |= curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, open_cloexec_socket);
	if (https)
		rc |= setup_trust(c);
	if (c->opts.no_proxy)
		rc |= curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
	if (rc != CURLE_OK)
		return kb_errorf(err, EIO, "endpoint %s: libcurl refused an option", c->url);
	return 0;
}

struct http_client *http_client_new(const char *base_url, const struct http_options *opts,
				    struct kb_error *err)
{
	struct http_client *c = calloc(1, sizeof(*c));

	if (!c) {
		kb_errorf(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->opts = *opts;
	if (parse_base_url(c, base_url, err) < 0)
		goto fail;
	if (strncmp(c->origin, "http:", 5) == 0 && !opts->allow_http) {
		kb_errorf(err, EINVAL,
			  "endpoint %s: plain http is accepted only when configured explicitly",
			  base_url);
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		kb_errorf(err, EIO, "libcurl initialisation failed");
		goto fail;
	}
	c->easy = curl_easy_init();
	if (!c->easy) {
		curl_global_cleanup();
		kb_errorf(err, ENOMEM, "libcurl: cannot create a handle");
		goto fail;
	}
	if (setup_easy(c, err) < 0)
		goto fail;
	return c;
fail:
	http_client_free(c);
	return NULL;
}

const char *http_client_host(const struct http_client *client)
{
	return client->host;
}

const char *http_client_base_path(const struct http_client *client)
{
	return client->base_path;
}

const char *http_client_url(const struct http_client *client)
{
	return client->url;
}

long http_client_connects(const struct http_client *client)
{
	return client->connects;
}

void http_response_clear(struct http_response *resp)
{
	free(resp->body);
	free(resp->date);
	free(resp->request_id);
	memset(resp, 0, sizeof(*resp));
}

struct transfer {
	struct http_response *resp;
	struct strbuf body;
	bool too_large;
	bool out_of_memory;
};

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;

	if (t->body.len + n > HTTP_MAX_BODY) {
		t->too_large = true;
		return 0;
	}
	strbuf_put(&t->body, data, n);
	if (t->body.failed) {
		t->out_of_memory = true;
		return 0;
	}
	return n;
}

/* Copies the value of "Name: value\r\n" when the name matches. */
static int take_header(char **slot, const char *line, size_t len, const char *name)
{
	size_t name_len = strlen(name);
	const char *v;
	const char *end = line + len;
	char *copy;

	if (len <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len) != 0)
		return 0;
	v = line + name_len + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	copy = strndup(v, (size_t)(end - v));
	if (!copy)
		return -1;
	free(*slot);
	*slot = copy;
	return 1;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	struct http_response *r = t->resp;
	size_t n = size * nmemb;

	/* A new status line (after a 100 Continue) starts a new set of headers. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		free(r->date);
		free(r->request_id);
		r->date = NULL;
		r->request_id = NULL;
		return n;
	}
	if (take_header(&r->date, data, n, "Date") < 0 ||
	    take_header(&r->request_id, data, n, "x-amzn-RequestId") < 0 ||
	    take_header(&r->request_id, data, n, "x-amz-request-id") < 0) {
		t->out_of_memory = true;
		return 0;
	}
	return n;
}

static int map_curl_error(CURLcode rc, const struct transfer *t)
{
	if (t->too_large)
		return -EMSGSIZE;
	if (t->out_of_memory)
		return -ENOMEM;
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
		return -EKEYREJECTED;
	default:
		return -EIO;
	}
}

bool http_error_is_transient(int ret)
{
	return ret == -ETIMEDOUT || ret == -ECONNREFUSED || ret == -ECONNRESET ||
	       ret == -EHOSTUNREACH;
}

/* curl_slist_append returns NULL on failure and keeps the old list: free it then. */
static struct curl_slist *append_or_free(struct curl_slist *list, const char *line)
{
	struct curl_slist *grown = line ? curl_slist_append(list, line) : NULL;

	if (!grown)
		curl_slist_free_all(list);
	return grown;
}

static struct curl_slist *build_headers(const struct http_client *c,
					const struct http_request *req)
{
	struct curl_slist *list = NULL;
	char *line = NULL;

	/* Host exactly as signed; "Expect:" stops libcurl's 100-continue round trip, and an
	 * empty Content-Type stops it adding a form type to a PUT. */
	if (asprintf(&line, "Host: %s", c->host) < 0)
		return NULL;
	list = append_or_free(list, line);
	free(line);
	list = list ? append_or_free(list, "Expect:") : NULL;
	if (list && strcmp(req->method, "POST") != 0)
		list = append_or_free(list, "Content-Type:");
	for (size_t i = 0; list && i < req->header_count; i++) {
		if (asprintf(&line, "%s: %s", req->headers[i].name, req->headers[i].value) < 0)
			line = NULL;
		list = append_or_free(list, line);
		free(line);
	}
	return list;
}

static int64_t clamp_ms(int configured, int64_t remaining)
{
	int64_t ms = configured > 0 ? configured : remaining;

	if (ms > remaining)
		ms = remaining;
	return ms < 1 ? 1 : ms;
}

static CURLcode set_request(struct http_client *c, const struct http_request *req, char *url,
			    struct curl_slist *headers, int64_t remaining, struct transfer *t)
{
	CURL *e = c->easy;
	CURLcode rc = CURLE_OK;

	rc |= curl_easy_setopt(e, CURLOPT_URL, url);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       (long)clamp_ms(c->opts.connect_timeout_ms, remaining));
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			       (long)clamp_ms(c->opts.timeout_ms, remaining));
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	/* The handle is reused: reset the method first, then set this request's. */
	rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (strcmp(req->method, "GET") != 0) {
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		if (strcmp(req->method, "POST") != 0)
			rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return rc;
}

int http_send(struct http_client *client, const struct http_request *req, int64_t deadline,
	      struct http_response *resp, struct kb_error *err)
{
	struct transfer t = {.resp = resp};
	struct curl_slist *headers = NULL;
	int64_t remaining = deadline_remaining_ms(deadline);
	int64_t started = deadline_now_ms();
	char *url = NULL;
	long connects = 0;
	CURLcode rc;
	int ret = 0;

	memset(resp, 0, sizeof(*resp));
	if (asprintf(&url, "%s%s%s", client->origin, client->base_path, req->path) < 0)
		return kb_errorf(err, ENOMEM, "out of memory");
	if (remaining == 0) {
		ret = kb_errorf(err, ETIMEDOUT, "%s %s: deadline passed", req->method, url);
		goto out;
	}
	headers = build_headers(client, req);
	if (!headers) {
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	client->errbuf[0] = '\0';
	if (set_request(client, req, url, headers, remaining, &t) != CURLE_OK) {
		ret = kb_errorf(err, EIO, "%s %s: libcurl refused an option", req->method, url);
		goto out;
	}
	rc = curl_easy_perform(client->easy);
	resp->duration_ms = deadline_now_ms() - started;
	if (!client->swept) {
		cloexec_stray_sockets();
		client->swept = true;
	}
	if (curl_easy_getinfo(client->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
		client->connects += connects;
	if (rc != CURLE_OK) {
		ret = map_curl_error(rc, &t);
		kb_errorf(err, -ret, "%s %s: %s", req->method, url,
			  t.too_large	  ? "answer larger than 32 MiB"
			  : client->errbuf[0] ? client->errbuf
					      : curl_easy_strerror(rc));
		goto out;
	}
	resp->body_len = t.body.len;
	resp->body = strbuf_take(&t.body);
	if (curl_easy_getinfo(client->easy, CURLINFO_RESPONSE_CODE, &resp->status) != CURLE_OK)
		ret = kb_errorf(err, EIO, "%s %s: no HTTP status", req->method, url);
	else if (!resp->body)
		ret = kb_errorf(err, ENOMEM, "out of memory");
out:
	if (ret < 0) {
		int64_t duration = resp->duration_ms;

		http_response_clear(resp);
		resp->duration_ms = duration;
	}
	strbuf_release(&t.body);
	/* The handle keeps a pointer to the list: drop it before the list goes. Clearing an
	 * option cannot fail. */
	(void)curl_easy_setopt(client->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	free(url);
	return ret;
}

int64_t http_backoff_ms(int retry, int64_t base_ms, int64_t cap_ms, double rand01)
{
	int64_t ceiling = base_ms;

	for (int i = 1; i < retry && ceiling < cap_ms; i++)
		ceiling *= 2;
	if (ceiling > cap_ms)
		ceiling = cap_ms;
	return (int64_t)(rand01 * (double)ceiling);
}

double http_random01(void)
{
	uint64_t bits = 0;

	/* A failing generator leaves 0: the shortest wait, still bounded by the attempt count. */
	if (RAND_bytes((unsigned char *)&bits, sizeof(bits)) != 1)
		return 0.0;
	return (double)(bits >> 11) / 9007199254740992.0; /* 53 bits / 2^53 */
}
