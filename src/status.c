/* status.c: `kafka-bootstrap status`: this node as it is now, and what the last run did.
 *
 * The live part is the pipeline in plan mode: every stage looks at the system exactly as a run
 * would and reports what it would change, so "in place" means what `run` means by it, with
 * no second description of the node to drift. Then what a person asks next: the broker's
 * routing, a digest of server.properties, Kafka's registration. Read only, like plan (plan's
 * DryRun attach calls included); never writes the status file. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/claim.h"
#include "kb/cli.h"
#include "kb/deadline.h"
#include "kb/ec2.h"
#include "kb/file.h"
#include "kb/log.h"
#include "kb/network.h"
#include "kb/pipeline.h"
#include "kb/zk.h"

static const char *member(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "?";
}

/* The last run's status file; NULL when none (the node has not run the tool since boot). */
static json_t *load_last_run(const struct kb_config *cfg)
{
	struct kb_error err = {{0}};
	json_error_t jerr;
	json_t *root;
	char *text = NULL;
	size_t len;
	int ret = file_read_all(cfg->status_file, &text, &len, &err);

	if (ret < 0) {
		if (ret != -ENOENT)
			log_warn("status: %s", err.msg);
		return NULL;
	}
	root = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!root || !json_is_object(root)) {
		log_warn("status: %s is not a status file: %s", cfg->status_file,
			 root ? "not an object" : jerr.text);
		json_decref(root);
		return NULL;
	}
	return root;
}

static json_t *or_null(json_t *value)
{
	return value ? value : json_null();
}

static const char *stage_state(const struct stage_result *r)
{
	switch (r->outcome) {
	case OUTCOME_OK:
		return "in place";
	case OUTCOME_CHANGED:
		return "needs change";
	case OUTCOME_SKIPPED:
		return "skipped";
	case OUTCOME_FAILED:
		return "failed";
	default:
		return "not checked";
	}
}

static json_t *live_stages_json(const struct kb_run *run)
{
	json_t *stages = json_array();

	for (int i = 0; stages && i < STAGE_SIGNAL; i++) {
		const struct stage_result *r = &run->results[i];
		json_t *changes = json_array();

		for (size_t c = 0; changes && c < r->change_count; c++)
			json_array_append_new(changes, json_string(r->changes[c]));
		json_array_append_new(stages, json_pack("{s:s, s:s, s:o, s:s*}", "name",
							pipeline_stage_name(i), "state",
							stage_state(r), "changes", changes,
							"detail", r->detail));
	}
	return stages;
}

/* sha256 of server.properties as hex, so two nodes' files can be compared by eye. */
static char *file_digest_new(const char *path)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char *data = NULL, *hex = NULL;
	size_t len;

	if (file_read_all(path, &data, &len, NULL) < 0)
		goto out;
	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL))
		goto out;
	hex = malloc(2 * md_len + 1);
	for (unsigned int i = 0; hex && i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
	free(data);
	return hex;
}

/* Kafka's own registration, /brokers/ids/<id>: JSON as Kafka wrote it, or NULL. */
static json_t *registration_json(const struct kb_config *cfg, int broker_id)
{
	struct zk_options zopts = {.connect = cfg->zookeeper_connect,
				   .auth = cfg->zookeeper_auth,
				   .session_timeout_ms = cfg->zookeeper_session_timeout_ms};
	int64_t deadline = deadline_after_ms(5000);
	struct kb_error err = {{0}};
	struct zk *zk = NULL;
	json_t *reg = NULL;
	char path[64], *data = NULL;
	size_t len = 0;
	int ret;

	if (broker_id < 0 || !cfg->zookeeper_connect[0])
		return NULL;
	snprintf(path, sizeof(path), "/brokers/ids/%d", broker_id);
	ret = zk_open(&zopts, deadline, &zk, &err);
	if (ret == 0)
		ret = zk_get(zk, path, deadline, &data, &len, NULL, &err);
	if (ret == 0)
		reg = json_loadb(data, len, 0, NULL);
	else if (ret != -ENOENT)
		log_warn("status: reading %s: %s", path, err.msg);
	free(data);
	zk_close(zk);
	return reg;
}

static char *network_text_new(const struct kb_config *cfg)
{
	struct kb_error err = {{0}};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return NULL;
	if (network_status(cfg, out, &err) < 0)
		fprintf(out, "unknown: %s\n", err.msg);
	fclose(out);
	return text;
}

/* The id this node holds, -1 for none. Read in plan mode, the claim stage also names the id a
 * run would claim: that is no id of this node's, nor are its ENI and volume. */
static int held_broker_id(const struct kb_run *run)
{
	return run->claim && !run->claim->planned ? run->broker_id : -1;
}

static json_t *node_json(const struct kb_run *run, const struct kb_config *cfg)
{
	int broker_id = held_broker_id(run);
	const struct kb_broker *broker = broker_id >= 0 ? run->broker : NULL;
	const struct ec2_eni *eni = broker ? broker->eni : NULL;
	const struct ec2_volume *vol = broker ? broker->volume : NULL;
	char *digest = file_digest_new(cfg->properties_path);
	char *network = network_text_new(cfg);
	json_t *node;

	node = json_pack("{s:s*, s:s*, s:s*, s:o, s:s*, s:s*, s:s*, s:s*, s:s*, s:s*, s:s*, s:s, "
			 "s:s, s:s*, s:s*}",
			 "instance_id", run->identity.instance_id, "az", run->identity.az,
			 "az_id", run->identity.az_id, "broker_id",
			 broker_id >= 0 ? json_integer(broker_id) : json_null(),
			 "eni_id", eni ? eni->id : NULL, "ip", eni ? eni->private_ip : NULL,
			 "eni_attachment", eni ? eni->attachment_status : NULL, "interface",
			 run->ifname, "volume_id", vol ? vol->id : NULL, "volume_attachment",
			 vol ? vol->attachment_status : NULL, "device", run->device, "mount_point",
			 cfg->mount_point, "properties_path", cfg->properties_path,
			 "properties_sha256", digest, "network", network);
	free(digest);
	free(network);
	return node;
}

static void print_human(json_t *report)
{
	json_t *node = json_object_get(report, "node");
	json_t *reg = json_object_get(report, "kafka_registration");
	json_t *last = json_object_get(report, "last_run");
	json_t *stage, *change;
	size_t i, c;

	printf("node %s in %s (%s)\n", member(node, "instance_id"), member(node, "az"),
	       member(node, "az_id"));
	if (json_is_integer(json_object_get(node, "broker_id")))
		printf("broker id %lld\n",
		       (long long)json_integer_value(json_object_get(node, "broker_id")));
	else
		printf("broker id: none held\n");
	printf("eni %s %s (%s), interface %s\n", member(node, "eni_id"), member(node, "ip"),
	       member(node, "eni_attachment"), member(node, "interface"));
	printf("volume %s (%s) %s at %s\n", member(node, "volume_id"),
	       member(node, "volume_attachment"), member(node, "device"),
	       member(node, "mount_point"));
	printf("%s sha256 %s\n", member(node, "properties_path"),
	       member(node, "properties_sha256"));
	if (json_is_object(reg)) {
		char *endpoints = json_dumps(json_object_get(reg, "endpoints"),
					     JSON_COMPACT | JSON_ENCODE_ANY);

		printf("kafka registered: %s\n", endpoints ? endpoints : "?");
		free(endpoints);
	} else {
		printf("kafka: not registered\n");
	}
	printf("live check (what run would change):\n");
	json_array_foreach(json_object_get(report, "stages"), i, stage) {
		const char *detail = json_string_value(json_object_get(stage, "detail"));

		printf("  %-10s %-12s%s%s\n", member(stage, "name"), member(stage, "state"),
		       detail ? "  " : "", detail ? detail : "");
		json_array_foreach(json_object_get(stage, "changes"), c, change)
			printf("      %s\n", json_string_value(change));
	}
	printf("network:\n%s", member(node, "network"));
	if (!json_is_object(last)) {
		printf("no run recorded (kafka-bootstrap run has not run since boot)\n");
		return;
	}
	printf("last %s: started %s, exit %lld (%s)%s%s\n", member(last, "command"),
	       member(last, "started_at"),
	       (long long)json_integer_value(json_object_get(last, "exit_code")),
	       member(last, "exit_name"), json_is_string(json_object_get(last, "error")) ? ": " : "",
	       json_is_string(json_object_get(last, "error")) ? member(last, "error") : "");
}

int status_command(const struct kb_options *opts, const struct kb_config *cfg)
{
	enum log_level level = log_get_level();
	struct kb_run run;
	json_t *report;
	char *text;

	/* The stages narrate at info; the report is the answer here. */
	if (level == LOG_LEVEL_INFO)
		log_set_level(LOG_LEVEL_WARN);
	kb_run_init(&run, cfg, KB_MODE_PLAN);
	pipeline_execute(&run, -1, false);
	report = json_pack("{s:i, s:o, s:o, s:o, s:o}", "schema", 1, "node", node_json(&run, cfg),
			   "stages", live_stages_json(&run), "kafka_registration",
			   or_null(registration_json(cfg, held_broker_id(&run))), "last_run",
			   or_null(load_last_run(cfg)));
	log_set_level(level);
	kb_run_release(&run);
	if (!report) {
		log_error("status: out of memory");
		return KB_EXIT_INTERNAL;
	}
	if (opts->json) {
		text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			printf("%s\n", text);
		free(text);
	} else {
		print_human(report);
	}
	json_decref(report);
	return KB_EXIT_OK;
}
