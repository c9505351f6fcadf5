/* config.c: the configuration keys, their defaults, parsing from JSON, environment and flags,
 * and validation.
 *
 * The table below is the only description of a key: parsing, defaults, validation messages,
 * `kafka-bootstrap config` and the README reference (checked by a test) all come from it. A
 * bad value is refused with the key, the value, where it came from and what is allowed; it is
 * never clamped or ignored, because a silently "corrected" value on a broker is worse than a
 * node that does not start. */
#include "kb/config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_STR(field, def, help_text) \
	{#field, CONFIG_STRING, offsetof(struct kb_config, field), 0, 0, NULL, def, false, help_text}
#define KEY_SECRET(field, help_text) \
	{#field, CONFIG_STRING, offsetof(struct kb_config, field), 0, 0, NULL, "", true, help_text}
#define KEY_INT(field, lo, hi, def, help_text) \
	{#field, CONFIG_INT, offsetof(struct kb_config, field), lo, hi, NULL, def, false, help_text}
#define KEY_BOOL(field, def, help_text) \
	{#field, CONFIG_BOOL, offsetof(struct kb_config, field), 0, 0, NULL, def, false, help_text}
#define KEY_ENUM(field, names, def, help_text) \
	{#field, CONFIG_ENUM, offsetof(struct kb_config, field), 0, 0, names, def, false, help_text}
#define KEY_FLAGS(field, names, def, help_text) \
	{#field, CONFIG_FLAGS, offsetof(struct kb_config, field), 0, 0, names, def, false, help_text}
#define KEY_DEADLINE(stage, idx, def) \
	{stage "_deadline_s", CONFIG_INT, offsetof(struct kb_config, stage_deadline_s[idx]), 1, \
	 86400, NULL, def, false, "deadline of the " stage " stage, seconds"}

static const char *const mode_names[] = {"zookeeper", NULL};
static const char *const fs_names[] = {"xfs", "ext4", NULL};
static const char *const signal_mode_names[] = {"native", "cfn-signal", "none", NULL};
static const char *const success_names[] = {"run", "registered", NULL};
static const char *const on_failure_names[] = {"signal", "unhealthy", "lifecycle", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

/* Deadline key names are "<stage>_deadline_s"; the stage order is pipeline.h's. */
static const struct config_key keys[] = {
	KEY_STR(cluster, "", "cluster name: scopes ZooKeeper paths and, when set, the tag "
			     "filter on cluster_tag_key"),
	KEY_ENUM(mode, mode_names, "zookeeper", "Kafka metadata mode (KRaft comes later)"),
	KEY_INT(broker_count, 0, 65536, "0",
		"ids 0..broker_count-1 are claimable; 0 = every id found by tag"),
	KEY_STR(tag_key, "Name", "tag key naming a broker's ENI and volume"),
	KEY_STR(tag_prefix, "KAFKA-", "tag value prefix, followed by the broker id"),
	KEY_STR(cluster_tag_key, "kafka-bootstrap:cluster", "tag key holding the cluster name"),
	KEY_STR(zookeeper_connect, "", "host:port[,host:port...][/chroot] (required for run)"),
	KEY_SECRET(zookeeper_auth, "digest credentials user:password; claim nodes get ACLs"),
	KEY_INT(zookeeper_session_timeout_ms, 2000, 120000, "10000", "ZooKeeper session timeout"),
	KEY_INT(zookeeper_connect_timeout_ms, 1000, 3600000, "15000",
		"longest wait for a ZooKeeper session in the claim stage (then retried)"),
	KEY_INT(claim_grace_period_s, 0, 86400, "600",
		"age before a claim whose owner EC2 does not know can be taken over"),
	KEY_BOOL(take_over_stopped, "false",
		 "take over ids of stopped instances, detaching their ENI and volume"),
	KEY_INT(eni_device_index, 1, 31, "1", "device index the ENI is attached at"),
	KEY_INT(network_card_index, 0, 15, "0", "network card the ENI is attached to"),
	KEY_INT(route_table, 0, 2147483647, "0",
		"route table of the ENI; 0 = 10000 + 100 * card + device index"),
	KEY_INT(rule_priority, 0, 32765, "0",
		"priority of the from-rule; 0 = 10000 + 100 * card + device index"),
	KEY_BOOL(manage_volume, "true", "attach, format if blank and mount the broker's volume"),
	KEY_STR(volume_device, "/dev/sdg", "device name requested in AttachVolume"),
	KEY_ENUM(filesystem, fs_names, "xfs", "filesystem created on a blank volume"),
	KEY_STR(mount_point, "/var/lib/kafka", "where the volume is mounted"),
	KEY_STR(mount_options, "noatime", "mount options, comma separated"),
	KEY_STR(log_dir, "/var/lib/kafka/logs", "Kafka's log.dirs, inside mount_point"),
	KEY_STR(kafka_user, "kafka", "user (name or uid) owning log_dir; its group reads "
				     "server.properties"),
	KEY_STR(properties_path, "/etc/kafka/server.properties", "server.properties written"),
	KEY_STR(properties_template, "", "base file; empty = properties_path itself"),
	KEY_STR(listeners, "PLAINTEXT://{ip}:9092",
		"listeners template: {ip} {broker_id} {az} {az_id}"),
	KEY_STR(advertised_listeners, "PLAINTEXT://{ip}:9092", "advertised.listeners template"),
	KEY_STR(broker_rack, "{az_id}", "broker.rack template"),
	KEY_ENUM(signal_mode, signal_mode_names, "native",
		 "native SignalResource, the cfn-signal program, or none"),
	KEY_ENUM(success_signal, success_names, "registered",
		 "send SUCCESS at the end of run, or from `signal --wait-registered`"),
	KEY_FLAGS(on_failure, on_failure_names, "signal,unhealthy",
		  "what a failure tells: CloudFormation, Auto Scaling health, lifecycle hook"),
	KEY_STR(stack_name, "", "stack to signal; empty = tag aws:cloudformation:stack-name"),
	KEY_STR(logical_resource_id, "",
		"resource to signal; empty = tag aws:cloudformation:logical-id"),
	KEY_STR(autoscaling_group, "", "Auto Scaling group; empty = tag aws:autoscaling:groupName"),
	KEY_STR(lifecycle_hook, "", "launch lifecycle hook completed by run (on_failure lifecycle)"),
	KEY_STR(cfn_signal_path, "/opt/aws/bin/cfn-signal", "cfn-signal program (signal_mode)"),
	KEY_INT(deadline_s, 1, 86400, "900",
		"deadline of the stages before signal, retries included, seconds"),
	KEY_DEADLINE("identity", 0, "60"),
	KEY_DEADLINE("discover", 1, "60"),
	KEY_DEADLINE("claim", 2, "120"),
	KEY_DEADLINE("eni", 3, "180"),
	KEY_DEADLINE("volume", 4, "300"),
	KEY_DEADLINE("network", 5, "120"),
	KEY_DEADLINE("properties", 6, "10"),
	KEY_DEADLINE("signal", 7, "60"),
	KEY_INT(register_deadline_s, 1, 86400, "600",
		"how long `signal --wait-registered` waits for Kafka's registration"),
	KEY_INT(aws_max_attempts, 1, 100, "10",
		"attempts per AWS call (throttling, 5xx), within the stage deadline"),
	KEY_INT(http_connect_timeout_ms, 100, 60000, "2000", "TCP and TLS connect timeout"),
	KEY_INT(http_timeout_ms, 100, 600000, "10000", "timeout of one HTTP attempt"),
	KEY_STR(status_file, "/run/kafka-bootstrap/status.json", "result of the last run"),
	KEY_ENUM(log_level, level_names, "info", "error, warn, info or debug"),
	KEY_STR(sysfs_root, "/sys", "sysfs root (tests point it at a tree they build)"),
	KEY_STR(dev_root, "/dev", "/dev root (tests point it at a tree they build)"),
	KEY_STR(run_root, "/run", "runtime root: systemd-networkd state and drop-ins, udev "
				  "database (tests point it at a tree they build)"),
	KEY_STR(console, "/dev/console", "where failure reasons are written; empty = nowhere"),
};

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

/* Keys whose non-empty value must be an absolute path. */
static const char *const path_keys[] = {
	"mount_point", "log_dir", "properties_path", "properties_template", "cfn_signal_path",
	"status_file", "sysfs_root", "dev_root", "run_root", "console", "volume_device",
};

_Static_assert(CONFIG_STAGE_COUNT == 8, "one deadline key per stage");

const struct config_key *config_keys(size_t *count)
{
	*count = KEY_COUNT;
	return keys;
}

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

static void *field(struct kb_config *cfg, const struct config_key *key)
{
	return (char *)cfg + key->offset;
}

static const void *cfield(const struct kb_config *cfg, const struct config_key *key)
{
	return (const char *)cfg + key->offset;
}

/* "a, b or c" for messages. */
static void describe_choices(const char *const *choices, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices[i] && used < len; i++) {
		const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";

		used += snprintf(buf + used, len - used, "%s%s", sep, choices[i]);
	}
}

static int invalid(struct kb_error *err, const char *origin, const struct config_key *key,
		   const char *value, const char *allowed)
{
	return kb_errorf(err, KB_ECONFIG, "%s: key '%s': invalid value '%s': %s", origin,
			 key->name, value, allowed);
}

static int set_string(struct kb_config *cfg, const struct config_key *key, const char *value)
{
	char **slot = field(cfg, key);
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

static int parse_int(const struct config_key *key, const char *value, const char *origin,
		     int *out, struct kb_error *err)
{
	char allowed[96];
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	snprintf(allowed, sizeof(allowed), "an integer from %ld to %ld", key->min, key->max);
	if (errno || end == value || *end != '\0' || n < key->min || n > key->max)
		return invalid(err, origin, key, value, allowed);
	*out = (int)n;
	return 0;
}

static int parse_bool(const struct config_key *key, const char *value, const char *origin,
		      bool *out, struct kb_error *err)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return invalid(err, origin, key, value, "true or false");
}

static int parse_choice(const struct config_key *key, const char *value, size_t len,
			const char *origin, int *out, struct kb_error *err)
{
	char allowed[256];
	char shown[128];

	for (int i = 0; key->choices[i]; i++) {
		if (strlen(key->choices[i]) == len && strncmp(key->choices[i], value, len) == 0) {
			*out = i;
			return 0;
		}
	}
	snprintf(shown, sizeof(shown), "%.*s", (int)(len < 100 ? len : 100), value);
	strcpy(allowed, "one of ");
	describe_choices(key->choices, allowed + strlen(allowed), sizeof(allowed) - 8);
	return invalid(err, origin, key, shown, allowed);
}

/* "signal,unhealthy" (environment, flags) into a bit set; "" is the empty set. */
static int parse_flags(const struct config_key *key, const char *value, const char *origin,
		       unsigned *out, struct kb_error *err)
{
	unsigned bits = 0;
	const char *p = value;

	while (*p) {
		size_t len = strcspn(p, ",");
		int choice;
		int ret;

		while (len && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		ret = parse_choice(key, p, len, origin, &choice, err);
		if (ret < 0)
			return ret;
		bits |= 1u << choice;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	*out = bits;
	return 0;
}

int config_set(struct kb_config *cfg, const char *name, const char *value, const char *origin,
	       struct kb_error *err)
{
	const struct config_key *key = find_key(name);
	int choice;
	int ret = 0;

	if (!key)
		return kb_errorf(err, KB_ECONFIG,
				 "%s: unknown key '%s' (`kafka-bootstrap config --keys` lists them)",
				 origin, name);
	switch (key->type) {
	case CONFIG_STRING:
		ret = set_string(cfg, key, value);
		if (ret < 0)
			return kb_errorf(err, -ret, "%s: key '%s': out of memory", origin, name);
		if (key->secret)
			log_add_secret(value);
		return 0;
	case CONFIG_INT:
		return parse_int(key, value, origin, field(cfg, key), err);
	case CONFIG_BOOL:
		return parse_bool(key, value, origin, field(cfg, key), err);
	case CONFIG_ENUM:
		ret = parse_choice(key, value, strlen(value), origin, &choice, err);
		if (ret == 0)
			*(int *)field(cfg, key) = choice;
		return ret;
	case CONFIG_FLAGS:
		return parse_flags(key, value, origin, field(cfg, key), err);
	}
	return kb_errorf(err, KB_EINTERNAL, "key '%s' has no type", name);
}

struct kb_config *config_new(void)
{
	struct kb_config *cfg = calloc(1, sizeof(*cfg));
	struct kb_error err = {{0}};

	if (!cfg)
		return NULL;
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (config_set(cfg, keys[i].name, keys[i].default_text, "defaults", &err) < 0) {
			config_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

void config_free(struct kb_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (keys[i].type == CONFIG_STRING)
			free(*(char **)field(cfg, &keys[i]));
	}
	free(cfg);
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

static int wrong_type(struct kb_error *err, const char *origin, const struct config_key *key,
		      const json_t *v, const char *expected)
{
	return kb_errorf(err, KB_ECONFIG, "%s: key '%s': expected %s, got %s", origin, key->name,
			 expected, json_type_name(v));
}

/* A JSON array of names ["signal","unhealthy"] for CONFIG_FLAGS. */
static int merge_flags(struct kb_config *cfg, const struct config_key *key, const json_t *v,
		       const char *origin, struct kb_error *err)
{
	unsigned bits = 0;
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return wrong_type(err, origin, key, v, "an array of strings");
	json_array_foreach(v, i, item) {
		int choice;
		int ret;

		if (!json_is_string(item))
			return wrong_type(err, origin, key, item, "an array of strings");
		ret = parse_choice(key, json_string_value(item), json_string_length(item), origin,
				   &choice, err);
		if (ret < 0)
			return ret;
		bits |= 1u << choice;
	}
	*(unsigned *)field(cfg, key) = bits;
	return 0;
}

static int merge_value(struct kb_config *cfg, const struct config_key *key, const json_t *v,
		       const char *origin, struct kb_error *err)
{
	char text[32];

	switch (key->type) {
	case CONFIG_STRING:
	case CONFIG_ENUM:
		if (!json_is_string(v))
			return wrong_type(err, origin, key, v, "a string");
		if (strlen(json_string_value(v)) != json_string_length(v))
			return kb_errorf(err, KB_ECONFIG, "%s: key '%s': contains a NUL byte",
					 origin, key->name);
		return config_set(cfg, key->name, json_string_value(v), origin, err);
	case CONFIG_INT:
		if (!json_is_integer(v))
			return wrong_type(err, origin, key, v, "an integer");
		snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return config_set(cfg, key->name, text, origin, err);
	case CONFIG_BOOL:
		if (!json_is_boolean(v))
			return wrong_type(err, origin, key, v, "true or false");
		*(bool *)field(cfg, key) = json_is_true(v);
		return 0;
	case CONFIG_FLAGS:
		return merge_flags(cfg, key, v, origin, err);
	}
	return kb_errorf(err, KB_EINTERNAL, "key '%s' has no type", key->name);
}

/* What is wrong with a file that is not JSON, without jansson's own text: it quotes the input
 * near the error, which can be the ZooKeeper password. A duplicate key quotes the key, which
 * is no secret. */
static const char *json_problem(const json_error_t *jerr)
{
	switch (json_error_code(jerr)) {
	case json_error_duplicate_key:
		return jerr->text;
	case json_error_premature_end_of_input:
		return "the JSON ends early (an unclosed string, object or array)";
	case json_error_end_of_input_expected:
		return "text after the JSON object";
	case json_error_invalid_utf8:
		return "not valid UTF-8";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "a NUL character";
	case json_error_numeric_overflow:
		return "a number out of range";
	default:
		return "not valid JSON (a stray character, a missing comma or quote, an invalid "
		       "escape)";
	}
}

int config_merge_json(struct kb_config *cfg, const char *text, const char *origin,
		      struct kb_error *err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	const char *name;
	json_t *v;
	int ret = 0;

	if (!root)
		return kb_errorf(err, KB_ECONFIG, "%s: line %d column %d: %s", origin, jerr.line,
				 jerr.column, json_problem(&jerr));
	if (!json_is_object(root)) {
		ret = kb_errorf(err, KB_ECONFIG, "%s: expected a JSON object, got %s", origin,
				json_type_name(root));
		goto out;
	}
	json_object_foreach(root, name, v) {
		const struct config_key *key = find_key(name);

		if (!key) {
			ret = kb_errorf(err, KB_ECONFIG, "%s: unknown key '%s' "
					"(`kafka-bootstrap config --keys` lists them)", origin, name);
			goto out;
		}
		ret = merge_value(cfg, key, v, origin, err);
		if (ret < 0)
			goto out;
	}
out:
	json_decref(root);
	return ret;
}

static int merge_file(struct kb_config *cfg, const char *path, bool must_exist,
		      struct kb_error *err)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t len = 0;
	int ret = 0;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return kb_errorf(err, KB_ECONFIG, "cannot read config %s: %s", path,
				 strerror(errno));
	}
	{
		FILE *mem = open_memstream(&text, &len);
		char chunk[4096];
		size_t n;

		if (!mem) {
			ret = kb_errorf(err, ENOMEM, "reading config %s: out of memory", path);
			goto out;
		}
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			fwrite(chunk, 1, n, mem);
		if (ferror(f)) {
			fclose(mem);
			ret = kb_errorf(err, KB_ECONFIG, "cannot read config %s: %s", path,
					strerror(errno));
			goto out;
		}
		fclose(mem);
	}
	ret = config_merge_json(cfg, text, path, err);
out:
	free(text);
	fclose(f);
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int only_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int config_load_files(struct kb_config *cfg, const char *path, bool explicit_path,
		      struct kb_error *err)
{
	struct dirent **entries = NULL;
	char *dir = NULL;
	const char *slash;
	int n = 0;
	int ret;

	ret = merge_file(cfg, path, explicit_path, err);
	if (ret < 0)
		return ret;
	/* Drop-ins live beside the main file: /etc/kafka-bootstrap/config.d/ */
	slash = strrchr(path, '/');
	if (asprintf(&dir, "%.*sconfig.d", slash ? (int)(slash - path + 1) : 0, path) < 0)
		return kb_errorf(err, ENOMEM, "out of memory");
	n = scandir(dir, &entries, only_json, by_name);
	if (n < 0) {
		if (errno != ENOENT)
			ret = kb_errorf(err, KB_ECONFIG, "cannot read config directory %s: %s", dir,
					strerror(errno));
		n = 0;
		goto out;
	}
	for (int i = 0; i < n && ret == 0; i++) {
		char *file = NULL;

		if (asprintf(&file, "%s/%s", dir, entries[i]->d_name) < 0) {
			ret = kb_errorf(err, ENOMEM, "out of memory");
			break;
		}
		ret = merge_file(cfg, file, true, err);
		free(file);
	}
out:
	for (int i = 0; i < n; i++)
		free(entries[i]);
	free(entries);
	free(dir);
	return ret;
}

#define ENV_PREFIX "KAFKA_BOOTSTRAP_"

int config_load_env(struct kb_config *cfg, char *const *envp, struct kb_error *err)
{
	for (size_t i = 0; envp && envp[i]; i++) {
		const char *eq = strchr(envp[i], '=');
		char name[128];
		char origin[160];
		size_t len;
		int ret;

		if (strncmp(envp[i], ENV_PREFIX, strlen(ENV_PREFIX)) != 0 || !eq)
			continue;
		len = (size_t)(eq - envp[i]) - strlen(ENV_PREFIX);
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		for (size_t c = 0; c < len; c++)
			name[c] = (char)tolower((unsigned char)envp[i][strlen(ENV_PREFIX) + c]);
		name[len] = '\0';
		snprintf(origin, sizeof(origin), "environment %.*s", (int)(eq - envp[i]), envp[i]);
		ret = config_set(cfg, name, eq + 1, origin, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Templates may only use the documented placeholders (DECISIONS.md "Templates"). */
static int check_template(const struct config_key *key, const char *value,
			  struct kb_error *err)
{
	static const char *const placeholders[] = {"{ip}", "{broker_id}", "{az}", "{az_id}"};
	const char *p = value;

	while ((p = strchr(p, '{'))) {
		size_t len = strcspn(p, "}");
		bool known = false;

		if (p[len] != '}')
			return kb_errorf(err, KB_ECONFIG, "key '%s': unclosed '{' in '%s'",
					 key->name, value);
		for (size_t i = 0; i < 4; i++)
			known |= strncmp(p, placeholders[i], len + 1) == 0 &&
				 strlen(placeholders[i]) == len + 1;
		if (!known)
			return kb_errorf(err, KB_ECONFIG,
					 "key '%s': unknown placeholder '%.*s' in '%s': use {ip}, "
					 "{broker_id}, {az} or {az_id}",
					 key->name, (int)len + 1, p, value);
		p += len + 1;
	}
	return 0;
}

/* inner names a directory below outer: "/var/lib/kafka//" and "/var/lib/kafka/." are
 * outer itself, "/var/lib/kafka/../x" is not below it. A trailing '/' is allowed. */
static bool path_inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	const char *part;

	while (n > 1 && outer[n - 1] == '/')
		n--;
	if (strncmp(inner, outer, n) != 0 || inner[n] != '/')
		return false;
	for (part = inner + n + 1;; part += strcspn(part, "/") + 1) {
		size_t len = strcspn(part, "/");

		if (len == 0 || (len == 1 && part[0] == '.') ||
		    (len == 2 && part[0] == '.' && part[1] == '.'))
			return false;
		if (part[len] == '\0' || (part[len] == '/' && part[len + 1] == '\0'))
			return true;
	}
}

/* host:port[,host:port...][/chroot] with a non-empty host and a numeric port. */
static bool valid_connect_string(const char *s)
{
	const char *chroot = strchr(s, '/');
	size_t hosts_len = chroot ? (size_t)(chroot - s) : strlen(s);
	const char *p = s;

	if (hosts_len == 0)
		return false;
	while (p < s + hosts_len) {
		size_t len = strcspn(p, ",/");
		const char *colon = memrchr(p, ':', len);
		char *end;
		long port;

		if (!colon || colon == p)
			return false;
		port = strtol(colon + 1, &end, 10);
		if (end != p + len || port < 1 || port > 65535)
			return false;
		p += len;
		if (*p == ',')
			p++;
	}
	return !chroot || (chroot[1] != '\0' && chroot[strlen(chroot) - 1] != '/');
}

int config_validate(const struct kb_config *cfg, struct kb_error *err)
{
	const char *const templates[] = {"listeners", "advertised_listeners", "broker_rack"};
	int ret;

	for (size_t i = 0; i < sizeof(path_keys) / sizeof(path_keys[0]); i++) {
		const struct config_key *key = find_key(path_keys[i]);
		const char *value = *(char *const *)cfield(cfg, key);

		if (value[0] != '\0' && value[0] != '/')
			return kb_errorf(err, KB_ECONFIG,
					 "key '%s': '%s' is not an absolute path", key->name, value);
	}
	for (size_t i = 0; i < 3; i++) {
		const struct config_key *key = find_key(templates[i]);

		ret = check_template(key, *(char *const *)cfield(cfg, key), err);
		if (ret < 0)
			return ret;
	}
	/* The cluster names a ZooKeeper node (claim paths): found out only at the claim stage,
	 * the run would have told the stack and the group a failure its replacement shares. */
	if (strchr(cfg->cluster, '/') || strcmp(cfg->cluster, ".") == 0 ||
	    strcmp(cfg->cluster, "..") == 0)
		return kb_errorf(err, KB_ECONFIG,
				 "key 'cluster': '%s' cannot name a ZooKeeper node (no '/', not '.' "
				 "or '..')", cfg->cluster);
	if (cfg->tag_key[0] == '\0' || cfg->tag_prefix[0] == '\0')
		return kb_errorf(err, KB_ECONFIG, "keys 'tag_key' and 'tag_prefix' must not be empty");
	if (cfg->zookeeper_connect[0] && !valid_connect_string(cfg->zookeeper_connect))
		return kb_errorf(err, KB_ECONFIG,
				 "key 'zookeeper_connect': invalid value '%s': expected "
				 "host:port[,host:port...][/chroot]", cfg->zookeeper_connect);
	if (cfg->zookeeper_auth[0] && !strchr(cfg->zookeeper_auth, ':'))
		return kb_errorf(err, KB_ECONFIG,
				 "key 'zookeeper_auth': expected user:password (value not shown)");
	if (strncmp(cfg->volume_device, "/dev/", 5) != 0 || cfg->volume_device[5] == '\0')
		return kb_errorf(err, KB_ECONFIG,
				 "key 'volume_device': invalid value '%s': expected /dev/<name>, "
				 "such as /dev/sdg", cfg->volume_device);
	if (cfg->manage_volume && !path_inside(cfg->log_dir, cfg->mount_point))
		return kb_errorf(err, KB_ECONFIG,
				 "key 'log_dir': '%s' must be a directory inside mount_point '%s' "
				 "(not its root: ext4 keeps lost+found there)",
				 cfg->log_dir, cfg->mount_point);
	if ((cfg->on_failure & CONFIG_ON_FAILURE_LIFECYCLE) && cfg->lifecycle_hook[0] == '\0')
		return kb_errorf(err, KB_ECONFIG,
				 "key 'on_failure' includes lifecycle but 'lifecycle_hook' is empty");
	if (cfg->signal_mode == CONFIG_SIGNAL_CFN_SIGNAL && cfg->cfn_signal_path[0] == '\0')
		return kb_errorf(err, KB_ECONFIG,
				 "key 'signal_mode' is cfn-signal but 'cfn_signal_path' is empty");
	/* The deadline keys are consecutive in the table, in stage order. */
	for (size_t i = 0; i < CONFIG_STAGE_COUNT; i++) {
		if (cfg->stage_deadline_s[i] > cfg->deadline_s)
			return kb_errorf(err, KB_ECONFIG,
					 "key '%s': %d s is longer than deadline_s (%d s)",
					 find_key("identity_deadline_s")[i].name,
					 cfg->stage_deadline_s[i], cfg->deadline_s);
	}
	return 0;
}

void config_register_secrets(const struct kb_config *cfg)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (keys[i].secret)
			log_add_secret(*(char *const *)cfield(cfg, &keys[i]));
	}
}

int config_print_json(const struct kb_config *cfg, FILE *out)
{
	json_t *root = json_object();
	int ret = 0;

	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < KEY_COUNT && ret == 0; i++) {
		const struct config_key *key = &keys[i];
		json_t *v = NULL;

		switch (key->type) {
		case CONFIG_STRING: {
			const char *s = *(char *const *)cfield(cfg, key);

			v = json_string(key->secret && s[0] ? LOG_REDACTED : s);
			break;
		}
		case CONFIG_INT:
			v = json_integer(*(const int *)cfield(cfg, key));
			break;
		case CONFIG_BOOL:
			v = json_boolean(*(const bool *)cfield(cfg, key));
			break;
		case CONFIG_ENUM:
			v = json_string(key->choices[*(const int *)cfield(cfg, key)]);
			break;
		case CONFIG_FLAGS: {
			unsigned bits = *(const unsigned *)cfield(cfg, key);

			v = json_array();
			for (int c = 0; v && key->choices[c]; c++) {
				if (bits & (1u << c))
					json_array_append_new(v, json_string(key->choices[c]));
			}
			break;
		}
		}
		if (!v || json_object_set_new(root, key->name, v) < 0)
			ret = -ENOMEM;
	}
	if (ret == 0 && json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
		ret = -EIO;
	if (ret == 0)
		fputc('\n', out);
	json_decref(root);
	return ret;
}

int config_route_table(const struct kb_config *cfg)
{
	if (cfg->route_table)
		return cfg->route_table;
	return 10000 + 100 * cfg->network_card_index + cfg->eni_device_index;
}

int config_rule_priority(const struct kb_config *cfg)
{
	if (cfg->rule_priority)
		return cfg->rule_priority;
	return 10000 + 100 * cfg->network_card_index + cfg->eni_device_index;
}
