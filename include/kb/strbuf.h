/* strbuf.h: a growable NUL-terminated string for building requests and canonical forms.
 *
 * An allocation failure is sticky: every later append is a no-op and strbuf_take() returns
 * NULL, so a builder checks once at the end instead of after every append. */
#ifndef KB_STRBUF_H
#define KB_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

void strbuf_put(struct strbuf *b, const char *s, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_putc(struct strbuf *b, char c);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string ("" when nothing was added), owned by the caller; NULL when an allocation failed.
 * The buffer is empty again afterwards. */
char *strbuf_take(struct strbuf *b);
void strbuf_release(struct strbuf *b);

#endif
