/* claimer.c: a test-only driver of the claim module, for the race tests and bench/claim.
 *
 * It links the same kbcore the tool runs, with candidates and owner states given on the
 * command line instead of EC2, so a test can start dozens of claimers against a real
 * ZooKeeper. --naive replaces the claim with the seed design (read which ids are taken, pick
 * the lowest free, write it without any atomicity): the race tests run it too and must catch
 * it, or they prove nothing. Never part of the product.
 *
 *   claimer --connect 127.0.0.1:2181/kb --instance i-1 --candidates 0-31 \
 *           [--owner i-9=terminated ...] [--barrier FIFO] [--naive] [--plan] ...
 *
 * Prints "ready" once connected (then waits for the barrier FIFO to be opened for writing),
 * and one JSON line with the outcome. Exit code: the tool's (10 no id, 69 unreachable...). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb/claim.h"
#include "kb/config.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/zk.h"

struct owner {
	char *id;
	enum claim_owner_state state;
};

struct args {
	const char *instance;
	const char *barrier;
	const char *cluster;
	const char *owners_file; /* JSON {"i-1": "terminated"}, read at every question */
	struct claim_candidate *cands;
	size_t cand_count;
	struct owner *owners;
	size_t owner_count;
	enum claim_owner_state default_state;
	unsigned owner_calls;
	int64_t deadline_ms;
	bool naive, plan, existing_only, release, force;
};

static int add_candidate(struct args *a, int id)
{
	struct claim_candidate *grown = realloc(a->cands, (a->cand_count + 1) * sizeof(*grown));
	char *eni = NULL, *vol = NULL;

	if (!grown)
		return -ENOMEM;
	a->cands = grown;
	if (asprintf(&eni, "eni-%04d", id) < 0 || asprintf(&vol, "vol-%04d", id) < 0)
		return -ENOMEM;
	a->cands[a->cand_count++] = (struct claim_candidate){id, eni, vol};
	return 0;
}

/* "0-31", "0,2,5" or both: "0-3,8". */
static int parse_candidates(struct args *a, const char *spec)
{
	char *copy = strdup(spec);
	char *save = NULL;
	int ret = copy ? 0 : -ENOMEM;

	for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && ret == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		int lo, hi;

		if (sscanf(tok, "%d-%d", &lo, &hi) != 2)
			hi = lo = atoi(tok);
		for (int id = lo; id <= hi && ret == 0; id++)
			ret = add_candidate(a, id);
	}
	free(copy);
	return ret;
}

static int parse_owner(struct args *a, const char *spec)
{
	const char *eq = strchr(spec, '=');
	struct owner *grown;

	if (!eq)
		return -EINVAL;
	grown = realloc(a->owners, (a->owner_count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	a->owners = grown;
	a->owners[a->owner_count].id = strndup(spec, (size_t)(eq - spec));
	if (claim_owner_state_parse(eq + 1, &a->owners[a->owner_count].state) < 0)
		return -EINVAL;
	a->owner_count++;
	return 0;
}

static int owner_states(void *ctx, const char *const *ids, size_t count, int64_t deadline,
			enum claim_owner_state *states, struct kb_error *err)
{
	struct args *a = ctx;
	json_t *file = a->owners_file ? json_load_file(a->owners_file, 0, NULL) : NULL;

	(void)deadline;
	(void)err;
	a->owner_calls++;
	for (size_t i = 0; i < count; i++) {
		const char *name = json_string_value(json_object_get(file, ids[i]));

		states[i] = a->default_state;
		for (size_t o = 0; o < a->owner_count; o++) {
			if (strcmp(a->owners[o].id, ids[i]) == 0)
				states[i] = a->owners[o].state;
		}
		if (name && claim_owner_state_parse(name, &states[i]) < 0)
			states[i] = a->default_state;
	}
	json_decref(file);
	return 0;
}

/* Blocks until the test opens the FIFO for writing: every claimer goes at once. */
static void barrier(const char *path)
{
	int fd;

	printf("ready\n");
	fflush(stdout);
	if (!path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
}

static const char *const how_names[] = {"held", "claimed", "taken_over"};

static void print_result(const struct args *a, int ret, const struct claim *claim,
			 unsigned long ops, int64_t started, const struct kb_error *err)
{
	json_t *root = json_pack("{s:s, s:i, s:I, s:I, s:I, s:i}", "instance", a->instance,
				 "exit", kb_exit_code(ret), "ops", (json_int_t)ops, "elapsed_ms",
				 (json_int_t)(deadline_now_ms() - started), "done_mono_ms",
				 (json_int_t)deadline_now_ms(), "owner_calls", (int)a->owner_calls);
	char *text;

	if (claim) {
		json_object_set_new(root, "broker_id", json_integer(claim->broker_id));
		json_object_set_new(root, "outcome", json_string(a->release ? "released"
						     : claim->planned ? "planned"
						     : how_names[claim->how]));
		if (claim->previous_owner)
			json_object_set_new(root, "previous_owner",
					    json_string(claim->previous_owner));
		if (claim->how == CLAIM_TAKEN_OVER)
			json_object_set_new(root, "previous_state", json_string(
				claim_owner_state_name(claim->previous_state)));
		if (claim->reason)
			json_object_set_new(root, "reason", json_string(claim->reason));
	}
	else if (ret == 0)
		json_object_set_new(root, "outcome", json_string("nothing"));
	if (ret < 0)
		json_object_set_new(root, "error", json_string(err->msg));
	text = json_dumps(root, JSON_COMPACT);
	printf("%s\n", text ? text : "{}");
	fflush(stdout);
	free(text);
	json_decref(root);
}

/* The seed design, on purpose: a listing, the lowest free id, then a write that does not
 * check whether somebody wrote in between. */
static int naive_claim(struct zk *zk, const struct args *a, int64_t deadline,
		       struct claim **out, struct kb_error *err)
{
	char dir[256], path[300], *json = NULL;
	char **names = NULL;
	size_t count = 0;
	struct claim *claim = NULL;
	int ret;

	snprintf(dir, sizeof(dir), "/kafka-bootstrap/%s/claims", a->cluster);
	ret = zk_create_path(zk, dir, deadline, err);
	if (ret == 0)
		ret = zk_children(zk, dir, deadline, &names, &count, err);
	for (size_t c = 0; ret == 0 && c < a->cand_count && !claim; c++) {
		bool taken = false;
		char id[16];

		snprintf(id, sizeof(id), "%d", a->cands[c].broker_id);
		for (size_t i = 0; i < count; i++)
			taken |= strcmp(names[i], id) == 0;
		if (!taken) {
			claim = calloc(1, sizeof(*claim));
			claim->broker_id = a->cands[c].broker_id;
			claim->how = CLAIM_CREATED;
			claim->instance_id = strdup(a->instance);
		}
	}
	zk_names_free(names, count);
	if (ret < 0)
		return ret;
	if (!claim)
		return kb_errorf(err, KB_ENOID, "naive: no free id");
	snprintf(path, sizeof(path), "%s/%d", dir, claim->broker_id);
	json = claim_record_json(claim);
	struct zk_op create = {ZK_OP_CREATE, path, json, strlen(json), -1};
	struct zk_op set = {ZK_OP_SET, path, json, strlen(json), -1};

	ret = zk_multi(zk, &create, 1, deadline, NULL, NULL, err);
	if (ret == -EEXIST)
		ret = zk_multi(zk, &set, 1, deadline, NULL, NULL, err);
	free(json);
	if (ret < 0) {
		claim_free(claim);
		return ret;
	}
	*out = claim;
	return 0;
}

static int run_naive(struct kb_config *cfg, const struct args *a, int64_t deadline,
		     struct claim **out, unsigned long *ops, struct kb_error *err,
		     int64_t *started)
{
	struct zk_options opts = {.connect = cfg->zookeeper_connect,
				  .auth = cfg->zookeeper_auth,
				  .session_timeout_ms = cfg->zookeeper_session_timeout_ms};
	struct zk *zk = NULL;
	int ret = zk_open(&opts, deadline, &zk, err);

	if (ret == 0) {
		barrier(a->barrier);
		*started = deadline_now_ms();
		ret = naive_claim(zk, a, deadline, out, err);
		*ops = zk_request_count(zk);
	}
	zk_close(zk);
	return ret;
}

static int run_claim(struct kb_config *cfg, struct args *a, int64_t deadline,
		     struct claim **out, unsigned long *ops, struct kb_error *err,
		     int64_t *started)
{
	struct claim_backend *backend = NULL;
	struct claim_request req = {
		.instance_id = a->instance,
		.az = "us-east-1a",
		.az_id = "use1-az1",
		.candidates = a->cands,
		.candidate_count = a->cand_count,
		.take_over_stopped = cfg->take_over_stopped,
		.grace_period_s = cfg->claim_grace_period_s,
		.plan = a->plan,
		.existing_only = a->existing_only,
		.owner_states = owner_states,
		.owner_ctx = a,
	};
	int ret = claim_open(cfg, deadline, &backend, err);

	if (ret == 0) {
		barrier(a->barrier);
		*started = deadline_now_ms();
		if (a->release) {
			ret = claim_release(backend, a->instance, a->force, deadline, out, err);
			if (ret == -ENOENT) /* as the release command: nothing to do */
				ret = 0;
		} else
			ret = claim_acquire(backend, &req, deadline, out, err);
	}
	*ops = claim_op_count(backend);
	claim_close(backend);
	return ret;
}

enum { OPT_CONNECT = 0x100, OPT_AUTH, OPT_INSTANCE, OPT_CANDIDATES, OPT_OWNER, OPT_DEFAULT,
       OPT_GRACE, OPT_STOPPED, OPT_DEADLINE, OPT_SESSION, OPT_BARRIER, OPT_NAIVE, OPT_PLAN,
       OPT_EXISTING, OPT_RELEASE, OPT_FORCE, OPT_CLUSTER, OPT_LOG, OPT_OWNERS_FILE };

static const struct option options[] = {
	{"connect", required_argument, NULL, OPT_CONNECT},
	{"auth", required_argument, NULL, OPT_AUTH},
	{"instance", required_argument, NULL, OPT_INSTANCE},
	{"candidates", required_argument, NULL, OPT_CANDIDATES},
	{"owner", required_argument, NULL, OPT_OWNER},
	{"default-state", required_argument, NULL, OPT_DEFAULT},
	{"grace", required_argument, NULL, OPT_GRACE},
	{"take-over-stopped", no_argument, NULL, OPT_STOPPED},
	{"deadline-ms", required_argument, NULL, OPT_DEADLINE},
	{"session-timeout-ms", required_argument, NULL, OPT_SESSION},
	{"barrier", required_argument, NULL, OPT_BARRIER},
	{"naive", no_argument, NULL, OPT_NAIVE},
	{"plan", no_argument, NULL, OPT_PLAN},
	{"existing-only", no_argument, NULL, OPT_EXISTING},
	{"release", no_argument, NULL, OPT_RELEASE},
	{"force", no_argument, NULL, OPT_FORCE},
	{"cluster", required_argument, NULL, OPT_CLUSTER},
	{"log-level", required_argument, NULL, OPT_LOG},
	{"owners-file", required_argument, NULL, OPT_OWNERS_FILE},
	{NULL, 0, NULL, 0},
};

/* Config keys set from options, the same way --set does in the tool. */
static int parse_args(int argc, char *argv[], struct args *a, struct kb_config *cfg,
		      struct kb_error *err)
{
	static const char *const keys[] = {
		[OPT_CONNECT - OPT_CONNECT] = "zookeeper_connect",
		[OPT_AUTH - OPT_CONNECT] = "zookeeper_auth",
		[OPT_GRACE - OPT_CONNECT] = "claim_grace_period_s",
		[OPT_SESSION - OPT_CONNECT] = "zookeeper_session_timeout_ms",
		[OPT_CLUSTER - OPT_CONNECT] = "cluster",
		[OPT_LOG - OPT_CONNECT] = "log_level",
	};
	int opt, ret = 0;

	a->default_state = CLAIM_OWNER_RUNNING;
	a->deadline_ms = 30000;
	while (ret == 0 && (opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_INSTANCE: a->instance = optarg; break;
		case OPT_CANDIDATES: ret = parse_candidates(a, optarg); break;
		case OPT_OWNER: ret = parse_owner(a, optarg); break;
		case OPT_DEFAULT: ret = claim_owner_state_parse(optarg, &a->default_state); break;
		case OPT_STOPPED: cfg->take_over_stopped = true; break;
		case OPT_DEADLINE: a->deadline_ms = atoll(optarg); break;
		case OPT_BARRIER: a->barrier = optarg; break;
		case OPT_OWNERS_FILE: a->owners_file = optarg; break;
		case OPT_NAIVE: a->naive = true; break;
		case OPT_PLAN: a->plan = true; break;
		case OPT_EXISTING: a->existing_only = true; break;
		case OPT_RELEASE: a->release = true; break;
		case OPT_FORCE: a->force = true; break;
		case OPT_CONNECT: case OPT_AUTH: case OPT_GRACE: case OPT_SESSION:
		case OPT_CLUSTER: case OPT_LOG:
			ret = config_set(cfg, keys[opt - OPT_CONNECT], optarg, "command line", err);
			break;
		default: ret = -EINVAL;
		}
	}
	if (ret == 0 && !a->instance)
		ret = -EINVAL;
	a->cluster = cfg->cluster[0] ? cfg->cluster : "default";
	return ret;
}

int main(int argc, char *argv[])
{
	struct kb_config *cfg = config_new();
	struct args a = {0};
	struct kb_error err = {{0}};
	struct claim *claim = NULL;
	unsigned long ops = 0;
	int64_t started = deadline_now_ms();
	int64_t deadline;
	int ret;

	log_init(LOG_LEVEL_INFO);
	log_set_console(NULL);
	if (!cfg || parse_args(argc, argv, &a, cfg, &err) < 0) {
		fprintf(stderr, "claimer: bad arguments %s (see the opening comment)\n", err.msg);
		return 64;
	}
	log_set_level((enum log_level)cfg->log_level);
	config_register_secrets(cfg);
	deadline = deadline_after_ms(a.deadline_ms);
	if (a.naive)
		ret = run_naive(cfg, &a, deadline, &claim, &ops, &err, &started);
	else
		ret = run_claim(cfg, &a, deadline, &claim, &ops, &err, &started);
	print_result(&a, ret, claim, ops, started, &err);
	claim_free(claim);
	for (size_t i = 0; i < a.cand_count; i++) {
		free((char *)a.cands[i].eni_id);
		free((char *)a.cands[i].volume_id);
	}
	free(a.cands);
	for (size_t i = 0; i < a.owner_count; i++)
		free(a.owners[i].id);
	free(a.owners);
	config_free(cfg);
	log_clear_secrets();
	return kb_exit_code(ret);
}
