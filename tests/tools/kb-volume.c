/* kb-volume: runs the volume stage without IMDS and ZooKeeper. Test-only, never installed.
 *
 *   KAFKA_BOOTSTRAP_DEV_ROOT=... KAFKA_BOOTSTRAP_MOUNT_POINT=... \
 *     kb-volume --broker-id 3 --volume-id vol-0abc [--device /dev/sdg] [--plan]
 *               [--prerequisite] [--deadline-ms N]
 *   AWS_ENDPOINT_URL_EC2=... AWS_REGION=... AWS_ACCESS_KEY_ID=... \
 *     kb-volume --broker-id 3 --instance-id i-0abc --az us-east-1a [--plan]
 *               [--taken-over-from i-0old] ...
 *
 * The first form runs the local half (volume_prepare) on the volume id's device. The second
 * runs the whole stage (volume_stage): first the real discover stage (its two Describe calls
 * and its candidates), then it plays the claim (the broker id given, as if held already, or
 * as if just taken over from the stopped instance --taken-over-from names).
 *
 * Settings come from KAFKA_BOOTSTRAP_* variables as in the real tool. Prints one line per
 * change ("change: ...") and "device: <path>" on stdout, the error on stderr, and exits with
 * the tool's exit code for the result. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/aws.h"
#include "kb/claim.h"
#include "kb/config.h"
#include "kb/ec2.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/pipeline.h"
#include "kb/stages.h"
#include "kb/volume.h"

extern char **environ;

/* What discover and claim would leave in run for the volume stage: the id given, with the
 * resources discover found for it (none when it is no candidate). */
static int discover_volumes(struct kb_run *run, struct kb_broker *bare)
{
	struct aws_ctx_options opts = {.max_attempts = 0};
	int ret;

	run->aws = aws_ctx_new(&opts, run->stage_deadline, &run->err);
	if (!run->aws)
		return -KB_EUNAVAIL;
	ret = discover_stage(run);
	/* An AZ with no candidate stops the real run in discover; here the id is given, and
	 * the volume stage says why its volume cannot be used. */
	if (ret == -KB_ENOID && run->candidate_count == 0)
		kb_error_clear(&run->err);
	else if (ret < 0)
		return ret;
	bare->id = run->broker_id;
	run->broker = bare;
	for (size_t i = 0; i < run->candidate_count; i++) {
		if (run->candidates[i].id == run->broker_id)
			run->broker = &run->candidates[i];
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"broker-id", required_argument, NULL, 'b'},
		{"volume-id", required_argument, NULL, 'v'},
		{"device", required_argument, NULL, 'd'},
		{"deadline-ms", required_argument, NULL, 't'},
		{"plan", no_argument, NULL, 'p'},
		{"prerequisite", no_argument, NULL, 'r'},
		{"instance-id", required_argument, NULL, 'i'},
		{"az", required_argument, NULL, 'z'},
		{"taken-over-from", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct kb_error err = {{0}};
	struct kb_config *cfg = config_new();
	const char *volume_id = NULL, *device = NULL, *instance_id = NULL, *az = NULL;
	const char *taken_from = NULL;
	struct kb_broker broker = {.id = -1};
	long long deadline_ms = 10000;
	enum kb_run_mode mode = KB_MODE_RUN;
	bool prerequisite = false;
	int broker_id = -1, c, ret, code;
	struct kb_run run;

	log_init(LOG_LEVEL_INFO);
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'b': broker_id = atoi(optarg); break;
		case 'v': volume_id = optarg; break;
		case 'd': device = optarg; break;
		case 't': deadline_ms = atoll(optarg); break;
		case 'p': mode = KB_MODE_PLAN; break;
		case 'r': prerequisite = true; break;
		case 'i': instance_id = optarg; break;
		case 'z': az = optarg; break;
		case 'o': taken_from = optarg; break;
		default: return KB_EXIT_USAGE;
		}
	}
	if (!cfg || broker_id < 0 || (!volume_id && (!instance_id || !az))) {
		fprintf(stderr, "usage: kb-volume --broker-id N (--volume-id vol-... | "
			"--instance-id i-... --az AZ) [...]\n");
		return KB_EXIT_USAGE;
	}
	if (config_load_env(cfg, environ, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return KB_EXIT_CONFIG;
	}
	log_set_level((enum log_level)cfg->log_level);
	kb_run_init(&run, cfg, mode);
	run.prerequisite = prerequisite;
	run.broker_id = broker_id;
	run.current_stage = STAGE_VOLUME;
	if (taken_from && (run.claim = calloc(1, sizeof(*run.claim)))) {
		run.claim->broker_id = broker_id;
		run.claim->how = CLAIM_TAKEN_OVER;
		run.claim->previous_owner = strdup(taken_from);
		run.claim->previous_state = CLAIM_OWNER_STOPPED;
	}
	run.stage_deadline = deadline_after_ms(deadline_ms);
	if (volume_id) {
		ret = volume_prepare(&run, volume_id, device ? device : cfg->volume_device);
	} else {
		run.identity.instance_id = strdup(instance_id);
		run.identity.az = strdup(az);
		ret = discover_volumes(&run, &broker);
		if (ret == 0)
			ret = volume_stage(&run);
	}
	for (size_t i = 0; i < run.results[STAGE_VOLUME].change_count; i++)
		printf("change: %s\n", run.results[STAGE_VOLUME].changes[i]);
	if (run.device)
		printf("device: %s\n", run.device);
	if (ret < 0)
		fprintf(stderr, "error: %s\n", run.err.msg);
	code = kb_exit_code(ret);
	kb_run_release(&run);
	config_free(cfg);
	return code;
}
