/* kb-ec2 COMMAND ARGS...: calls one function of ec2.c, cfn.c or autoscaling.c through the real
 * aws_query (endpoints, credentials and region from the AWS_* environment) and prints one JSON
 * object: {"ret", "code", "error", "result"}. Test-only (tests/ec2): the exit status is 0
 * whenever the JSON was printed, 64 for a usage error.
 *
 *   describe-enis [NAME=VALUE...]       filters; repeating a NAME adds an OR value
 *   describe-volumes [NAME=VALUE...]
 *   describe-eni ID | describe-volume ID | describe-instances ID... | describe-tags ID
 *   attach-eni ENI INSTANCE DEVICE_INDEX CARD [dry-run]
 *   attach-volume VOLUME INSTANCE DEVICE [dry-run]
 *   detach-eni ATTACHMENT [force] | detach-volume VOLUME [INSTANCE]
 *   signal STACK LOGICAL_ID UNIQUE_ID success|failure
 *   signal-exec PATH STACK LOGICAL_ID REGION UNIQUE_ID success|failure
 *   set-health INSTANCE healthy|unhealthy [no-grace]
 *   complete-lifecycle GROUP HOOK INSTANCE continue|abandon */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kb/autoscaling.h"
#include "kb/aws.h"
#include "kb/cfn.h"
#include "kb/deadline.h"
#include "kb/ec2.h"

static const char *code_name(int ret)
{
	static const struct {
		int ret;
		const char *name;
	} names[] = {
		{0, "OK"}, {-ENOENT, "ENOENT"}, {-EBUSY, "EBUSY"}, {-EAGAIN, "EAGAIN"},
		{-EALREADY, "EALREADY"}, {-EINVAL, "EINVAL"}, {-EBADMSG, "EBADMSG"},
		{-EPROTO, "EPROTO"}, {-ETIMEDOUT, "ETIMEDOUT"}, {-EIO, "EIO"},
		{-EACCES, "EACCES"}, {-KB_EHELD, "KB_EHELD"}, {-KB_EDENIED, "KB_EDENIED"},
		{-KB_EAWS, "KB_EAWS"}, {-KB_EUNAVAIL, "KB_EUNAVAIL"}, {-KB_ECONFIG, "KB_ECONFIG"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].ret == ret)
			return names[i].name;
	return "OTHER";
}

static json_t *str(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *tags_json(const struct ec2_tag *tags, size_t count)
{
	json_t *obj = json_object();

	for (size_t i = 0; i < count; i++)
		json_object_set_new(obj, tags[i].key, json_string(tags[i].value));
	return obj;
}

static json_t *enis_json(const struct ec2_eni_list *list)
{
	json_t *arr = json_array();

	for (size_t i = 0; list && i < list->count; i++) {
		const struct ec2_eni *e = &list->items[i];

		json_array_append_new(arr, json_pack(
			"{s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:i s:i s:o}",
			"id", str(e->id), "subnet_id", str(e->subnet_id), "vpc_id", str(e->vpc_id),
			"az", str(e->az), "mac", str(e->mac), "private_ip", str(e->private_ip),
			"status", str(e->status), "attachment_id", str(e->attachment_id),
			"attachment_instance_id", str(e->attachment_instance_id),
			"attachment_status", str(e->attachment_status),
			"attachment_device_index", e->attachment_device_index,
			"attachment_network_card_index", e->attachment_network_card_index,
			"tags", tags_json(e->tags, e->tag_count)));
	}
	return arr;
}

static json_t *volumes_json(const struct ec2_volume_list *list)
{
	json_t *arr = json_array();

	for (size_t i = 0; list && i < list->count; i++) {
		const struct ec2_volume *v = &list->items[i];

		json_array_append_new(arr, json_pack(
			"{s:o s:o s:o s:o s:i s:b s:o s:o s:o s:o}",
			"id", str(v->id), "az", str(v->az), "status", str(v->status),
			"volume_type", str(v->volume_type), "size_gib", v->size_gib,
			"encrypted", v->encrypted, "attachment_instance_id",
			str(v->attachment_instance_id), "attachment_device",
			str(v->attachment_device), "attachment_status", str(v->attachment_status),
			"tags", tags_json(v->tags, v->tag_count)));
	}
	return arr;
}

static json_t *instances_json(const struct ec2_instance_list *list)
{
	json_t *arr = json_array();

	for (size_t i = 0; list && i < list->count; i++) {
		const struct ec2_instance *n = &list->items[i];

		json_array_append_new(arr, json_pack(
			"{s:o s:o s:i s:o s:o s:o}", "id", str(n->id), "state_name",
			str(n->state_name), "state_code", n->state_code, "az", str(n->az),
			"launch_time", str(n->launch_time), "tags",
			tags_json(n->tags, n->tag_count)));
	}
	return arr;
}

/* NAME=VALUE arguments into filters; a NAME seen again gets one more (OR) value. */
static size_t parse_filters(int argc, char **argv, struct ec2_filter *filters,
			    const char **values)
{
	size_t n = 0;

	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq)
			exit(64);
		*eq = '\0';
		values[i] = eq + 1;
		if (n == 0 || strcmp(filters[n - 1].name, argv[i]) != 0) {
			filters[n].name = argv[i];
			filters[n].values = &values[i];
			filters[n].value_count = 0;
			n++;
		}
		filters[n - 1].value_count++;
	}
	return n;
}

static int describe(struct aws_ctx *ctx, const char *cmd, int argc, char **argv,
		    int64_t deadline, json_t **result, struct kb_error *err)
{
	bool plural = cmd[strlen(cmd) - 1] == 's';
	struct ec2_filter filters[64];
	const char *values[64];
	size_t n = plural && argc < 64 ? parse_filters(argc, argv, filters, values) : 0;
	int ret;

	if (strncmp(cmd, "describe-eni", 12) == 0) {
		struct ec2_eni_list *list = NULL;

		ret = plural ? ec2_describe_network_interfaces(ctx, filters, n, deadline, &list,
							       err)
			     : ec2_describe_network_interface(ctx, argv[0], deadline, &list, err);
		*result = enis_json(list);
		ec2_eni_list_free(list);
	} else {
		struct ec2_volume_list *list = NULL;

		ret = plural
			      ? ec2_describe_volumes(ctx, filters, n, deadline, &list, err)
			      : ec2_describe_volume(ctx, argv[0], deadline, &list, err);
		*result = volumes_json(list);
		ec2_volume_list_free(list);
	}
	return ret;
}

static bool flag(int argc, char **argv, int at, const char *name)
{
	return argc > at && strcmp(argv[at], name) == 0;
}

static int run(struct aws_ctx *ctx, const char *cmd, int argc, char **argv, int64_t deadline,
	       json_t **result, struct kb_error *err)
{
	char *attachment = NULL;
	int ret = -EINVAL;

	if (strncmp(cmd, "describe-enis", 13) == 0 || strcmp(cmd, "describe-volumes") == 0 ||
	    (argc == 1 && (strcmp(cmd, "describe-eni") == 0 ||
			   strcmp(cmd, "describe-volume") == 0)))
		return describe(ctx, cmd, argc, argv, deadline, result, err);
	if (strcmp(cmd, "describe-instances") == 0) {
		struct ec2_instance_list *list = NULL;

		ret = ec2_describe_instances(ctx, (const char *const *)argv, (size_t)argc,
					     deadline, &list, err);
		*result = instances_json(list);
		ec2_instance_list_free(list);
	} else if (strcmp(cmd, "describe-tags") == 0 && argc == 1) {
		struct ec2_tag *tags = NULL;
		size_t count = 0;

		ret = ec2_describe_tags(ctx, argv[0], deadline, &tags, &count, err);
		*result = tags_json(tags, count);
		ec2_tags_free(tags, count);
	} else if (strcmp(cmd, "attach-eni") == 0 && argc >= 4) {
		ret = ec2_attach_network_interface(ctx, argv[0], argv[1], atoi(argv[2]),
						   atoi(argv[3]), flag(argc, argv, 4, "dry-run"),
						   deadline, &attachment, err);
		*result = str(attachment);
		free(attachment);
	} else if (strcmp(cmd, "attach-volume") == 0 && argc >= 3) {
		ret = ec2_attach_volume(ctx, argv[0], argv[1], argv[2],
					flag(argc, argv, 3, "dry-run"), deadline, err);
	} else if (strcmp(cmd, "detach-eni") == 0 && argc >= 1) {
		ret = ec2_detach_network_interface(ctx, argv[0], flag(argc, argv, 1, "force"),
						   false, deadline, err);
	} else if (strcmp(cmd, "detach-volume") == 0 && argc >= 1) {
		ret = ec2_detach_volume(ctx, argv[0], argc > 1 ? argv[1] : NULL, false, false,
					deadline, err);
	} else if (strcmp(cmd, "signal") == 0 && argc == 4) {
		ret = cfn_signal_resource(ctx, argv[0], argv[1], argv[2],
					  strcmp(argv[3], "success") == 0, deadline, err);
	} else if (strcmp(cmd, "set-health") == 0 && argc >= 2) {
		ret = autoscaling_set_instance_health(ctx, argv[0],
						      strcmp(argv[1], "healthy") == 0,
						      !flag(argc, argv, 2, "no-grace"), deadline,
						      err);
	} else if (strcmp(cmd, "complete-lifecycle") == 0 && argc == 4) {
		ret = autoscaling_complete_lifecycle_action(ctx, argv[0], argv[1], argv[2],
							    strcmp(argv[3], "continue") == 0,
							    deadline, err);
	} else {
		exit(64);
	}
	return ret;
}

int main(int argc, char *argv[])
{
	struct aws_ctx_options opts = {0};
	int64_t deadline = deadline_after_ms(30000);
	struct kb_error err = {{0}};
	json_t *result = NULL, *out;
	struct aws_ctx *ctx = NULL;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: kb-ec2 COMMAND ARGS... (see the source)\n");
		return 64;
	}
	if (strcmp(argv[1], "signal-exec") == 0 && argc == 8)
		ret = cfn_signal_exec(argv[2], argv[3], argv[4], argv[5], argv[6],
				      strcmp(argv[7], "success") == 0, deadline, &err);
	else if ((ctx = aws_ctx_new(&opts, deadline, &err)))
		ret = run(ctx, argv[1], argc - 2, argv + 2, deadline, &result, &err);
	else
		ret = -KB_ECONFIG;
	out = json_pack("{s:i s:s s:s s:o}", "ret", ret, "code", code_name(ret), "error", err.msg,
			"result", result ? result : json_null());
	if (!out || json_dumpf(out, stdout, JSON_COMPACT) < 0)
		return 70;
	putchar('\n');
	json_decref(out);
	aws_ctx_free(ctx);
	return 0;
}
