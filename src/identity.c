/* identity.c: the identity stage. Learns who this instance is from IMDSv2 and sets up the
 * IMDS and AWS clients every later stage uses. Reads only, in run and plan mode alike, and
 * spends as few IMDS calls as it can (the boot budget is 10 for all stages): the identity
 * document gives instance id, AZ, region, private IP and account in one GET, so the stage
 * makes 4 calls in all (token PUT, document, availability-zone-id, mac). */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kb/aws.h"
#include "kb/imds.h"
#include "kb/log.h"
#include "kb/private/identity.h"
#include "kb/stages.h"

/* A metadata value as one token: trailing newline dropped, nothing empty or spaced. */
static int take_value(char **slot, const char *value, const char *what, struct kb_error *err)
{
	size_t n = strcspn(value, "\r\n");

	if (n == 0 || n > 255)
		return kb_errorf(err, EINVAL, "instance metadata: %s is empty or too long", what);
	for (size_t i = 0; i < n; i++) {
		if (!isgraph((unsigned char)value[i]))
			return kb_errorf(err, EINVAL, "instance metadata: %s '%.*s' is malformed",
					 what, (int)n, value);
	}
	free(*slot);
	*slot = strndup(value, n);
	return *slot ? 0 : kb_errorf(err, ENOMEM, "out of memory");
}

int identity_parse_document(struct kb_identity *id, const char *text, struct kb_error *err)
{
	static const struct {
		const char *key;
		size_t offset;
	} fields[] = {
		{"instanceId", offsetof(struct kb_identity, instance_id)},
		{"availabilityZone", offsetof(struct kb_identity, az)},
		{"region", offsetof(struct kb_identity, region)},
		{"privateIp", offsetof(struct kb_identity, private_ip)},
		{"accountId", offsetof(struct kb_identity, account_id)},
	};
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	int ret = 0;

	if (!json_is_object(doc)) {
		json_decref(doc);
		return kb_errorf(err, EINVAL, "instance identity document: not a JSON object (%s)",
				 jerr.text);
	}
	for (size_t i = 0; ret == 0 && i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = json_string_value(json_object_get(doc, fields[i].key));
		char **slot = (char **)((char *)id + fields[i].offset);

		if (!v)
			ret = kb_errorf(err, EINVAL, "instance identity document: no %s",
					fields[i].key);
		else
			ret = take_value(slot, v, fields[i].key, err);
	}
	json_decref(doc);
	return ret;
}

static int read_key(struct kb_run *run, const char *path, char **slot)
{
	char *value = NULL;
	int ret = imds_get(run->imds, path, run->stage_deadline, &value, &run->err);

	if (ret == 0)
		ret = take_value(slot, value, path, &run->err);
	free(value);
	return ret;
}

static int read_identity(struct kb_run *run)
{
	char *doc = NULL;
	int ret;

	ret = imds_get(run->imds, "dynamic/instance-identity/document", run->stage_deadline, &doc,
		       &run->err);
	if (ret == 0)
		ret = identity_parse_document(&run->identity, doc, &run->err);
	free(doc);
	if (ret == 0)
		ret = read_key(run, "meta-data/placement/availability-zone-id",
			       &run->identity.az_id);
	if (ret == 0)
		ret = read_key(run, "meta-data/mac", &run->identity.mac);
	return ret;
}

int identity_stage(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	struct imds_options imds_opts = {
		.connect_timeout_ms = cfg->http_connect_timeout_ms,
		.timeout_ms = cfg->http_timeout_ms,
	};
	/* The environment's region wins, as in the SDKs; else the instance's own, which the
	 * document already gave (no placement/region call). */
	struct aws_ctx_options aws_opts = {
		.max_attempts = cfg->aws_max_attempts,
		.connect_timeout_ms = cfg->http_connect_timeout_ms,
		.timeout_ms = cfg->http_timeout_ms,
	};
	int ret;

	if (!run->imds) {
		run->imds = imds_client_new(&imds_opts, &run->err);
		if (!run->imds)
			return -KB_ECONFIG;
	}
	ret = read_identity(run);
	if (ret < 0) {
		kb_error_prefix(&run->err, "identity");
		return ret;
	}
	aws_opts.region = aws_env_region() ? aws_env_region() : run->identity.region;
	aws_opts.imds = run->imds;
	if (!run->aws) {
		run->aws = aws_ctx_new(&aws_opts, run->stage_deadline, &run->err);
		if (!run->aws)
			return -KB_ECONFIG;
	}
	log_info("identity: %s in %s (%s), region %s, account %s, %s, mac %s%s%s",
		 run->identity.instance_id, run->identity.az, run->identity.az_id,
		 run->identity.region, run->identity.account_id, run->identity.private_ip,
		 run->identity.mac,
		 strcmp(aws_ctx_region(run->aws), run->identity.region) != 0 ? "; AWS calls go to "
									      : "",
		 strcmp(aws_ctx_region(run->aws), run->identity.region) != 0
			 ? aws_ctx_region(run->aws)
			 : "");
	return 0;
}
