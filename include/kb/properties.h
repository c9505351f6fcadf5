/* properties.h: Kafka's server.properties: read the operator's file, set the keys
 * kafka-bootstrap manages, keep every other line, comment and the order, write atomically.
 *
 * The format is java.util.Properties' (Properties.load(InputStream), which Kafka uses):
 * ISO-8859-1 text, logical lines continued by an odd number of trailing backslashes, comments
 * starting with # or !, key and value separated by '=', ':' or whitespace, and the LAST
 * occurrence of a key wins: setting a key therefore rewrites its first occurrence and removes
 * the later ones, or Java would read the operator's stale value. */
#ifndef KB_PROPERTIES_H
#define KB_PROPERTIES_H

#include <stddef.h>

#include "kb/error.h"

struct properties;

/* NULL with err filled when out of memory or when text holds a NUL byte (not a properties
 * file anyone meant to write; rewriting it would lose what follows the NUL). */
struct properties *properties_parse_new(const char *text, size_t len, struct kb_error *err);
void properties_free(struct properties *props);

/* The value Java would read for key (the last occurrence), unescaped; NULL when absent.
 * Caller frees. */
char *properties_get_new(const struct properties *props, const char *key);

/* Sets key to value (UTF-8; escaped as Java requires). Returns 1 when the file's text changed,
 * 0 when it already held exactly that, negative on error (invalid UTF-8, out of memory). */
int properties_set(struct properties *props, const char *key, const char *value,
		   struct kb_error *err);

/* The file's text (NUL-terminated, *len without it). Caller frees. */
char *properties_format_new(const struct properties *props, size_t *len);

/* A value escaped for a properties file: backslash, leading blanks, control characters and
 * everything outside printable ASCII as \uXXXX. NULL on invalid UTF-8. Caller frees. */
char *properties_escape_value_new(const char *utf8);

/* Replaces {ip}, {broker_id}, {az}, {az_id} in template. Caller frees; NULL on error. */
struct properties_vars {
	const char *ip;
	int broker_id;
	const char *az;
	const char *az_id;
};
char *properties_expand_new(const char *template_text, const struct properties_vars *vars,
			    struct kb_error *err);

#endif
