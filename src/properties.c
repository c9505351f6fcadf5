/* properties.c: server.properties, the properties stage.
 *
 * Reads the operator's file (or a template), sets the keys kafka-bootstrap manages for the
 * configured mode, keeps every other byte as it was, and replaces the file atomically (temporary
 * file, fsync, rename, fsync of the directory) only when its content or its mode/group differ.
 * It never leaves a half-written server.properties, and never a stale duplicate of a managed
 * key after the one it set (Java's Properties keeps the last occurrence). */
#include "kb/properties.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb/ec2.h"
#include "kb/file.h"
#include "kb/log.h"
#include "kb/stages.h"
#include "kb/strbuf.h"

struct entry {
	char *raw;   /* the natural lines as in the file, terminators included */
	char *key;   /* unescaped, UTF-8; NULL for blank and comment lines */
	char *value; /* unescaped, UTF-8 */
};

struct properties {
	struct entry *entries;
	size_t count;
};

static void put_utf8(struct strbuf *b, uint32_t cp)
{
	char out[4];
	size_t n;

	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	strbuf_put(b, out, n);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Java's loadConvert: the file is ISO-8859-1 (each byte one character), \uXXXX escapes may
 * pair into a supplementary character; the result is UTF-8 so it compares with our values.
 * A malformed \u escape is kept literally (Java would refuse the file; that is the
 * operator's line, not ours to rewrite). */
static char *unescape_new(const char *s, size_t n)
{
	struct strbuf b = {0};
	uint32_t high = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp = c;

		if (c == '\\' && i + 1 < n) {
			c = (unsigned char)s[++i];
			cp = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
			if (c == 'u' && i + 4 < n && hex_digit(s[i + 1]) >= 0 &&
			    hex_digit(s[i + 2]) >= 0 && hex_digit(s[i + 3]) >= 0 &&
			    hex_digit(s[i + 4]) >= 0) {
				cp = (uint32_t)(hex_digit(s[i + 1]) << 12 | hex_digit(s[i + 2]) << 8 |
						hex_digit(s[i + 3]) << 4 | hex_digit(s[i + 4]));
				i += 4;
			}
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			high = cp;
			continue;
		}
		if (cp >= 0xdc00 && cp <= 0xdfff && high) {
			cp = 0x10000 + ((high - 0xd800) << 10) + (cp - 0xdc00);
		}
		high = 0;
		put_utf8(&b, cp);
	}
	return strbuf_take(&b);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

/* End of the natural line starting at pos, and where the next one starts. */
static size_t line_end(const char *text, size_t len, size_t pos, size_t *next)
{
	size_t end = pos;

	while (end < len && text[end] != '\n' && text[end] != '\r')
		end++;
	*next = end;
	if (*next < len && text[*next] == '\r')
		(*next)++;
	if (*next < len && text[*next] == '\n' && (*next == end || text[end] == '\r'))
		(*next)++;
	return end;
}

static bool continues(const char *text, size_t start, size_t end)
{
	size_t backslashes = 0;

	while (end > start && text[end - 1] == '\\') {
		backslashes++;
		end--;
	}
	return backslashes % 2 == 1;
}

/* Splits a logical line (continuations already joined) into key and value, as Java does. */
static int split_logical(const char *s, size_t n, struct entry *e)
{
	size_t key_end = 0, value_start;
	bool backslash = false, separator = false;

	while (key_end < n) {
		char c = s[key_end];

		if ((c == '=' || c == ':') && !backslash) {
			separator = true;
			break;
		}
		if (is_blank(c) && !backslash)
			break;
		backslash = c == '\\' ? !backslash : false;
		key_end++;
	}
	value_start = key_end + (separator ? 1 : 0);
	while (value_start < n && is_blank(s[value_start]))
		value_start++;
	if (!separator && value_start < n && (s[value_start] == '=' || s[value_start] == ':')) {
		value_start++;
		while (value_start < n && is_blank(s[value_start]))
			value_start++;
	}
	e->key = unescape_new(s, key_end);
	e->value = unescape_new(s + value_start, n - value_start);
	return e->key && e->value ? 0 : -ENOMEM;
}

static int add_entry(struct properties *props, const struct entry *e)
{
	struct entry *grown = realloc(props->entries, (props->count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	props->entries = grown;
	props->entries[props->count++] = *e;
	return 0;
}

/* One entry starting at *pos: a blank or comment line, or a logical line of one or more
 * natural lines. */
static int parse_entry(const char *text, size_t len, size_t *pos, struct entry *e)
{
	struct strbuf logical = {0};
	size_t start = *pos, next, end, first = *pos;
	int ret = 0;

	while (first < len && is_blank(text[first]))
		first++;
	end = line_end(text, len, start, &next);
	if (first == end || text[first] == '#' || text[first] == '!') {
		e->raw = strndup(text + start, next - start);
		*pos = next;
		return e->raw ? 0 : -ENOMEM;
	}
	for (;;) {
		bool more = continues(text, first, end);

		strbuf_put(&logical, text + first, end - first - (more ? 1 : 0));
		if (!more || next >= len)
			break;
		first = next;
		end = line_end(text, len, next, &next);
		while (first < end && is_blank(text[first]))
			first++;
	}
	e->raw = strndup(text + start, next - start);
	if (!e->raw || logical.failed)
		ret = -ENOMEM;
	else
		ret = split_logical(logical.data ? logical.data : "", logical.len, e);
	strbuf_release(&logical);
	*pos = next;
	return ret;
}

static void entry_clear(struct entry *e)
{
	free(e->raw);
	free(e->key);
	free(e->value);
}

void properties_free(struct properties *props)
{
	if (!props)
		return;
	for (size_t i = 0; i < props->count; i++)
		entry_clear(&props->entries[i]);
	free(props->entries);
	free(props);
}

struct properties *properties_parse_new(const char *text, size_t len, struct kb_error *err)
{
	const char *nul = memchr(text, '\0', len);
	struct properties *props;
	size_t pos = 0;

	if (nul) {
		kb_errorf(err, KB_ECONFIG, "a NUL byte at offset %zu: not a properties file",
			  (size_t)(nul - text));
		return NULL;
	}
	props = calloc(1, sizeof(*props));
	if (!props) {
		kb_errorf(err, ENOMEM, "out of memory");
		return NULL;
	}
	while (pos < len) {
		struct entry e = {0};

		if (parse_entry(text, len, &pos, &e) < 0 || add_entry(props, &e) < 0) {
			entry_clear(&e);
			properties_free(props);
			kb_errorf(err, ENOMEM, "out of memory");
			return NULL;
		}
	}
	return props;
}

char *properties_get_new(const struct properties *props, const char *key)
{
	for (size_t i = props->count; i-- > 0;) {
		if (props->entries[i].key && strcmp(props->entries[i].key, key) == 0)
			return strdup(props->entries[i].value);
	}
	return NULL;
}

/* Next code point of UTF-8 text; -1 on an invalid sequence (overlong, surrogate, truncated). */
static int32_t next_code_point(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t cp;
	int extra;

	if (s[0] < 0x80) {
		*p += 1;
		return s[0];
	}
	if ((s[0] & 0xe0) == 0xc0) {
		cp = s[0] & 0x1f;
		extra = 1;
	} else if ((s[0] & 0xf0) == 0xe0) {
		cp = s[0] & 0x0f;
		extra = 2;
	} else if ((s[0] & 0xf8) == 0xf0) {
		cp = s[0] & 0x07;
		extra = 3;
	} else {
		return -1;
	}
	for (int i = 1; i <= extra; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
	    (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*p += extra + 1;
	return (int32_t)cp;
}

/* unit is a UTF-16 code unit (<= 0xFFFF), so the escape is always 6 characters. */
static void put_u_escape(struct strbuf *b, uint32_t unit)
{
	char esc[16];

	snprintf(esc, sizeof(esc), "\\u%04X", unit & 0xffff);
	strbuf_put(b, esc, 6);
}

char *properties_escape_value_new(const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	struct strbuf b = {0};
	bool first = true;

	while (*p) {
		int32_t cp = next_code_point(&p);

		if (cp < 0) {
			strbuf_release(&b);
			return NULL;
		}
		if (cp == '\\')
			strbuf_put(&b, "\\\\", 2);
		else if (cp == ' ' && first)
			strbuf_put(&b, "\\ ", 2); /* a leading blank would be skipped by the reader */
		else if (cp == '\t')
			strbuf_put(&b, "\\t", 2);
		else if (cp == '\n')
			strbuf_put(&b, "\\n", 2);
		else if (cp == '\r')
			strbuf_put(&b, "\\r", 2);
		else if (cp == '\f')
			strbuf_put(&b, "\\f", 2);
		else if (cp < 0x20 || cp > 0x7e) {
			/* Properties.load(InputStream) reads ISO-8859-1: anything else as \u. */
			if (cp > 0xffff) {
				put_u_escape(&b, 0xd800 + (((uint32_t)cp - 0x10000) >> 10));
				put_u_escape(&b, 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff));
			} else {
				put_u_escape(&b, (uint32_t)cp);
			}
		} else {
			char c = (char)cp;

			strbuf_put(&b, &c, 1);
		}
		first = false;
	}
	return strbuf_take(&b);
}

/* Before a line is appended, the last one must end: with a terminator, and, when it is a key
 * whose last natural line ends in a continuation backslash, with an empty line too, or Java
 * would read the appended line as the rest of that value (its LineReader ends a continuation
 * at an empty line). */
static int terminate_last(struct entry *last)
{
	size_t n = strlen(last->raw), content = n;
	const char *add;
	char *fixed;

	while (content && (last->raw[content - 1] == '\n' || last->raw[content - 1] == '\r'))
		content--;
	/* After a lone CR, "\n" would only turn it into one CRLF terminator. */
	if (last->key && continues(last->raw, 0, content))
		add = content == n || last->raw[n - 1] == '\r' ? "\n\n" : "\n";
	else if (content == n && n)
		add = "\n";
	else
		return 0;
	fixed = realloc(last->raw, n + strlen(add) + 1);
	if (!fixed)
		return -ENOMEM;
	memcpy(fixed + n, add, strlen(add) + 1);
	last->raw = fixed;
	return 0;
}

int properties_set(struct properties *props, const char *key, const char *value,
		   struct kb_error *err)
{
	char *escaped = properties_escape_value_new(value);
	struct entry line = {0};
	size_t first = props->count;
	bool changed = false;
	int ret;

	if (!escaped)
		return kb_errorf(err, KB_ECONFIG, "value of %s is not valid UTF-8", key);
	for (size_t i = 0; i < props->count; i++) {
		if (props->entries[i].key && strcmp(props->entries[i].key, key) == 0) {
			first = i;
			break;
		}
	}
	if (first < props->count && strcmp(props->entries[first].value, value) != 0)
		changed = true;
	/* Later duplicates would win in Java: drop them. */
	for (size_t i = props->count; i-- > first + 1;) {
		if (props->entries[i].key && strcmp(props->entries[i].key, key) == 0) {
			entry_clear(&props->entries[i]);
			memmove(&props->entries[i], &props->entries[i + 1],
				(props->count - i - 1) * sizeof(*props->entries));
			props->count--;
			changed = true;
		}
	}
	if (first < props->count && !changed) {
		free(escaped);
		return 0;
	}
	if (asprintf(&line.raw, "%s=%s\n", key, escaped) < 0) {
		line.raw = NULL;
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	line.key = strdup(key);
	line.value = strdup(value);
	if (!line.key || !line.value) {
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	if (first < props->count) {
		entry_clear(&props->entries[first]);
		props->entries[first] = line;
		memset(&line, 0, sizeof(line));
		ret = 1;
		goto out;
	}
	if (props->count) {
		ret = terminate_last(&props->entries[props->count - 1]);
		if (ret < 0) {
			kb_errorf(err, -ret, "out of memory");
			goto out;
		}
	}
	if (add_entry(props, &line) < 0) {
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	memset(&line, 0, sizeof(line));
	ret = 1;
out:
	entry_clear(&line);
	free(escaped);
	return ret;
}

char *properties_format_new(const struct properties *props, size_t *len)
{
	struct strbuf b = {0};
	char *text;

	for (size_t i = 0; i < props->count; i++)
		strbuf_put(&b, props->entries[i].raw, strlen(props->entries[i].raw));
	text = strbuf_take(&b);
	if (text && len)
		*len = strlen(text);
	return text;
}

char *properties_expand_new(const char *template_text, const struct properties_vars *vars,
			    struct kb_error *err)
{
	struct strbuf b = {0};
	const char *p = template_text;
	char id[16];

	snprintf(id, sizeof(id), "%d", vars->broker_id);
	while (*p) {
		const char *open = strchr(p, '{');
		const char *value = NULL;
		size_t name_len;

		if (!open) {
			strbuf_put(&b, p, strlen(p));
			break;
		}
		strbuf_put(&b, p, (size_t)(open - p));
		name_len = strcspn(open, "}");
		if (strncmp(open, "{ip}", name_len + 1) == 0 && name_len == 3)
			value = vars->ip;
		else if (strncmp(open, "{broker_id}", name_len + 1) == 0 && name_len == 10)
			value = vars->broker_id >= 0 ? id : NULL;
		else if (strncmp(open, "{az}", name_len + 1) == 0 && name_len == 3)
			value = vars->az;
		else if (strncmp(open, "{az_id}", name_len + 1) == 0 && name_len == 6)
			value = vars->az_id;
		else {
			strbuf_release(&b);
			kb_errorf(err, KB_ECONFIG, "template '%s': unknown placeholder '%.*s'",
				  template_text, (int)name_len + 1, open);
			return NULL;
		}
		if (!value) {
			strbuf_release(&b);
			kb_errorf(err, KB_EINTERNAL, "template '%s': %.*s is not known yet",
				  template_text, (int)name_len + 1, open);
			return NULL;
		}
		strbuf_put(&b, value, strlen(value));
		p = open + name_len + 1;
	}
	return strbuf_take(&b);
}

/* --- the stage ----------------------------------------------------------------------- */

/* One key kafka-bootstrap owns, with its value for this run. */
struct managed {
	const char *key;
	char *value;
};

/* A managed key and how its value is made. */
struct managed_key {
	const char *key;
	char *(*value_new)(const struct kb_run *run, const struct properties_vars *vars,
			   struct kb_error *err);
};

static char *broker_id_new(const struct kb_run *run, const struct properties_vars *vars,
			   struct kb_error *err)
{
	char *value;

	(void)vars;
	(void)err;
	return asprintf(&value, "%d", run->broker_id) < 0 ? NULL : value;
}

static char *rack_new(const struct kb_run *run, const struct properties_vars *vars,
		      struct kb_error *err)
{
	return properties_expand_new(run->cfg->broker_rack, vars, err);
}

static char *listeners_new(const struct kb_run *run, const struct properties_vars *vars,
			   struct kb_error *err)
{
	return properties_expand_new(run->cfg->listeners, vars, err);
}

static char *advertised_new(const struct kb_run *run, const struct properties_vars *vars,
			    struct kb_error *err)
{
	return properties_expand_new(run->cfg->advertised_listeners, vars, err);
}

static char *log_dirs_new(const struct kb_run *run, const struct properties_vars *vars,
			  struct kb_error *err)
{
	(void)vars;
	(void)err;
	return strdup(run->cfg->log_dir);
}

static char *zookeeper_new(const struct kb_run *run, const struct properties_vars *vars,
			   struct kb_error *err)
{
	(void)vars;
	(void)err;
	return strdup(run->cfg->zookeeper_connect);
}

/* The keys kafka-bootstrap owns, per mode (config.h enum config_mode); every other line of
 * the file is the operator's. KRaft (node.id, process.roles,
 * controller.quorum.bootstrap.servers) will be a second table. */
static const struct managed_key zookeeper_mode_keys[] = {
	{"broker.id", broker_id_new},
	{"broker.rack", rack_new},
	{"listeners", listeners_new},
	{"advertised.listeners", advertised_new},
	{"log.dirs", log_dirs_new},
	{"zookeeper.connect", zookeeper_new},
};

#define MANAGED_MAX 8

static const struct {
	const struct managed_key *keys;
	size_t count;
} managed_by_mode[] = {
	[CONFIG_MODE_ZOOKEEPER] = {zookeeper_mode_keys,
				   sizeof(zookeeper_mode_keys) / sizeof(zookeeper_mode_keys[0])},
};

static void managed_clear(struct managed *m)
{
	for (size_t i = 0; i < MANAGED_MAX; i++)
		free(m[i].value);
}

/* Fills m (MANAGED_MAX entries; the unused ones keep key NULL) for the configured mode. */
static int managed_values(const struct kb_run *run, struct managed *m, struct kb_error *err)
{
	const struct kb_config *cfg = run->cfg;
	struct properties_vars vars = {
		.ip = run->broker && run->broker->eni ? run->broker->eni->private_ip : NULL,
		.broker_id = run->broker_id,
		.az = run->identity.az,
		.az_id = run->identity.az_id,
	};
	size_t modes = sizeof(managed_by_mode) / sizeof(managed_by_mode[0]);

	if (run->broker_id < 0 || !vars.ip)
		return kb_errorf(err, KB_EINTERNAL,
				 "no broker id or ENI address yet: the claim and eni stages come first");
	if (cfg->mode < 0 || (size_t)cfg->mode >= modes || !managed_by_mode[cfg->mode].keys ||
	    managed_by_mode[cfg->mode].count > MANAGED_MAX)
		return kb_errorf(err, KB_EINTERNAL, "no managed keys for mode %d", cfg->mode);
	for (size_t i = 0; i < managed_by_mode[cfg->mode].count; i++) {
		const struct managed_key *k = &managed_by_mode[cfg->mode].keys[i];

		m[i].key = k->key;
		m[i].value = k->value_new(run, &vars, err);
		if (!m[i].value)
			return kb_errorf(err, ENOMEM, "cannot build %s", k->key);
	}
	return 0;
}

/* The group that must read server.properties: the Kafka user's. */
static int kafka_gid(const char *user, gid_t *gid, struct kb_error *err)
{
	struct passwd *pw;
	char *end;
	unsigned long uid = strtoul(user, &end, 10);

	errno = 0;
	pw = *user && *end == '\0' ? getpwuid((uid_t)uid) : getpwnam(user);
	if (!pw)
		return kb_errorf(err, KB_ECONFIG, "kafka_user '%s' does not exist on this machine%s%s",
				 user, errno ? ": " : "", errno ? strerror(errno) : "");
	*gid = pw->pw_gid;
	return 0;
}

static int read_base(const struct kb_config *cfg, struct properties **props,
		     struct kb_error *err)
{
	const char *base = cfg->properties_template[0] ? cfg->properties_template
						     : cfg->properties_path;
	char *text = NULL;
	size_t len = 0;
	int ret = file_read_all(base, &text, &len, err);

	/* No server.properties yet (Kafka installed without one): start from nothing. A
	 * configured template that is missing is the operator's mistake. */
	if (ret == -ENOENT && base == cfg->properties_path) {
		kb_error_clear(err);
		ret = 0;
	}
	if (ret < 0)
		return ret;
	*props = properties_parse_new(text ? text : "", len, err);
	free(text);
	if (!*props) {
		kb_error_prefix(err, "%s", base);
		return -KB_ECONFIG;
	}
	return 0;
}

static int apply_managed(struct properties *props, const struct managed *m,
			 struct kb_error *err)
{
	for (size_t i = 0; i < MANAGED_MAX && m[i].key; i++) {
		int ret = properties_set(props, m[i].key, m[i].value, err);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Records what differs from the file on disk, key by key (current may be NULL: no file). A
 * stage that only reads for a later `--stage` target writes nothing: the first difference is
 * its error instead, as a change it did not make must not be reported. */
static int record_changes(struct kb_run *run, const char *current, size_t current_len,
			  const struct managed *m)
{
	struct properties *old = properties_parse_new(current ? current : "", current_len, NULL);
	const char *path = run->cfg->properties_path;
	bool any = false;
	int ret = 0;

	for (size_t i = 0; ret == 0 && old && i < MANAGED_MAX && m[i].key; i++) {
		char *was = properties_get_new(old, m[i].key);

		if (!was || strcmp(was, m[i].value) != 0) {
			if (run->prerequisite)
				ret = kb_errorf(&run->err, ENOENT,
						"%s differs from what the properties stage writes: "
						"%s is %s, not %s: run that stage", path, m[i].key,
						was ? was : "unset", m[i].value);
			else
				kb_run_change(run, "%s: set %s=%s (was %s)", path, m[i].key,
					      m[i].value, was ? was : "unset");
			any = true;
		}
		free(was);
	}
	if (!any && run->prerequisite)
		ret = kb_errorf(&run->err, ENOENT, "%s differs from what the properties stage "
				"writes (%s): run that stage", path,
				current ? "other lines, mode 0640 or group differ" : "no file");
	else if (!any)
		kb_run_change(run, "%s: rewrite (%s)", path,
			      current ? "other lines, mode 0640 or group differ" : "new file");
	properties_free(old);
	return ret;
}

int properties_stage(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	struct file_write_options opts = {.mode = 0640, .uid = (uid_t)-1, .make_dir = true};
	struct managed m[MANAGED_MAX] = {{0}};
	struct properties *props = NULL;
	char *text = NULL, *current = NULL;
	size_t len = 0, current_len = 0;
	struct stat st;
	int ret;

	ret = managed_values(run, m, &run->err);
	if (ret == 0)
		ret = kafka_gid(cfg->kafka_user, &opts.gid, &run->err);
	if (ret == 0)
		ret = read_base(cfg, &props, &run->err);
	if (ret == 0)
		ret = apply_managed(props, m, &run->err);
	if (ret < 0)
		goto out;
	text = properties_format_new(props, &len);
	if (!text) {
		ret = kb_errorf(&run->err, ENOMEM, "out of memory");
		goto out;
	}
	if (file_read_all(cfg->properties_path, &current, &current_len, NULL) < 0) {
		free(current);
		current = NULL;
	}
	/* Identical bytes, mode and group: leave the file alone (no new inode, no mtime). */
	if (current && current_len == len && memcmp(current, text, len) == 0 &&
	    stat(cfg->properties_path, &st) == 0 && (st.st_mode & 07777) == opts.mode &&
	    st.st_gid == opts.gid)
		goto out;
	ret = record_changes(run, current, current_len, m);
	if (ret < 0 || run->mode == KB_MODE_PLAN || run->prerequisite)
		goto out;
	ret = file_write_atomic(cfg->properties_path, text, len, &opts, &run->err);
out:
	managed_clear(m);
	properties_free(props);
	free(text);
	free(current);
	return ret;
}
