/* http_stub.h: the scripted HTTP/1.1 server on 127.0.0.1 that the unit tests of http, imds,
 * aws_query and the AWS clients (ec2, cfn, autoscaling) talk to.
 *
 * Each request gets the next reply of a script; past its end the last reply repeats (a
 * throttling storm is one line), an empty script answers 500. Every request is kept whole
 * (head and body) and connections are counted, so a test asserts the exact bytes sent, the
 * retries and the connection reuse. One connection at a time, kept alive as libcurl keeps it.
 * It knows nothing of SigV4 (tests/fakeaws checks signatures) and sends no Date header unless
 * the script does: aws.c would take any Date for AWS's clock. */
#ifndef KB_TEST_HTTP_STUB_H
#define KB_TEST_HTTP_STUB_H

#include <stddef.h>

#include "kb/aws.h"

/* Statuses that are not answers: read the request, then send nothing until the client gives
 * up (it must time out), or hang up at once (a connection error, which callers retry). */
#define STUB_SILENT 0
#define STUB_HANG_UP (-1)

struct stub_reply {
	int status;
	const char *body;    /* NULL: empty */
	const char *headers; /* extra "Name: value\r\n" lines (Date, x-amzn-RequestId), or NULL */
};

struct stub;

/* Listens on an ephemeral port of 127.0.0.1 and serves script (borrowed until stub_stop); the
 * test fails when it cannot. */
struct stub *stub_start(const struct stub_reply *script, size_t count);
/* "http://127.0.0.1:<port>". Borrowed. */
const char *stub_url(const struct stub *s);
/* Requests received so far, answered or not. */
size_t stub_served(struct stub *s);
/* Request i (0-based) as received, head and body; "" when there was none. Valid until
 * stub_stop. */
const char *stub_request(struct stub *s, size_t i);
/* Its body only, "" when it had none. Valid until stub_stop. */
const char *stub_body(struct stub *s, size_t i);
/* Connections accepted so far. */
int stub_connections(struct stub *s);
void stub_stop(struct stub *s);

/* Points every AWS SDK variable aws.c reads at the stub, with fixed test credentials and a
 * single attempt per call (a scripted reply is never retried behind the test's back). */
void stub_env(const struct stub *s);
/* stub_start and stub_env, then an aws_ctx whose every endpoint is the stub. */
struct aws_ctx *stub_ctx(struct stub **s, const struct stub_reply *script, size_t count);

#endif
