/* javaprops.c: Java .properties parsing as java.util.Properties.load(Reader) does it.
 *
 * Two passes per logical line: join the natural lines a trailing odd backslash continues
 * (dropping the leading whitespace of each continuation), then split key from value and undo
 * the escapes. Never writes a properties file: that is properties.c's atomic job. */
#include "kb/javaprops.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *data;
	size_t len, cap;
};

static int buf_put(struct buf *b, char c)
{
	if (b->len + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 128;
		char *grown = realloc(b->data, cap);

		if (!grown)
			return -ENOMEM;
		b->data = grown;
		b->cap = cap;
	}
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

static bool is_eol(char c)
{
	return c == '\n' || c == '\r';
}

/* Advances *pos past one natural line terminator (\n, \r or \r\n). */
static void skip_eol(const char *text, size_t len, size_t *pos)
{
	if (*pos < len && text[*pos] == '\r')
		(*pos)++;
	if (*pos < len && text[*pos] == '\n')
		(*pos)++;
}

/* Reads one logical line into line (raw: escapes kept, continuations joined). Returns 1 when
 * a line was read, 0 at the end of the text. Comment and blank lines come back empty. */
static int read_logical_line(const char *text, size_t len, size_t *pos, struct buf *line)
{
	bool continued = false;

	line->len = 0;
	if (line->data)
		line->data[0] = '\0';
	if (*pos >= len)
		return 0;
	for (;;) {
		size_t start, end, slashes = 0;

		while (*pos < len && is_blank(text[*pos]))
			(*pos)++;
		start = *pos;
		while (*pos < len && !is_eol(text[*pos]))
			(*pos)++;
		end = *pos;
		skip_eol(text, len, pos);
		if (!continued && start < end && (text[start] == '#' || text[start] == '!'))
			return 1;
		while (end - slashes > start && text[end - slashes - 1] == '\\')
			slashes++;
		continued = slashes % 2 == 1;
		if (continued)
			end--;
		for (size_t i = start; i < end; i++) {
			if (buf_put(line, text[i]) < 0)
				return -ENOMEM;
		}
		if (!continued || *pos >= len)
			return 1;
	}
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends the UTF-8 form of one UTF-16 code unit (a lone surrogate becomes U+FFFD). */
static int put_utf8(struct buf *out, unsigned cp)
{
	int r = 0;

	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd;
	if (cp < 0x80)
		return buf_put(out, (char)cp);
	if (cp < 0x800) {
		r |= buf_put(out, (char)(0xc0 | (cp >> 6)));
	} else {
		r |= buf_put(out, (char)(0xe0 | (cp >> 12)));
		r |= buf_put(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
	}
	r |= buf_put(out, (char)(0x80 | (cp & 0x3f)));
	return r < 0 ? -ENOMEM : 0;
}

/* Undoes one escape starting at s[*i] == '\\'; advances *i past it. */
static int unescape_one(const char *s, size_t n, size_t *i, struct buf *out)
{
	char c;

	(*i)++;
	if (*i >= n)
		return 0; /* a lone final backslash is dropped, as Java does */
	c = s[(*i)++];
	switch (c) {
	case 't':
		return buf_put(out, '\t');
	case 'n':
		return buf_put(out, '\n');
	case 'r':
		return buf_put(out, '\r');
	case 'f':
		return buf_put(out, '\f');
	case 'u': {
		unsigned cp = 0;

		for (int k = 0; k < 4; k++, (*i)++) {
			int v = *i < n ? hex_value(s[*i]) : -1;

			if (v < 0)
				return -EINVAL;
			cp = cp << 4 | (unsigned)v;
		}
		return put_utf8(out, cp);
	}
	default:
		return buf_put(out, c);
	}
}

static int split_entry(const char *s, size_t n, struct buf *key, struct buf *value)
{
	size_t i = 0;
	int r = 0;

	key->len = value->len = 0;
	r = buf_put(key, '\0') | buf_put(value, '\0');
	if (r < 0)
		return -ENOMEM;
	key->len = value->len = 0;
	while (i < n && s[i] != '=' && s[i] != ':' && !is_blank(s[i])) {
		r = s[i] == '\\' ? unescape_one(s, n, &i, key) : buf_put(key, s[i++]);
		if (r < 0)
			return r;
	}
	while (i < n && is_blank(s[i]))
		i++;
	if (i < n && (s[i] == '=' || s[i] == ':'))
		i++;
	while (i < n && is_blank(s[i]))
		i++;
	while (i < n) {
		r = s[i] == '\\' ? unescape_one(s, n, &i, value) : buf_put(value, s[i++]);
		if (r < 0)
			return r;
	}
	return 0;
}

int javaprops_parse(const char *text, size_t len, javaprops_fn fn, void *ctx)
{
	struct buf line = {0}, key = {0}, value = {0};
	size_t pos = 0;
	int ret;

	while ((ret = read_logical_line(text, len, &pos, &line)) > 0) {
		if (line.len == 0)
			continue;
		ret = split_entry(line.data, line.len, &key, &value);
		if (ret < 0)
			break;
		ret = fn(key.data, value.data, ctx);
		if (ret < 0)
			break;
	}
	free(line.data);
	free(key.data);
	free(value.data);
	return ret;
}

struct get_ctx {
	const char *key;
	char *value;
};

static int get_cb(const char *key, const char *value, void *ctx)
{
	struct get_ctx *g = ctx;
	char *copy;

	if (strcmp(key, g->key) != 0)
		return 0;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(g->value);
	g->value = copy;
	return 0;
}

int javaprops_get(const char *text, size_t len, const char *key, char **value)
{
	struct get_ctx g = {.key = key, .value = NULL};
	int ret = javaprops_parse(text, len, get_cb, &g);

	*value = NULL;
	if (ret < 0) {
		free(g.value);
		return ret;
	}
	if (!g.value)
		return -ENOENT;
	*value = g.value;
	return 0;
}
