/* config.h: one validated configuration from file, drop-ins, environment and flags.
 *
 * Precedence, lowest first: built-in defaults; /etc/kafka-bootstrap/config.json (or --config);
 * <config dir>/config.d/NAME.json files in name order; KAFKA_BOOTSTRAP_<KEY> environment variables;
 * command-line flags (--set key=value and the dedicated flags). Every key is described once,
 * in the table in config.c, which drives parsing, validation, `kafka-bootstrap config` and
 * the README reference (a test checks that the README lists every key). */
#ifndef KB_CONFIG_H
#define KB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kb/error.h"
#include "kb/log.h"

#define CONFIG_DEFAULT_PATH "/etc/kafka-bootstrap/config.json"

enum config_mode { CONFIG_MODE_ZOOKEEPER };
enum config_fs { CONFIG_FS_XFS, CONFIG_FS_EXT4 };
enum config_signal_mode { CONFIG_SIGNAL_NATIVE, CONFIG_SIGNAL_CFN_SIGNAL, CONFIG_SIGNAL_NONE };
/* When SUCCESS goes to CloudFormation: at the end of `run`, or from `signal --wait-registered`
 * once Kafka registered in ZooKeeper. */
enum config_success_signal { CONFIG_SUCCESS_ON_RUN, CONFIG_SUCCESS_ON_REGISTERED };
/* Bits of on_failure. */
enum {
	CONFIG_ON_FAILURE_SIGNAL = 1 << 0,
	CONFIG_ON_FAILURE_UNHEALTHY = 1 << 1,
	CONFIG_ON_FAILURE_LIFECYCLE = 1 << 2,
};

/* Stage deadlines, in pipeline order; index with enum pipeline_stage_id (pipeline.h). */
#define CONFIG_STAGE_COUNT 8

struct kb_config {
	/* cluster and ids */
	char *cluster;          /* "" = unset: no cluster tag filter, ZooKeeper path "default" */
	int mode;               /* enum config_mode */
	int broker_count;       /* 0 = every id found by tag */
	char *tag_key;
	char *tag_prefix;
	char *cluster_tag_key;
	/* ZooKeeper */
	char *zookeeper_connect; /* host:port[,host:port...][/chroot] */
	char *zookeeper_auth;    /* "user:password" digest, secret */
	int zookeeper_session_timeout_ms;
	int zookeeper_connect_timeout_ms;
	int claim_grace_period_s;
	bool take_over_stopped;
	/* ENI and routing */
	int eni_device_index;
	int network_card_index;
	int route_table;   /* 0 = 10000 + 100 * network_card_index + eni_device_index */
	int rule_priority; /* 0 = same number as the table (amazon-ec2-net-utils' convention) */
	/* volume */
	bool manage_volume;
	char *volume_device;
	int filesystem; /* enum config_fs */
	char *mount_point;
	char *mount_options;
	char *log_dir;
	char *kafka_user;
	/* server.properties */
	char *properties_path;
	char *properties_template; /* "" = properties_path itself is the base */
	char *listeners;
	char *advertised_listeners;
	char *broker_rack;
	/* signals */
	int signal_mode;    /* enum config_signal_mode */
	int success_signal; /* enum config_success_signal */
	unsigned on_failure;
	char *stack_name;          /* "" = instance tag aws:cloudformation:stack-name */
	char *logical_resource_id; /* "" = instance tag aws:cloudformation:logical-id */
	char *autoscaling_group;   /* "" = instance tag aws:autoscaling:groupName */
	char *lifecycle_hook;
	char *cfn_signal_path;
	/* deadlines, seconds */
	int deadline_s;
	int stage_deadline_s[CONFIG_STAGE_COUNT];
	int register_deadline_s;
	/* AWS transport */
	int aws_max_attempts;
	int http_connect_timeout_ms;
	int http_timeout_ms;
	/* run time */
	char *status_file;
	int log_level; /* enum log_level */
	char *sysfs_root;
	char *dev_root;
	char *run_root; /* /run: systemd-networkd state and drop-ins, udev database */
	char *console;
};

enum config_type { CONFIG_STRING, CONFIG_INT, CONFIG_BOOL, CONFIG_ENUM, CONFIG_FLAGS };

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	long min, max;              /* CONFIG_INT */
	const char *const *choices; /* CONFIG_ENUM, CONFIG_FLAGS: NULL-terminated names */
	const char *default_text;   /* as documented */
	bool secret;
	const char *help;
};

/* Defaults; NULL when out of memory. */
struct kb_config *config_new(void);
void config_free(struct kb_config *cfg);

/* Loads path and its config.d drop-ins. A missing default file is not an error (a machine may
 * be configured by drop-ins and environment alone); a missing explicit file is. */
int config_load_files(struct kb_config *cfg, const char *path, bool explicit_path,
		      struct kb_error *err);
/* Merges one JSON object. origin names it in errors ("/etc/.../50-stack.json"). */
int config_merge_json(struct kb_config *cfg, const char *text, const char *origin,
		      struct kb_error *err);
/* Applies every KAFKA_BOOTSTRAP_<KEY> variable of envp; an unknown one is an error. */
int config_load_env(struct kb_config *cfg, char *const *envp, struct kb_error *err);
/* Sets one key from text, as the environment and --set do. */
int config_set(struct kb_config *cfg, const char *key, const char *value, const char *origin,
	       struct kb_error *err);
/* Checks what no single key can: paths inside each other, required keys for a command. */
int config_validate(const struct kb_config *cfg, struct kb_error *err);

/* Registers the secret values with the logger. */
void config_register_secrets(const struct kb_config *cfg);
/* The effective configuration as JSON, secrets replaced by LOG_REDACTED. */
int config_print_json(const struct kb_config *cfg, FILE *out);

const struct config_key *config_keys(size_t *count);

/* Table number and rule priority after applying the 0 = derived defaults. */
int config_route_table(const struct kb_config *cfg);
int config_rule_priority(const struct kb_config *cfg);

#endif
