/* javaprops.h: a small reader for Java .properties files (java.util.Properties.load).
 *
 * Shared by whoever reads a file Kafka wrote: the volume stage reads meta.properties, and the
 * properties stage can read a base server.properties with it. Comments (# !), blank lines,
 * the three separators (= : whitespace), line continuations and the escapes \t \n \r \f \uXXXX
 * are handled as Java does, so a value read here is the value Kafka reads. */
#ifndef KB_JAVAPROPS_H
#define KB_JAVAPROPS_H

#include <stddef.h>

/* Called per entry in file order; key and value are unescaped and NUL-terminated, valid only
 * during the call. A negative return stops the walk and is returned by javaprops_parse. */
typedef int (*javaprops_fn)(const char *key, const char *value, void *ctx);

/* 0, -EINVAL for a malformed \u escape (Java refuses the file too), -ENOMEM. */
int javaprops_parse(const char *text, size_t len, javaprops_fn fn, void *ctx);

/* The value of key (the last one wins, as in Java), newly allocated; -ENOENT when absent. */
int javaprops_get(const char *text, size_t len, const char *key, char **value);

#endif
