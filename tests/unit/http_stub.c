/* http_stub.c: the scripted HTTP/1.1 server of http_stub.h. The server thread never asserts
 * (cmocka's failures jump within the test's thread only): what it cannot do it says on stderr,
 * and the client under test sees the failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_stub.h"
#include "kb/deadline.h"

struct stub_request {
	char *text;
	size_t head_len; /* where the body starts */
};

struct stub {
	int listen_fd;
	char url[32];
	pthread_t thread;
	atomic_bool stop;
	atomic_int connections;
	pthread_mutex_t lock; /* guards what follows */
	const struct stub_reply *script;
	size_t script_len;
	struct stub_request *requests;
	size_t request_count, request_cap;
};

/* Waits until fd is readable (or hung up); false when the stub is stopping. */
static bool wait_readable(struct stub *s, int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (!atomic_load(&s->stop)) {
		int n = poll(&pfd, 1, 20);

		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
	return false;
}

static size_t content_length(const char *head, const char *head_end)
{
	const char *cl = strcasestr(head, "\r\nContent-Length:");

	return cl && cl < head_end ? strtoul(cl + 17, NULL, 10) : 0;
}

/* One request, head and Content-Length body, NUL-terminated; *head_len is where the body
 * starts. NULL when the client hung up or the stub is stopping. */
static char *read_request(struct stub *s, int conn, size_t *head_len)
{
	size_t len = 0, cap = 0, need = SIZE_MAX;
	char *buf = NULL;

	for (;;) {
		const char *end;
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *grown = realloc(buf, cap ? 2 * cap : 8192);

			if (!grown)
				break;
			buf = grown;
			cap = cap ? 2 * cap : 8192;
		}
		if (!wait_readable(s, conn))
			break;
		n = read(conn, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (need == SIZE_MAX && (end = strstr(buf, "\r\n\r\n"))) {
			*head_len = (size_t)(end + 4 - buf);
			need = *head_len + content_length(buf, end);
		}
		if (len >= need) {
			buf[need] = '\0';
			return buf;
		}
	}
	free(buf);
	return NULL;
}

/* Keeps the request (taking text) and returns the reply the script has for it. */
static const struct stub_reply *record(struct stub *s, char *text, size_t head_len)
{
	static const struct stub_reply empty = {500, "<stub>empty script</stub>", NULL};
	const struct stub_reply *r = &empty;

	pthread_mutex_lock(&s->lock);
	if (s->request_count == s->request_cap) {
		size_t cap = s->request_cap ? 2 * s->request_cap : 16;
		struct stub_request *grown = realloc(s->requests, cap * sizeof(*grown));

		if (!grown) {
			fprintf(stderr, "stub: out of memory recording request %zu\n",
				s->request_count);
			abort();
		}
		s->requests = grown;
		s->request_cap = cap;
	}
	s->requests[s->request_count++] = (struct stub_request){text, head_len};
	if (s->script_len)
		r = &s->script[s->request_count <= s->script_len ? s->request_count - 1
								  : s->script_len - 1];
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int answer(int conn, const struct stub_reply *r)
{
	const char *body = r->body ? r->body : "";
	char *text = NULL;
	int n = asprintf(&text, "HTTP/1.1 %d Stub\r\nContent-Length: %zu\r\n%s\r\n%s", r->status,
			 strlen(body), r->headers ? r->headers : "", body);
	size_t sent = 0;

	if (n < 0)
		return -ENOMEM;
	while (sent < (size_t)n) {
		/* MSG_NOSIGNAL: a client that hung up must not kill the test with SIGPIPE. */
		ssize_t w = send(conn, text + sent, (size_t)n - sent, MSG_NOSIGNAL);

		if (w < 0) {
			fprintf(stderr, "stub: send: %s\n", strerror(errno));
			break;
		}
		sent += (size_t)w;
	}
	free(text);
	return sent == (size_t)n ? 0 : -EIO;
}

/* STUB_SILENT: reads and drops whatever comes until the client gives up. */
static void ignore_until_hang_up(struct stub *s, int conn)
{
	char sink[512];

	while (wait_readable(s, conn) && read(conn, sink, sizeof(sink)) > 0)
		;
}

static void serve_connection(struct stub *s, int conn)
{
	size_t head_len = 0;
	char *text;

	while ((text = read_request(s, conn, &head_len))) {
		const struct stub_reply *r = record(s, text, head_len);

		if (r->status == STUB_SILENT)
			ignore_until_hang_up(s, conn);
		if (r->status == STUB_SILENT || r->status == STUB_HANG_UP || answer(conn, r) < 0)
			break;
	}
}

static void *serve(void *arg)
{
	struct stub *s = arg;

	while (wait_readable(s, s->listen_fd)) {
		int conn = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (conn < 0)
			continue;
		atomic_fetch_add(&s->connections, 1);
		serve_connection(s, conn);
		close(conn);
	}
	return NULL;
}

struct stub *stub_start(const struct stub_reply *script, size_t count)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	struct stub *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->script = script;
	s->script_len = count;
	atomic_init(&s->stop, false);
	atomic_init(&s->connections, 0);
	assert_int_equal(pthread_mutex_init(&s->lock, NULL), 0);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(s->listen_fd, 8) < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) < 0)
		fail_msg("stub: listen on 127.0.0.1: %s", strerror(errno));
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", ntohs(addr.sin_port));
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
	return s;
}

const char *stub_url(const struct stub *s)
{
	return s->url;
}

size_t stub_served(struct stub *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->request_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static const char *request_from(struct stub *s, size_t i, bool body_only)
{
	const char *text = "";

	pthread_mutex_lock(&s->lock);
	if (i < s->request_count)
		text = s->requests[i].text + (body_only ? s->requests[i].head_len : 0);
	pthread_mutex_unlock(&s->lock);
	return text;
}

const char *stub_request(struct stub *s, size_t i)
{
	return request_from(s, i, false);
}

const char *stub_body(struct stub *s, size_t i)
{
	return request_from(s, i, true);
}

int stub_connections(struct stub *s)
{
	return atomic_load(&s->connections);
}

void stub_stop(struct stub *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	for (size_t i = 0; i < s->request_count; i++)
		free(s->requests[i].text);
	free(s->requests);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void stub_env(const struct stub *s)
{
	setenv("AWS_ENDPOINT_URL_EC2", s->url, 1);
	setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", s->url, 1);
	setenv("AWS_ENDPOINT_URL_AUTO_SCALING", s->url, 1);
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	setenv("AWS_REGION", "us-east-1", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SECURITY_TOKEN");
	setenv("AWS_MAX_ATTEMPTS", "1", 1);
	unsetenv("AWS_CA_BUNDLE");
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
}

struct aws_ctx *stub_ctx(struct stub **s, const struct stub_reply *script, size_t count)
{
	struct aws_ctx_options opts = {.region = "us-east-1"};
	struct kb_error err = {{0}};
	struct aws_ctx *ctx;

	*s = stub_start(script, count);
	stub_env(*s);
	ctx = aws_ctx_new(&opts, deadline_after_ms(10000), &err);
	if (!ctx)
		fail_msg("aws_ctx_new: %s", err.msg);
	return ctx;
}
