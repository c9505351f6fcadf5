/* log.h: leveled, timestamped lines on stderr, with secrets redacted.
 *
 * Under systemd (JOURNAL_STREAM set) each line starts with its sd-daemon priority ("<3>") so
 * journald keeps the level and adds its own timestamp. Every string registered with
 * log_add_secret() is replaced before a line is written, and known secret-bearing patterns
 * (Authorization signatures, security tokens, "SecretAccessKey"/"Token" JSON members,
 * ZooKeeper digest credentials) are masked even when nobody registered the value. */
#ifndef KB_LOG_H
#define KB_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#define LOG_REDACTED "[REDACTED]"

void log_init(enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Registers a secret (copied); strings shorter than 4 bytes are ignored: masking them would
 * garble ordinary text without protecting anything. Thread-safe. */
void log_add_secret(const char *secret);
void log_clear_secrets(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Returns a newly allocated copy of text with the redaction rules applied (NULL when out of
 * memory). For the status file and the console, which are read by others too. */
char *log_redact_new(const char *text);

/* Where log_console() writes (config key `console`); NULL or "" turns it off. */
void log_set_console(const char *path);

/* Writes one line to the console device (default /dev/console) so `aws ec2 get-console-output` shows a failure without SSH. Redacted. Best
 * effort: a console that cannot be opened is logged at debug and ignored. */
void log_console(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
