/* cli.h: the parsed command line, handed from main.c to the command that runs. */
#ifndef KB_CLI_H
#define KB_CLI_H

#include <stdbool.h>

#include "kb/config.h"

enum cli_signal_status { CLI_SIGNAL_NONE, CLI_SIGNAL_SUCCESS, CLI_SIGNAL_FAILURE };

struct kb_options {
	const char *command;
	const char *config_path;
	bool config_explicit;
	bool dry_run;
	int stage;           /* --stage: enum pipeline_stage_id, -1 for all */
	bool take_over_stopped;
	bool force;          /* release: even while Kafka is registered */
	bool json;           /* status */
	bool keys;           /* config: list the keys instead of the values */
	bool wait_registered; /* signal */
	enum cli_signal_status signal_status; /* signal --success / --failure */
};

/* Commands: return the process exit code. */
int status_command(const struct kb_options *opts, const struct kb_config *cfg);
int signal_command(const struct kb_options *opts, const struct kb_config *cfg);
int release_command(const struct kb_options *opts, const struct kb_config *cfg);

#endif
