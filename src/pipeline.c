/* pipeline.c: runs the stages in order, times them, writes the status file, picks the exit
 * code.
 *
 * A failed stage stops the pipeline; the signal stage still runs, to tell CloudFormation and
 * Auto Scaling why (run->failed_stage, run->failure). The exit code is the first failure's:
 * a signal that could not be sent never hides it, and only turns a successful run into 14. */
#include "kb/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "kb/autoscaling.h"
#include "kb/aws.h"
#include "kb/claim.h"
#include "kb/deadline.h"
#include "kb/ec2.h"
#include "kb/file.h"
#include "kb/imds.h"
#include "kb/log.h"
#include "kb/stages.h"

static const char *const stage_names[STAGE_COUNT] = {
	"identity", "discover", "claim", "eni", "volume", "network", "properties", "signal",
};

static pipeline_stage_fn stage_fns[STAGE_COUNT] = {
	identity_stage, discover_stage, claim_stage,      eni_stage,
	volume_stage,   network_stage,  properties_stage, signal_stage,
};

static const char *const outcome_names[] = {"none", "ok", "changed", "skipped", "failed"};

const char *pipeline_stage_name(enum pipeline_stage_id id)
{
	return (unsigned)id < STAGE_COUNT ? stage_names[id] : "?";
}

int pipeline_stage_lookup(const char *name)
{
	for (int i = 0; i < STAGE_COUNT; i++) {
		if (strcmp(stage_names[i], name) == 0)
			return i;
	}
	return -1;
}

void pipeline_set_stage_fn(enum pipeline_stage_id id, pipeline_stage_fn fn)
{
	if ((unsigned)id < STAGE_COUNT)
		stage_fns[id] = fn;
}

void kb_run_init(struct kb_run *run, const struct kb_config *cfg, enum kb_run_mode mode)
{
	memset(run, 0, sizeof(*run));
	run->cfg = cfg;
	run->mode = mode;
	run->broker_id = -1;
	run->failed_stage = -1;
	run->current_stage = -1;
	run->only_stage = -1;
	run->deadline = deadline_after_ms((int64_t)cfg->deadline_s * 1000);
	run->stage_deadline = run->deadline;
}

void kb_identity_clear(struct kb_identity *id)
{
	free(id->instance_id);
	free(id->az);
	free(id->az_id);
	free(id->region);
	free(id->mac);
	free(id->private_ip);
	free(id->account_id);
	memset(id, 0, sizeof(*id));
}

void kb_run_release(struct kb_run *run)
{
	kb_identity_clear(&run->identity);
	claim_free(run->claim);
	aws_ctx_free(run->aws);
	imds_client_free(run->imds);
	ec2_eni_list_free(run->enis);
	ec2_volume_list_free(run->volumes);
	free(run->candidates);
	free(run->ifname);
	free(run->device);
	for (int i = 0; i < STAGE_COUNT; i++) {
		struct stage_result *r = &run->results[i];

		for (size_t c = 0; c < r->change_count; c++)
			free(r->changes[c]);
		free(r->changes);
		free(r->detail);
	}
	memset(run, 0, sizeof(*run));
}

static struct stage_result *current(struct kb_run *run)
{
	if (run->current_stage < 0 || run->current_stage >= STAGE_COUNT)
		return NULL;
	return &run->results[run->current_stage];
}

void kb_run_change(struct kb_run *run, const char *fmt, ...)
{
	struct stage_result *r = current(run);
	char *text = NULL;
	char *line = NULL;
	char **grown;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (!text || !r)
		goto out;
	if (asprintf(&line, "%s%s", run->mode == KB_MODE_PLAN ? "would: " : "", text) < 0) {
		line = NULL;
		goto out;
	}
	log_info("%s: %s", stage_names[run->current_stage], line);
	grown = realloc(r->changes, (r->change_count + 1) * sizeof(*grown));
	if (!grown)
		goto out;
	r->changes = grown;
	r->changes[r->change_count++] = line;
	line = NULL;
out:
	free(line);
	free(text);
}

void kb_run_skip(struct kb_run *run, const char *fmt, ...)
{
	struct stage_result *r = current(run);
	va_list ap;

	if (!r)
		return;
	free(r->detail);
	va_start(ap, fmt);
	if (vasprintf(&r->detail, fmt, ap) < 0)
		r->detail = NULL;
	va_end(ap);
	r->outcome = OUTCOME_SKIPPED;
}

static void run_stage(struct kb_run *run, enum pipeline_stage_id id)
{
	struct stage_result *r = &run->results[id];
	int64_t started = deadline_now_ms();
	int ret;

	run->current_stage = (int)id;
	/* A retried stage keeps the changes of its earlier attempt, not its failure. */
	free(r->detail);
	r->detail = NULL;
	r->outcome = OUTCOME_NONE;
	run->stage_deadline = deadline_after_ms((int64_t)run->cfg->stage_deadline_s[id] * 1000);
	/* The signal stage is how a failure is told, so it keeps its own budget when the stages
	 * before it (a dependency down, retried until the end) used all of the run's:
	 * kafka-bootstrap.service's TimeoutStartSec leaves deadline_s + signal_deadline_s. */
	if (id != STAGE_SIGNAL)
		run->stage_deadline = deadline_min(run->deadline, run->stage_deadline);
	kb_error_clear(&run->err);
	r->started_wall_ms = deadline_wall_ms();
	log_debug("stage %s: start%s", stage_names[id],
		  run->prerequisite ? " (reading state for a later stage)" : "");
	ret = stage_fns[id](run);
	r->duration_ms = deadline_now_ms() - started;
	r->ret = ret;
	if (ret < 0) {
		if (run->err.msg[0] == '\0')
			kb_errorf(&run->err, -ret, "%s", strerror(-ret < 4096 ? -ret : EIO));
		r->outcome = OUTCOME_FAILED;
		free(r->detail);
		r->detail = strdup(run->err.msg);
	} else if (r->outcome != OUTCOME_SKIPPED) {
		r->outcome = r->change_count ? OUTCOME_CHANGED : OUTCOME_OK;
	}
	run->current_stage = -1;
}

static void print_summary(const struct kb_run *run)
{
	for (int i = 0; i < STAGE_COUNT; i++) {
		const struct stage_result *r = &run->results[i];

		if (r->outcome == OUTCOME_NONE)
			continue;
		log_msg(r->outcome == OUTCOME_FAILED ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO,
			"stage %-10s %-7s %6lld ms%s%s", stage_names[i], outcome_names[r->outcome],
			(long long)r->duration_ms, r->detail ? "  " : "",
			r->detail ? r->detail : "");
	}
}

/* A stage run only to read what a later `--stage` target needs found it missing: the exit
 * code's own hint (every id held, a bug) would mislead; say which stage to run instead. */
static bool unmet_prerequisite(const struct kb_run *run)
{
	return run->failed_stage >= 0 && run->only_stage > run->failed_stage &&
	       (run->failure == -ENOENT || run->failure == -ENODEV || run->failure == -KB_ENOID);
}

static void failure_hint(const struct kb_run *run, int exit_code, char *buf, size_t size)
{
	if (unmet_prerequisite(run))
		snprintf(buf, size, "stage %s is not in place, and `--stage %s` only reads the "
			 "stages before it: run `kafka-bootstrap run` (every stage), or `--stage "
			 "%s` first", stage_names[run->failed_stage], stage_names[run->only_stage],
			 stage_names[run->failed_stage]);
	else
		snprintf(buf, size, "%s", kb_exit_hint(exit_code));
}

static json_t *stage_json(const struct stage_result *r, const char *name)
{
	char started[32];
	json_t *changes = json_array();
	char *error = NULL;

	deadline_format_wall(r->started_wall_ms, started, sizeof(started));
	for (size_t c = 0; changes && c < r->change_count; c++)
		json_array_append_new(changes, json_string(r->changes[c]));
	if (r->outcome == OUTCOME_FAILED && r->detail)
		error = log_redact_new(r->detail);
	json_t *obj = json_pack("{s:s, s:s, s:I, s:s, s:o, s:s*, s:s*}", "name", name,
				"started_at", started, "duration_ms", (json_int_t)r->duration_ms,
				"outcome", outcome_names[r->outcome], "changes", changes, "error",
				error, "detail",
				r->outcome != OUTCOME_FAILED ? r->detail : NULL);
	free(error);
	return obj;
}

int pipeline_write_status(const struct kb_run *run, const char *command, int exit_code,
			  int64_t started_wall_ms, const char *path, struct kb_error *err)
{
	struct file_write_options opts = {.mode = 0644, .uid = (uid_t)-1, .gid = (gid_t)-1,
					  .make_dir = true};
	char started[32], hint[512];
	json_t *stages = json_array();
	json_t *root;
	char *text = NULL;
	char *error = NULL;
	int ret;

	deadline_format_wall(started_wall_ms, started, sizeof(started));
	failure_hint(run, exit_code, hint, sizeof(hint));
	for (int i = 0; stages && i < STAGE_COUNT; i++) {
		if (run->results[i].outcome != OUTCOME_NONE)
			json_array_append_new(stages, stage_json(&run->results[i], stage_names[i]));
	}
	if (run->failed_stage >= 0 && run->results[run->failed_stage].detail) {
		char *detail = log_redact_new(run->results[run->failed_stage].detail);

		if (detail && asprintf(&error, "stage %s: %s", stage_names[run->failed_stage],
				       detail) < 0)
			error = NULL;
		free(detail);
	}
	root = json_pack("{s:i, s:s, s:s, s:i, s:s, s:o, s:s*, s:s*, s:s*, s:o}", "schema", 1,
			 "command", command, "started_at", started, "exit_code", exit_code,
			 "exit_name", kb_exit_name(exit_code), "broker_id",
			 run->broker_id >= 0 ? json_integer(run->broker_id) : json_null(),
			 "instance_id", run->identity.instance_id, "error", error, "hint",
			 exit_code ? hint : NULL, "stages", stages);
	free(error);
	if (root)
		text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return kb_errorf(err, ENOMEM, "cannot build the status JSON: out of memory");
	ret = file_write_atomic(path, text, strlen(text), &opts, err);
	free(text);
	return ret;
}

static int execute_from(struct kb_run *run, int first, int only_stage)
{
	run->only_stage = only_stage;
	for (int id = first; id < STAGE_SIGNAL && (only_stage < 0 || id <= only_stage); id++) {
		run->prerequisite = only_stage >= 0 && id < only_stage;
		run_stage(run, id);
		if (run->results[id].outcome == OUTCOME_FAILED) {
			run->failed_stage = id;
			run->failure = run->results[id].ret;
			break;
		}
	}
	run->prerequisite = false;
	return run->failed_stage >= 0 ? run->failure : 0;
}

int pipeline_execute(struct kb_run *run, int only_stage, bool with_signal)
{
	execute_from(run, 0, only_stage);
	/* The signal stage runs on success and on failure alike: it is how a failure is told.
	 * Running one other stage on its own is an operator's repair, not a boot: no signal. */
	if (with_signal && (only_stage < 0 || only_stage == STAGE_SIGNAL))
		run_stage(run, STAGE_SIGNAL);
	return run->failed_stage >= 0 ? run->failure : 0;
}

/* A dependency that did not answer (69) or a state that did not arrive (75) may come right a
 * minute later (a ZooKeeper rolling restart, EC2 throttling during a mass reboot): the failed
 * stage is retried, with backoff, until the run's own deadline, rather than telling Auto
 * Scaling that a broker whose id, ENI and volume are intact is unhealthy. Every stage is
 * idempotent, so resuming at the failed one is safe. */
static void retry_transient(struct kb_run *run)
{
	int64_t backoff_ms = 1000;

	for (int attempt = 2; run->failed_stage >= 0; attempt++) {
		int code = kb_exit_code(run->failure);
		int first = run->failed_stage;

		if (code != KB_EXIT_UNAVAILABLE && code != KB_EXIT_DEADLINE)
			return;
		if (deadline_remaining_ms(run->deadline) <= backoff_ms + 1000)
			return;
		log_warn("stage %s failed (exit %d %s): %s; retrying it in %lld s (attempt %d), "
			 "until the run's deadline", stage_names[first], code, kb_exit_name(code),
			 run->results[first].detail, (long long)backoff_ms / 1000, attempt);
		deadline_sleep_ms(run->deadline, backoff_ms);
		backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
		run->failed_stage = -1;
		run->failure = 0;
		execute_from(run, first, -1);
	}
}

int pipeline_lock(const struct kb_config *cfg, int64_t deadline, int *fd_out,
		  struct kb_error *err)
{
	char *dir = NULL, *path = NULL, holder[32] = "";
	bool waiting = false;
	int fd = -1, ret = 0;
	ssize_t n;

	*fd_out = -1;
	if (asprintf(&dir, "%s/kafka-bootstrap", cfg->run_root) < 0 ||
	    asprintf(&path, "%s/lock", dir) < 0) {
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	ret = file_mkdir_p(dir, 0755, err);
	if (ret < 0)
		goto out;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		ret = kb_errorf(err, errno, "cannot open the run lock %s: %s", path, strerror(errno));
		goto out;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			ret = kb_errorf(err, errno, "cannot lock %s: %s", path, strerror(errno));
			goto out;
		}
		n = pread(fd, holder, sizeof(holder) - 1, 0);
		holder[n > 0 ? strcspn(holder, "\n") : 0] = '\0';
		if (!waiting)
			log_info("waiting for kafka-bootstrap (pid %s) to finish: it holds %s",
				 holder[0] ? holder : "?", path);
		waiting = true;
		if (!deadline_sleep_ms(deadline, 100)) {
			ret = kb_errorf(err, KB_ETIMEOUT, "another kafka-bootstrap (pid %s) still "
					"holds %s", holder[0] ? holder : "?", path);
			goto out;
		}
	}
	/* The holder's pid, for the message of whoever waits next. */
	if (ftruncate(fd, 0) == 0)
		dprintf(fd, "%ld\n", (long)getpid());
	*fd_out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	free(dir);
	return ret;
}

int pipeline_run(const struct pipeline_options *opts)
{
	const struct kb_config *cfg = opts->cfg;
	int64_t started_wall = deadline_wall_ms();
	struct kb_error err = {{0}};
	struct kb_run run;
	char hint[512];
	int lock = -1;
	int exit_code;

	/* Every other key is checked when the configuration is loaded; this one only commands
	 * that reach the claim need. Met at the claim, the run would have told the stack and
	 * the group a failure its replacement shares. */
	if ((opts->only_stage < 0 || opts->only_stage >= STAGE_CLAIM) &&
	    !cfg->zookeeper_connect[0]) {
		log_error("configuration: key 'zookeeper_connect' is not set: %s needs ZooKeeper to "
			  "claim a broker id", opts->command);
		return KB_EXIT_CONFIG;
	}
	kb_run_init(&run, cfg, opts->mode);
	log_info("%s: kafka-bootstrap %s%s%s", opts->command,
		 opts->mode == KB_MODE_PLAN ? "plan (read only)" : "run",
		 opts->only_stage >= 0 ? ", stage " : "",
		 opts->only_stage >= 0 ? stage_names[opts->only_stage] : "");
	/* One writer at a time: an operator's rerun waits for the boot's run to finish. */
	if (opts->mode == KB_MODE_RUN &&
	    pipeline_lock(cfg, run.deadline, &lock, &err) < 0) {
		log_error("%s: %s", opts->command, err.msg);
		kb_run_release(&run);
		return KB_EXIT_DEADLINE;
	}
	execute_from(&run, 0, opts->only_stage);
	if (opts->mode == KB_MODE_RUN && opts->only_stage < 0)
		retry_transient(&run);
	if (opts->only_stage < 0 || opts->only_stage == STAGE_SIGNAL)
		run_stage(&run, STAGE_SIGNAL);
	if (run.failed_stage >= 0) {
		/* Asking for a stage whose earlier ones are not in place is a usage error: neither
		 * "no id" nor "internal" would be true. */
		exit_code = unmet_prerequisite(&run) ? KB_EXIT_USAGE : kb_exit_code(run.failure);
		failure_hint(&run, exit_code, hint, sizeof(hint));
		/* The console too: `aws ec2 get-console-output` shows it without SSH. */
		log_error("%s failed in stage %s (exit %d %s): %s; what to do: %s", opts->command,
			  stage_names[run.failed_stage], exit_code, kb_exit_name(exit_code),
			  run.results[run.failed_stage].detail, hint);
		if (opts->mode == KB_MODE_RUN)
			log_console("stage %s failed (exit %d %s): %s; what to do: %s",
				    stage_names[run.failed_stage], exit_code,
				    kb_exit_name(exit_code), run.results[run.failed_stage].detail,
				    hint);
	} else if (run.results[STAGE_SIGNAL].outcome == OUTCOME_FAILED) {
		exit_code = KB_EXIT_SIGNAL;
	} else {
		exit_code = KB_EXIT_OK;
	}
	print_summary(&run);
	if (opts->mode == KB_MODE_RUN &&
	    pipeline_write_status(&run, opts->command, exit_code, started_wall, cfg->status_file,
				  &err) < 0)
		log_warn("cannot write the status file: %s", err.msg);
	kb_run_release(&run);
	if (lock >= 0)
		close(lock);
	return exit_code;
}
