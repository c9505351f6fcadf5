/* log.c: leveled lines on stderr, with every secret masked before it is written.
 *
 * Two rules: values registered with log_add_secret() (credentials once fetched, the ZooKeeper
 * password once configured) are replaced wherever they appear; and values that follow a known
 * secret-bearing name are masked even if never registered, because a secret can reach a log
 * line before anyone knew it (a raw IMDS answer, an environment dump, a request echoed in an
 * error). Each line is built in memory and written with one write(2), so lines from the
 * ZooKeeper client's thread never interleave with ours. */
#include "kb/log.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "kb/deadline.h"
#include "kb/strbuf.h"

static enum log_level current_level = LOG_LEVEL_INFO;
static bool journald;
static char *console_path;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t secret_count;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* sd-daemon(3) priorities */
static const int level_priority[] = {3, 4, 6, 7};

enum value_shape {
	VALUE_TO_EOL,      /* header value: to the end of the line */
	VALUE_TOKEN,       /* form or query value: to &, whitespace, quote, comma, semicolon */
	VALUE_JSON_STRING, /* "name": "value" */
};

struct redact_rule {
	const char *name;
	enum value_shape shape;
};

/* Matched case-insensitively. The JSON names are IMDS's credential document and our config. */
static const struct redact_rule rules[] = {
	{"x-amz-security-token:", VALUE_TO_EOL},
	{"x-amz-security-token=", VALUE_TOKEN},
	{"x-aws-ec2-metadata-token:", VALUE_TO_EOL},
	{"signature=", VALUE_TOKEN},
	{"aws_secret_access_key=", VALUE_TOKEN},
	{"aws_session_token=", VALUE_TOKEN},
	{"aws_security_token=", VALUE_TOKEN},
	{"kafka_bootstrap_zookeeper_auth=", VALUE_TOKEN},
	{"\"secretaccesskey\"", VALUE_JSON_STRING},
	{"\"token\"", VALUE_JSON_STRING},
	{"\"sessiontoken\"", VALUE_JSON_STRING},
	{"\"zookeeper_auth\"", VALUE_JSON_STRING},
	{"digest:", VALUE_TOKEN},
};

void log_init(enum log_level level)
{
	const char *stream = getenv("JOURNAL_STREAM");

	current_level = level;
	journald = stream && *stream;
	log_set_console("/dev/console");
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void log_add_secret(const char *secret)
{
	char **grown;
	char *copy;

	if (!secret || strlen(secret) < 4)
		return;
	pthread_mutex_lock(&secrets_lock);
	for (size_t i = 0; i < secret_count; i++) {
		if (strcmp(secrets[i], secret) == 0)
			goto out;
	}
	copy = strdup(secret);
	grown = copy ? realloc(secrets, (secret_count + 1) * sizeof(*secrets)) : NULL;
	if (!grown) {
		/* Cannot remember it: the pattern rules still cover the usual places. */
		free(copy);
		goto out;
	}
	secrets = grown;
	secrets[secret_count++] = copy;
out:
	pthread_mutex_unlock(&secrets_lock);
}

void log_clear_secrets(void)
{
	pthread_mutex_lock(&secrets_lock);
	for (size_t i = 0; i < secret_count; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	secret_count = 0;
	pthread_mutex_unlock(&secrets_lock);
}

static size_t value_end(const char *text, size_t start, enum value_shape shape)
{
	size_t i = start;

	switch (shape) {
	case VALUE_TO_EOL:
		while (text[i] && text[i] != '\n' && text[i] != '\r')
			i++;
		return i;
	case VALUE_TOKEN:
		while (text[i] && !isspace((unsigned char)text[i]) &&
		       !strchr("&\"',;", text[i]))
			i++;
		return i;
	case VALUE_JSON_STRING:
		while (text[i]) {
			if (text[i] == '\\' && text[i + 1])
				i += 2;
			else if (text[i] == '"')
				return i;
			else
				i++;
		}
		return i;
	}
	return i;
}

/* Position after the name where the masked value starts, for JSON: after the opening quote.
 * Returns 0 when the shape does not match here (a "token" member whose value is a number). */
static size_t value_start(const char *text, size_t after_name, enum value_shape shape)
{
	size_t i = after_name;

	if (shape == VALUE_TO_EOL) {
		while (text[i] == ' ' || text[i] == '\t')
			i++;
		return i;
	}
	if (shape == VALUE_TOKEN)
		return i;
	while (text[i] == ' ' || text[i] == '\t')
		i++;
	if (text[i] != ':')
		return 0;
	i++;
	while (text[i] == ' ' || text[i] == '\t')
		i++;
	return text[i] == '"' ? i + 1 : 0;
}

static bool match_secret(const char *text, size_t *len)
{
	bool found = false;

	/* Caller holds secrets_lock. The longest match wins, so a token containing another
	 * registered value is masked whole. */
	*len = 0;
	for (size_t s = 0; s < secret_count; s++) {
		size_t n = strlen(secrets[s]);

		if (n > *len && strncmp(text, secrets[s], n) == 0) {
			*len = n;
			found = true;
		}
	}
	return found;
}

char *log_redact_new(const char *text)
{
	struct strbuf out = {0};
	size_t i = 0;

	pthread_mutex_lock(&secrets_lock);
	while (text[i]) {
		size_t n;
		bool masked = false;

		if (match_secret(text + i, &n)) {
			strbuf_put(&out, LOG_REDACTED, strlen(LOG_REDACTED));
			i += n;
			continue;
		}
		for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
			size_t name_len = strlen(rules[r].name);
			size_t start, end;

			if (strncasecmp(text + i, rules[r].name, name_len) != 0)
				continue;
			start = value_start(text, i + name_len, rules[r].shape);
			if (start == 0)
				continue;
			end = value_end(text, start, rules[r].shape);
			strbuf_put(&out, text + i, start - i);
			if (end > start)
				strbuf_put(&out, LOG_REDACTED, strlen(LOG_REDACTED));
			i = end;
			masked = true;
			break;
		}
		if (!masked)
			strbuf_put(&out, text + i++, 1);
	}
	pthread_mutex_unlock(&secrets_lock);
	return strbuf_take(&out);
}

/* One prefix per line of the message, so journald and grep see every line with its level. */
static void write_line(enum log_level level, const char *message)
{
	struct strbuf line = {0};
	char prefix[64];
	const char *p = message;

	if (journald) {
		snprintf(prefix, sizeof(prefix), "<%d>", level_priority[level]);
	} else {
		char stamp[32];

		deadline_format_wall(deadline_wall_ms(), stamp, sizeof(stamp));
		snprintf(prefix, sizeof(prefix), "%s %-5s ", stamp, level_names[level]);
	}
	do {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		strbuf_put(&line, prefix, strlen(prefix));
		strbuf_put(&line, p, n);
		strbuf_put(&line, "\n", 1);
		p = nl ? nl + 1 : NULL;
	} while (p && *p);
	if (!line.failed && line.data) {
		ssize_t ignored = write(STDERR_FILENO, line.data, line.len);

		(void)ignored; /* nowhere left to report a failing stderr */
	}
	strbuf_release(&line);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char *raw = NULL;
	char *clean;

	if (level > current_level)
		return;
	if (vasprintf(&raw, fmt, ap) < 0)
		return;
	clean = log_redact_new(raw);
	free(raw);
	if (clean)
		write_line(level, clean);
	free(clean);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_set_console(const char *path)
{
	free(console_path);
	console_path = path && *path ? strdup(path) : NULL;
}

void log_console(const char *fmt, ...)
{
	char *raw = NULL;
	char *clean = NULL;
	char *line = NULL;
	va_list ap;
	int fd = -1;
	int n;

	if (!console_path)
		return;
	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	clean = log_redact_new(raw);
	if (!clean || asprintf(&line, "kafka-bootstrap: %s\n", clean) < 0) {
		line = NULL;
		goto out;
	}
	/* O_NONBLOCK: a console nobody drains must not hang the boot. */
	fd = open(console_path, O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK | O_APPEND);
	if (fd < 0) {
		log_debug("cannot open console %s to report the failure there", console_path);
		goto out;
	}
	if (write(fd, line, strlen(line)) < 0)
		log_debug("cannot write the failure to console %s", console_path);
out:
	if (fd >= 0)
		close(fd);
	free(line);
	free(clean);
	free(raw);
}
