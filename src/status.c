/* status.c: `kafka-bootstrap status`: what the last run did, read back from the status file.
 * Read only. --json prints {"schema":1,"last_run":<status file or null>}. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/cli.h"
#include "kb/file.h"
#include "kb/log.h"

static const char *member(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "?";
}

static void print_stage(json_t *stage)
{
	json_t *changes = json_object_get(stage, "changes");
	const char *error = json_string_value(json_object_get(stage, "error"));
	const char *detail = json_string_value(json_object_get(stage, "detail"));
	size_t i;
	json_t *change;

	printf("  %-10s %-7s %6lld ms%s%s\n",
	       member(stage, "name"),
	       member(stage, "outcome"),
	       (long long)json_integer_value(json_object_get(stage, "duration_ms")),
	       error || detail ? "  " : "", error ? error : detail ? detail : "");
	json_array_foreach(changes, i, change)
		printf("      %s\n", json_is_string(change) ? json_string_value(change) : "");
}

int status_command(const struct kb_options *opts, const struct kb_config *cfg)
{
	struct kb_error err = {{0}};
	json_error_t jerr;
	json_t *root = NULL;
	json_t *stages;
	json_t *stage;
	char *text = NULL;
	size_t len;
	size_t i;
	int ret;

	ret = file_read_all(cfg->status_file, &text, &len, &err);
	if (ret == -ENOENT) {
		/* Not an error: a node that has not booted the tool yet has nothing to report. */
		if (opts->json)
			printf("{\"schema\": 1, \"last_run\": null}\n");
		else
			printf("no run recorded: %s does not exist (kafka-bootstrap run has not run "
			       "since boot)\n", cfg->status_file);
		return KB_EXIT_OK;
	}
	if (ret < 0) {
		log_error("status: %s", err.msg);
		return KB_EXIT_UNAVAILABLE;
	}
	root = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!root || !json_is_object(root)) {
		log_error("status: %s is not a status file: %s", cfg->status_file,
			  root ? "not an object" : jerr.text);
		json_decref(root);
		return KB_EXIT_INTERNAL;
	}
	if (opts->json) {
		json_t *report = json_pack("{s:i, s:O}", "schema", 1, "last_run", root);

		json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(report);
	} else {
		json_t *id = json_object_get(root, "broker_id");

		printf("last %s: started %s, exit %lld (%s)\n",
		       member(root, "command"),
		       member(root, "started_at"),
		       (long long)json_integer_value(json_object_get(root, "exit_code")),
		       member(root, "exit_name"));
		if (json_is_integer(id))
			printf("broker id: %lld\n", (long long)json_integer_value(id));
		else
			printf("broker id: none\n");
		stages = json_object_get(root, "stages");
		json_array_foreach(stages, i, stage)
			print_stage(stage);
	}
	json_decref(root);
	return KB_EXIT_OK;
}
