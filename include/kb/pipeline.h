/* pipeline.h: the stage list, the state the stages share, timing, the status file, exit codes.
 *
 * Every stage is a function over one struct kb_run. It first looks at what is already true
 * and acts only on the difference, recording each change with kb_run_change(); in plan mode it
 * makes no change and records what it would do instead. That is what makes a rerun safe. */
#ifndef KB_PIPELINE_H
#define KB_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/config.h"
#include "kb/error.h"

struct aws_ctx;
struct imds_client;
struct claim;
struct ec2_eni;
struct ec2_eni_list;
struct ec2_volume;
struct ec2_volume_list;

enum pipeline_stage_id {
	STAGE_IDENTITY,
	STAGE_DISCOVER,
	STAGE_CLAIM,
	STAGE_ENI,
	STAGE_VOLUME,
	STAGE_NETWORK,
	STAGE_PROPERTIES,
	STAGE_SIGNAL,
	STAGE_COUNT,
};

enum pipeline_outcome { OUTCOME_NONE, OUTCOME_OK, OUTCOME_CHANGED, OUTCOME_SKIPPED, OUTCOME_FAILED };

enum kb_run_mode {
	KB_MODE_RUN,  /* read and write */
	KB_MODE_PLAN, /* read everything, write nothing, record what would change */
};

/* What identity learned from IMDS. */
struct kb_identity {
	char *instance_id;
	char *az;
	char *az_id;
	char *region;
	char *mac; /* primary interface */
	char *private_ip;
	char *account_id;
};

/* Frees every field and zeroes id. */
void kb_identity_clear(struct kb_identity *id);

/* One broker id this instance may claim, with its resources (borrowed from kb_run's lists). */
struct kb_broker {
	int id;
	struct ec2_eni *eni;
	struct ec2_volume *volume; /* NULL when manage_volume is off */
	/* Two ENIs or two volumes carry this id: offered to no new claim; an instance that holds
	 * it already is refused by the eni or volume stage, which names them all. */
	bool ambiguous;
};

struct stage_result {
	enum pipeline_outcome outcome;
	int64_t started_wall_ms;
	int64_t duration_ms;
	char **changes;
	size_t change_count;
	char *detail; /* skipped: why; failed: the error */
	int ret;
};

struct kb_run {
	const struct kb_config *cfg;
	enum kb_run_mode mode;
	/* The stage only learns state for a later `--stage` target: it reads, never writes, and
	 * fails when the state it needs does not exist yet (no claim held, ENI not attached)
	 * with -ENOENT or -ENODEV (-KB_ENOID for the claim). */
	bool prerequisite;

	struct kb_identity identity;
	struct imds_client *imds;
	struct aws_ctx *aws;

	/* discover */
	struct ec2_eni_list *enis;
	struct ec2_volume_list *volumes;
	struct kb_broker *candidates; /* ids whose resources are in this AZ */
	size_t candidate_count;

	/* claim */
	struct claim *claim;
	int broker_id; /* -1 until claimed */
	const struct kb_broker *broker;

	/* later stages */
	char *ifname;
	char *device;

	int only_stage; /* enum pipeline_stage_id asked for with --stage, -1 for all */

	/* failure path: the signal stage reports the first failure */
	int failed_stage; /* enum pipeline_stage_id, -1 when none */
	int failure;      /* its return value */

	int64_t deadline;       /* overall */
	int64_t stage_deadline; /* current stage, never later than the overall one */
	struct kb_error err;
	struct stage_result results[STAGE_COUNT];
	int current_stage;
};

/* Records one change of the current stage ("attached eni-0abc at device index 1"). In plan
 * mode call it for what would change; the record is prefixed "would: ". */
void kb_run_change(struct kb_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks the current stage skipped, with the reason. */
void kb_run_skip(struct kb_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *pipeline_stage_name(enum pipeline_stage_id id);
/* -1 when unknown. */
int pipeline_stage_lookup(const char *name);

struct pipeline_options {
	const struct kb_config *cfg;
	enum kb_run_mode mode;
	int only_stage; /* -1 for all */
	const char *command; /* for the status file: "run", "plan" */
};

/* Runs the pipeline; returns the process exit code. In run mode it holds the run lock, and a
 * stage that failed transiently (exit 69 or 75) is retried, with backoff, until the overall
 * deadline before anyone is told. */
int pipeline_run(const struct pipeline_options *opts);

/* Runs the stages of an initialised run (kb_run_init) up to only_stage (-1: all), stopping at
 * the first failure, then the signal stage when with_signal. Returns the first failure.
 * For commands that look at the results themselves (status). */
int pipeline_execute(struct kb_run *run, int only_stage, bool with_signal);

/* The run lock, <run_root>/kafka-bootstrap/lock: one writer (run, release) at a time on a
 * node. Waits for the holder until the deadline (-KB_ETIMEOUT naming its pid). *fd holds it
 * until closed. */
int pipeline_lock(const struct kb_config *cfg, int64_t deadline, int *fd, struct kb_error *err);

/* For tests of the runner: the stage table can be replaced. */
typedef int (*pipeline_stage_fn)(struct kb_run *run);
void pipeline_set_stage_fn(enum pipeline_stage_id id, pipeline_stage_fn fn);

void kb_run_init(struct kb_run *run, const struct kb_config *cfg, enum kb_run_mode mode);
void kb_run_release(struct kb_run *run);

/* Writes the run's result as the status JSON (atomically: temporary file, fsync, rename). */
int pipeline_write_status(const struct kb_run *run, const char *command, int exit_code,
			  int64_t started_wall_ms, const char *path, struct kb_error *err);

#endif
