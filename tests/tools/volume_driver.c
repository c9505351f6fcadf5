/* volume_driver: runs the local half of the volume stage (volume_prepare) on a device the
 * test chose, without IMDS, EC2 or ZooKeeper. Test-only, never installed.
 *
 *   KAFKA_BOOTSTRAP_DEV_ROOT=... KAFKA_BOOTSTRAP_MOUNT_POINT=... \
 *     volume_driver --broker-id 3 --volume-id vol-0abc [--device /dev/sdg] [--plan]
 *                   [--prerequisite] [--deadline-ms N]
 *
 * Settings come from KAFKA_BOOTSTRAP_* variables as in the real tool. Prints one line per
 * change ("change: ...") and "device: <path>" on stdout, the error on stderr, and exits with
 * the tool's exit code for the result. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/config.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/pipeline.h"
#include "kb/volume.h"

extern char **environ;

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"broker-id", required_argument, NULL, 'b'},
		{"volume-id", required_argument, NULL, 'v'},
		{"device", required_argument, NULL, 'd'},
		{"deadline-ms", required_argument, NULL, 't'},
		{"plan", no_argument, NULL, 'p'},
		{"prerequisite", no_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	struct kb_error err = {{0}};
	struct kb_config *cfg = config_new();
	const char *volume_id = NULL, *device = NULL;
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
		default: return KB_EXIT_USAGE;
		}
	}
	if (!cfg || broker_id < 0 || !volume_id) {
		fprintf(stderr, "usage: volume_driver --broker-id N --volume-id vol-... [...]\n");
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
	run.stage_deadline = deadline_after_ms(deadline_ms);
	ret = volume_prepare(&run, volume_id, device ? device : cfg->volume_device);
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
