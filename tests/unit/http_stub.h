/* http_stub.h: a scripted HTTP/1.1 responder on 127.0.0.1 for unit tests of the AWS clients.
 *
 * It answers each request with the next reply of a script and keeps every request body, so a
 * test can assert the exact form body aws_query sent and feed back pages, errors and
 * DryRunOperation as EC2 would. It knows nothing of SigV4 (tests/fakeaws checks signatures);
 * the environment points the AWS SDK variables at it (stub_env). One connection at a time,
 * kept alive as libcurl keeps it. Included by the tests that use it, after <cmocka.h>:
 * static functions only. */
#ifndef KB_TEST_HTTP_STUB_H
#define KB_TEST_HTTP_STUB_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kb/aws.h"
#include "kb/deadline.h"

#define STUB_MAX_REQUESTS 256

struct stub_reply {
	int status;
	const char *body;
};

struct stub {
	int listen_fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	const struct stub_reply *replies;
	size_t reply_count;
	size_t served;
	char *bodies[STUB_MAX_REQUESTS]; /* request bodies, in order */
};

static bool stub_stopping(struct stub *s)
{
	bool stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* Waits until fd is readable; false when the stub is stopping. */
static bool stub_wait(struct stub *s, int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (!stub_stopping(s)) {
		int n = poll(&pfd, 1, 20);

		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
	return false;
}

/* Reads one request (head and Content-Length body) from fd into a malloc'd buffer; *body
 * points into it. NULL when the client closed the connection. */
static char *stub_read_request(struct stub *s, int fd, char **body)
{
	size_t len = 0, cap = 8192, need = 0;
	char *buf = malloc(cap + 1), *head_end = NULL;

	while (buf) {
		ssize_t n;

		if (head_end && len >= need) {
			buf[len] = '\0';
			*body = head_end + 4;
			(*body)[need - (size_t)(head_end + 4 - buf)] = '\0';
			return buf;
		}
		if (len == cap) {
			char *grown = realloc(buf, 2 * cap + 1);

			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
		if (!stub_wait(s, fd))
			break;
		n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (!head_end && (head_end = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");

			need = (size_t)(head_end + 4 - buf);
			if (cl && cl < head_end)
				need += strtoul(cl + 17, NULL, 10);
		}
	}
	free(buf);
	return NULL;
}

static void stub_reply_to(struct stub *s, int fd, const char *body)
{
	const struct stub_reply none = {500, "<stub>script exhausted</stub>"};
	const struct stub_reply *r;
	char head[256];
	int n;

	pthread_mutex_lock(&s->lock);
	r = s->served < s->reply_count ? &s->replies[s->served] : &none;
	if (s->served < STUB_MAX_REQUESTS)
		s->bodies[s->served] = strdup(body);
	s->served++;
	pthread_mutex_unlock(&s->lock);
	/* No Date header: aws.c then never takes the stub's clock for AWS's. */
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d Stub\r\nContent-Type: text/xml;charset=UTF-8\r\n"
		     "Content-Length: %zu\r\n\r\n", r->status, strlen(r->body));
	/* MSG_NOSIGNAL: a client that hung up must not kill the test with SIGPIPE. */
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n ||
	    send(fd, r->body, strlen(r->body), MSG_NOSIGNAL) != (ssize_t)strlen(r->body))
		fprintf(stderr, "stub: write: %s\n", strerror(errno));
}

static void *stub_main(void *arg)
{
	struct stub *s = arg;

	while (stub_wait(s, s->listen_fd)) {
		int fd = accept(s->listen_fd, NULL, NULL);
		char *req, *body = NULL;

		if (fd < 0)
			continue;
		while ((req = stub_read_request(s, fd, &body))) {
			stub_reply_to(s, fd, body);
			free(req);
		}
		close(fd);
	}
	return NULL;
}

/* Listens on an ephemeral port of 127.0.0.1 and serves replies in order. */
static int stub_start(struct stub *s, const struct stub_reply *replies, size_t count)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);

	memset(s, 0, sizeof(*s));
	s->replies = replies;
	s->reply_count = count;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(s->listen_fd, 8) < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) < 0)
		return -errno;
	s->port = ntohs(addr.sin_port);
	return -pthread_create(&s->thread, NULL, stub_main, s);
}

/* Requests answered so far. */
static size_t stub_served(struct stub *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->served;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Body of request i (0-based), "" when there was none. Valid until stub_stop. */
static const char *stub_body(struct stub *s, size_t i)
{
	const char *b;

	pthread_mutex_lock(&s->lock);
	b = i < s->served && i < STUB_MAX_REQUESTS && s->bodies[i] ? s->bodies[i] : "";
	pthread_mutex_unlock(&s->lock);
	return b;
}

static void stub_stop(struct stub *s)
{
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	for (size_t i = 0; i < STUB_MAX_REQUESTS; i++)
		free(s->bodies[i]);
	pthread_mutex_destroy(&s->lock);
}

/* Points every AWS SDK variable aws.c reads at the stub, with fixed test credentials and a
 * single attempt per call (a scripted reply is never retried behind the test's back). */
static void stub_env(const struct stub *s)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	setenv("AWS_ENDPOINT_URL_EC2", url, 1);
	setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", url, 1);
	setenv("AWS_ENDPOINT_URL_AUTO_SCALING", url, 1);
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

/* Starts the stub with a script and returns an aws_ctx whose every endpoint is the stub. */
static struct aws_ctx *stub_ctx(struct stub *s, const struct stub_reply *replies, size_t n)
{
	struct aws_ctx_options opts = {.region = "us-east-1"};
	struct kb_error err = {{0}};
	struct aws_ctx *ctx;

	assert_int_equal(stub_start(s, replies, n), 0);
	stub_env(s);
	ctx = aws_ctx_new(&opts, deadline_after_ms(10000), &err);
	if (!ctx)
		fail_msg("aws_ctx_new: %s", err.msg);
	return ctx;
}

#endif
