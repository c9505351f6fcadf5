/* main.c: parses the command line, loads the configuration and runs one command.
 *
 * It knows nothing about AWS or ZooKeeper. One table lists the commands, their options and
 * their help, and is walked both to dispatch and to print usage, so help cannot drift from
 * what runs (wireguard-tools' wg.c does the same). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/cli.h"
#include "kb/config.h"
#include "kb/log.h"
#include "kb/pipeline.h"
#include "kb/version.h"

extern char **environ;

enum option_bit {
	OPT_CONFIG = 1 << 0,
	OPT_DRY_RUN = 1 << 1,
	OPT_STAGE = 1 << 2,
	OPT_TAKE_OVER = 1 << 3,
	OPT_FORCE = 1 << 4,
	OPT_JSON = 1 << 5,
	OPT_KEYS = 1 << 6,
	OPT_SIGNAL = 1 << 7,
};

static int run_main(const struct kb_options *opts, const struct kb_config *cfg);
static int config_main(const struct kb_options *opts, const struct kb_config *cfg);

static const struct command {
	const char *name;
	int (*fn)(const struct kb_options *opts, const struct kb_config *cfg);
	unsigned options;
	const char *help;
} commands[] = {
	{"run", run_main, OPT_CONFIG | OPT_DRY_RUN | OPT_STAGE | OPT_TAKE_OVER,
	 "claim a broker id, attach its ENI and volume, configure the network, write "
	 "server.properties, signal"},
	{"plan", run_main, OPT_CONFIG | OPT_STAGE | OPT_TAKE_OVER,
	 "read everything and print what run would change (run --dry-run)"},
	{"status", status_command, OPT_CONFIG | OPT_JSON, "report the last run of this node"},
	{"signal", signal_command, OPT_CONFIG | OPT_SIGNAL,
	 "send SUCCESS once Kafka registered (--wait-registered), or --success/--failure"},
	{"release", release_command, OPT_CONFIG | OPT_FORCE,
	 "give up this instance's broker id (decommissioning)"},
	{"config", config_main, OPT_CONFIG | OPT_KEYS,
	 "print the effective configuration (--keys: every key, its default and meaning)"},
};

enum {
	LONG_CONFIG = 0x100,
	LONG_LOG_LEVEL,
	LONG_SET,
	LONG_DRY_RUN,
	LONG_STAGE,
	LONG_TAKE_OVER,
	LONG_FORCE,
	LONG_JSON,
	LONG_KEYS,
	LONG_WAIT_REGISTERED,
	LONG_SUCCESS,
	LONG_FAILURE,
};

static const struct option long_options[] = {
	{"config", required_argument, NULL, LONG_CONFIG},
	{"log-level", required_argument, NULL, LONG_LOG_LEVEL},
	{"set", required_argument, NULL, LONG_SET},
	{"dry-run", no_argument, NULL, LONG_DRY_RUN},
	{"stage", required_argument, NULL, LONG_STAGE},
	{"take-over-stopped", no_argument, NULL, LONG_TAKE_OVER},
	{"force", no_argument, NULL, LONG_FORCE},
	{"json", no_argument, NULL, LONG_JSON},
	{"keys", no_argument, NULL, LONG_KEYS},
	{"wait-registered", no_argument, NULL, LONG_WAIT_REGISTERED},
	{"success", no_argument, NULL, LONG_SUCCESS},
	{"failure", no_argument, NULL, LONG_FAILURE},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* Which command-specific bit each long option needs (0: accepted everywhere). */
static unsigned option_bit(int opt)
{
	switch (opt) {
	case LONG_CONFIG:
		return OPT_CONFIG;
	case LONG_DRY_RUN:
		return OPT_DRY_RUN;
	case LONG_STAGE:
		return OPT_STAGE;
	case LONG_TAKE_OVER:
		return OPT_TAKE_OVER;
	case LONG_FORCE:
		return OPT_FORCE;
	case LONG_JSON:
		return OPT_JSON;
	case LONG_KEYS:
		return OPT_KEYS;
	case LONG_WAIT_REGISTERED:
	case LONG_SUCCESS:
	case LONG_FAILURE:
		return OPT_SIGNAL;
	default:
		return 0;
	}
}

static const char *option_name(int opt)
{
	for (const struct option *o = long_options; o->name; o++) {
		if (o->val == opt)
			return o->name;
	}
	return "?";
}

static void print_help(FILE *out)
{
	fprintf(out,
		"Usage: kafka-bootstrap COMMAND [OPTIONS]\n"
		"Makes a replaced Kafka broker come back as the same broker: id, ENI, volume.\n\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(out,
		"\nOptions:\n"
		"  --config FILE         configuration file (default %s, then its config.d/)\n"
		"  --set KEY=VALUE       override one configuration key (repeatable)\n"
		"  --log-level LEVEL     error, warn, info or debug\n"
		"  --dry-run             run: change nothing, print what would change (= plan)\n"
		"  --stage NAME          run or plan one stage: identity discover claim eni volume\n"
		"                        network properties signal (earlier ones only read)\n"
		"  --take-over-stopped   run: take over the id of a stopped instance, detaching\n"
		"                        its ENI and volume\n"
		"  --force               release: even while Kafka is registered\n"
		"  --json                status: machine-readable output\n"
		"  --keys                config: list every key with its default\n"
		"  --wait-registered     signal: wait for Kafka's registration, then SUCCESS\n"
		"  --success, --failure  signal: send this status now\n"
		"  -h, --help            this help\n"
		"  -V, --version         print the version\n\n"
		"Exit codes: 0 ok, 10 no broker id, 11 volume of another broker, 12 refused to\n"
		"format, 13 ENI or volume held elsewhere, 14 signal failed, 64 usage, 69 dependency\n"
		"unreachable, 70 internal, 75 deadline, 77 denied by IAM, 78 configuration.\n",
		CONFIG_DEFAULT_PATH);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("kafka-bootstrap: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try 'kafka-bootstrap --help')\n", stderr);
	return -KB_EUSAGE;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

struct parsed {
	struct kb_options opts;
	const struct command *command;
	const char *log_level;
	const char **sets;
	size_t set_count;
};

/* Returns 1 to go on, 0 when done (help, version), negative on a usage error. */
static int parse_argv(int argc, char *argv[], struct parsed *p)
{
	int seen_opts[32];
	size_t seen_count = 0;
	bool help = false;
	int opt;

	p->opts.config_path = CONFIG_DEFAULT_PATH;
	p->opts.stage = -1;
	p->sets = calloc((size_t)argc, sizeof(*p->sets));
	if (!p->sets)
		return usage_error("%s", "out of memory");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			help = true;
			break;
		case 'V':
			printf("kafka-bootstrap %s\n", KB_VERSION);
			return 0;
		case LONG_CONFIG:
			p->opts.config_path = optarg;
			p->opts.config_explicit = true;
			break;
		case LONG_LOG_LEVEL:
			p->log_level = optarg;
			break;
		case LONG_SET:
			if (!strchr(optarg, '='))
				return usage_error("--set needs KEY=VALUE, got '%s'", optarg);
			p->sets[p->set_count++] = optarg;
			break;
		case LONG_DRY_RUN:
			p->opts.dry_run = true;
			break;
		case LONG_STAGE:
			p->opts.stage = pipeline_stage_lookup(optarg);
			if (p->opts.stage < 0)
				return usage_error("unknown stage '%s'", optarg);
			break;
		case LONG_TAKE_OVER:
			p->opts.take_over_stopped = true;
			break;
		case LONG_FORCE:
			p->opts.force = true;
			break;
		case LONG_JSON:
			p->opts.json = true;
			break;
		case LONG_KEYS:
			p->opts.keys = true;
			break;
		case LONG_WAIT_REGISTERED:
			p->opts.wait_registered = true;
			break;
		case LONG_SUCCESS:
		case LONG_FAILURE:
			if (p->opts.signal_status != CLI_SIGNAL_NONE)
				return usage_error("%s", "--success and --failure exclude each other");
			p->opts.signal_status = opt == LONG_SUCCESS ? CLI_SIGNAL_SUCCESS
								    : CLI_SIGNAL_FAILURE;
			break;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
		if (option_bit(opt)) {
			if (seen_count < sizeof(seen_opts) / sizeof(seen_opts[0]))
				seen_opts[seen_count++] = opt;
		}
	}
	if (optind < argc) {
		p->command = find_command(argv[optind]);
		if (!p->command)
			return usage_error("unknown command '%s'", argv[optind]);
		if (optind + 1 < argc)
			return usage_error("unexpected argument '%s'", argv[optind + 1]);
	}
	if (help) {
		print_help(stdout);
		return 0;
	}
	if (!p->command)
		return usage_error("%s", "no command given");
	for (size_t i = 0; i < seen_count; i++) {
		if (!(p->command->options & option_bit(seen_opts[i]))) {
			fprintf(stderr, "kafka-bootstrap: option --%s is not valid for %s "
				"(try 'kafka-bootstrap --help')\n", option_name(seen_opts[i]),
				p->command->name);
			return -KB_EUSAGE;
		}
	}
	if (p->opts.wait_registered && p->opts.signal_status != CLI_SIGNAL_NONE)
		return usage_error("%s", "--wait-registered excludes --success and --failure");
	p->opts.command = p->command->name;
	return 1;
}

/* Defaults, files, environment, then flags: each later source wins. */
static int load_config(const struct parsed *p, struct kb_config **out)
{
	struct kb_config *cfg = config_new();
	struct kb_error err = {{0}};
	int ret;

	*out = NULL;
	if (!cfg) {
		log_error("out of memory");
		return KB_EXIT_INTERNAL;
	}
	ret = config_load_files(cfg, p->opts.config_path, p->opts.config_explicit, &err);
	if (ret == 0)
		ret = config_load_env(cfg, environ, &err);
	for (size_t i = 0; ret == 0 && i < p->set_count; i++) {
		char key[128];
		const char *eq = strchr(p->sets[i], '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - p->sets[i]), p->sets[i]);
		ret = config_set(cfg, key, eq + 1, "--set", &err);
		if (ret < 0)
			ret = -KB_EUSAGE;
	}
	if (ret == 0 && p->log_level && config_set(cfg, "log_level", p->log_level,
						     "--log-level", &err) < 0)
		ret = -KB_EUSAGE;
	if (ret == 0 && p->opts.take_over_stopped)
		cfg->take_over_stopped = true;
	if (ret == 0)
		ret = config_validate(cfg, &err);
	if (ret < 0) {
		config_free(cfg);
		if (ret == -KB_EUSAGE) {
			fprintf(stderr, "kafka-bootstrap: %s (try 'kafka-bootstrap --help')\n",
				err.msg);
			return KB_EXIT_USAGE;
		}
		log_error("configuration: %s", err.msg);
		return kb_exit_code(ret);
	}
	*out = cfg;
	return KB_EXIT_OK;
}

static int run_main(const struct kb_options *opts, const struct kb_config *cfg)
{
	struct pipeline_options popts = {
		.cfg = cfg,
		.mode = opts->dry_run || strcmp(opts->command, "plan") == 0 ? KB_MODE_PLAN
									     : KB_MODE_RUN,
		.only_stage = opts->stage,
		.command = opts->command,
	};

	return pipeline_run(&popts);
}

static int config_main(const struct kb_options *opts, const struct kb_config *cfg)
{
	size_t count;
	const struct config_key *keys = config_keys(&count);

	if (!opts->keys)
		return config_print_json(cfg, stdout) < 0 ? KB_EXIT_INTERNAL : KB_EXIT_OK;
	for (size_t i = 0; i < count; i++)
		printf("%-30s %-28s %s\n", keys[i].name,
		       keys[i].default_text[0] ? keys[i].default_text : "\"\"", keys[i].help);
	return KB_EXIT_OK;
}

int main(int argc, char *argv[])
{
	struct parsed p = {0};
	struct kb_config *cfg = NULL;
	const char *secret_env[] = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
				    "AWS_SECURITY_TOKEN"};
	int exit_code;
	int ret;

	/* Before anything can log: secrets handed in by the environment. */
	for (size_t i = 0; i < sizeof(secret_env) / sizeof(secret_env[0]); i++)
		log_add_secret(getenv(secret_env[i]));
	log_init(LOG_LEVEL_INFO);
	ret = parse_argv(argc, argv, &p);
	if (ret <= 0) {
		free(p.sets);
		return ret == 0 ? KB_EXIT_OK : KB_EXIT_USAGE;
	}
	exit_code = load_config(&p, &cfg);
	free(p.sets);
	if (exit_code != KB_EXIT_OK)
		return exit_code;
	log_set_level((enum log_level)cfg->log_level);
	log_set_console(cfg->console);
	config_register_secrets(cfg);
	exit_code = p.command->fn(&p.opts, cfg);
	config_free(cfg);
	log_clear_secrets();
	return exit_code;
}
