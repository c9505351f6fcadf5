/* ec2.c: the EC2 Query API calls kafka-bootstrap makes, with typed results (see ec2.h).
 *
 * Requests are built as botocore's EC2 serializer builds them (flat 1-based lists,
 * "Filter.1.Value.1", booleans "true"/"false"); responses are read with libxml2 by local name
 * (xml.h). It never reads an unexpected document as an empty answer: a wrong root, a missing
 * id or a malformed number is an error, because "no ENI found" must only ever mean that. */
#include "kb/ec2.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/aws.h"
#include "kb/xml.h"

/* Page sizes: DescribeNetworkInterfaces, DescribeInstances and DescribeTags take 5..1000,
 * DescribeVolumes returns at most 500 however many are asked for. */
#define ENI_PAGE 1000
#define VOLUME_PAGE 500
#define INSTANCE_PAGE 1000
#define TAG_PAGE 1000
/* Values per filter in one DescribeInstances call; EC2 caps the values of a request. */
#define INSTANCE_IDS_PER_CALL 100

static void tag_clear(void *obj)
{
	struct ec2_tag *tag = obj;

	free(tag->key);
	free(tag->value);
	memset(tag, 0, sizeof(*tag));
}

static void eni_clear(void *obj)
{
	struct ec2_eni *eni = obj;

	free(eni->id);
	free(eni->subnet_id);
	free(eni->vpc_id);
	free(eni->az);
	free(eni->mac);
	free(eni->private_ip);
	free(eni->status);
	free(eni->attachment_id);
	free(eni->attachment_instance_id);
	free(eni->attachment_status);
	ec2_tags_free(eni->tags, eni->tag_count);
	memset(eni, 0, sizeof(*eni));
}

static void volume_clear(void *obj)
{
	struct ec2_volume *vol = obj;

	free(vol->id);
	free(vol->az);
	free(vol->status);
	free(vol->volume_type);
	free(vol->attachment_instance_id);
	free(vol->attachment_device);
	free(vol->attachment_status);
	ec2_tags_free(vol->tags, vol->tag_count);
	memset(vol, 0, sizeof(*vol));
}

static void instance_clear(void *obj)
{
	struct ec2_instance *inst = obj;

	free(inst->id);
	free(inst->state_name);
	free(inst->az);
	free(inst->launch_time);
	ec2_tags_free(inst->tags, inst->tag_count);
	memset(inst, 0, sizeof(*inst));
}

const char *ec2_tag_value(const struct ec2_tag *tags, size_t count, const char *key)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(tags[i].key, key) == 0)
			return tags[i].value;
	return NULL;
}

/* ---- Response parsing ------------------------------------------------------------------ */

/* One kind of set item (a tag, an ENI...): how big it is, how to read and release it. */
struct item_kind {
	size_t size;
	/* 0 parsed, 1 not wanted (left empty), negative on error (obj may be half filled). */
	int (*parse)(const xmlNode *item, const void *ctx, void *obj, struct kb_error *err);
	void (*clear)(void *obj);
};

static size_t count_items(const xmlNode *set)
{
	size_t n = 0;

	for (xmlNode *item = set ? xml_child(set, "item") : NULL; item;
	     item = xml_next(item, "item"))
		n++;
	return n;
}

/* Appends the items of set (xxxSet/item; NULL is an empty set) to the array (*items, *count).
 * On return both describe the array, grown or not; on error without any item of this set. */
static int parse_items(const xmlNode *set, const struct item_kind *kind, const void *ctx,
		       void **items, size_t *count, struct kb_error *err)
{
	size_t start = *count, n = count_items(set);
	char *array;
	int ret = 0;

	if (n == 0)
		return 0;
	array = reallocarray(*items, start + n, kind->size);
	if (!array)
		return kb_errorf(err, ENOMEM, "out of memory");
	*items = array;
	memset(array + start * kind->size, 0, n * kind->size);
	for (xmlNode *item = xml_child(set, "item"); item; item = xml_next(item, "item")) {
		void *obj = array + *count * kind->size;

		ret = kind->parse(item, ctx, obj, err);
		if (ret != 0)
			kind->clear(obj);
		if (ret < 0)
			break;
		if (ret == 0)
			(*count)++;
		ret = 0;
	}
	if (ret < 0)
		while (*count > start)
			kind->clear(array + --(*count) * kind->size);
	return ret;
}

/* A string member of a result struct and the element it is read from. */
struct text_field {
	const char *element;
	size_t offset;
};

static int read_text_fields(const xmlNode *node, const struct text_field *fields, size_t n,
			    void *obj, struct kb_error *err)
{
	for (size_t i = 0; i < n; i++) {
		char **slot = (char **)(void *)((char *)obj + fields[i].offset);
		int ret = xml_child_text(node, fields[i].element, slot, err);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* tagSet/item{key,value}, or DescribeTags' tagSet/item{resourceId,resourceType,key,value}
 * when ctx names the resource whose tags are wanted. */
static int parse_tag(const xmlNode *item, const void *ctx, void *obj, struct kb_error *err)
{
	const char *resource_id = ctx;
	struct ec2_tag *tag = obj;
	char *owner = NULL;
	int ret;

	if (resource_id) {
		ret = xml_child_text(item, "resourceId", &owner, err);
		if (ret < 0)
			return ret;
		ret = owner && strcmp(owner, resource_id) != 0;
		free(owner);
		if (ret)
			return 1;
	}
	ret = xml_child_text(item, "key", &tag->key, err);
	if (ret == 0)
		ret = xml_child_text(item, "value", &tag->value, err);
	if (ret == 0 && !tag->key)
		ret = kb_errorf(err, EBADMSG, "tag without <key>");
	/* EC2 writes an empty value as <value/>; one left out reads the same. */
	if (ret == 0 && !tag->value && !(tag->value = strdup("")))
		ret = kb_errorf(err, ENOMEM, "out of memory");
	return ret;
}

static const struct item_kind tag_kind = {sizeof(struct ec2_tag), parse_tag, tag_clear};

static int parse_tag_set(const xmlNode *parent, struct ec2_tag **tags, size_t *count,
			 struct kb_error *err)
{
	void *items = *tags;
	int ret = parse_items(xml_child(parent, "tagSet"), &tag_kind, NULL, &items, count, err);

	*tags = items;
	return ret;
}

static const struct text_field eni_fields[] = {
	{"networkInterfaceId", offsetof(struct ec2_eni, id)},
	{"subnetId", offsetof(struct ec2_eni, subnet_id)},
	{"vpcId", offsetof(struct ec2_eni, vpc_id)},
	{"availabilityZone", offsetof(struct ec2_eni, az)},
	{"macAddress", offsetof(struct ec2_eni, mac)},
	{"privateIpAddress", offsetof(struct ec2_eni, private_ip)},
	{"status", offsetof(struct ec2_eni, status)},
};

static const struct text_field eni_attachment_fields[] = {
	{"attachmentId", offsetof(struct ec2_eni, attachment_id)},
	{"instanceId", offsetof(struct ec2_eni, attachment_instance_id)},
	{"status", offsetof(struct ec2_eni, attachment_status)},
};

/* networkInterfaceSet/item; no <attachment> at all when the ENI is not attached. */
static int parse_eni(const xmlNode *item, const void *ctx, void *obj, struct kb_error *err)
{
	const xmlNode *att = xml_child(item, "attachment");
	struct ec2_eni *eni = obj;
	int ret;

	(void)ctx;
	eni->attachment_device_index = -1;
	eni->attachment_network_card_index = -1;
	ret = read_text_fields(item, eni_fields, sizeof(eni_fields) / sizeof(eni_fields[0]), eni,
			       err);
	if (ret == 0 && !eni->id)
		return kb_errorf(err, EBADMSG, "network interface without <networkInterfaceId>");
	if (ret == 0 && att)
		ret = read_text_fields(att, eni_attachment_fields,
				       sizeof(eni_attachment_fields) /
				       sizeof(eni_attachment_fields[0]), eni, err);
	if (ret == 0 && att)
		ret = xml_child_int(att, "deviceIndex", -1, &eni->attachment_device_index, err);
	/* Card 0 is EC2's default; older answers and the API reference's example omit it. */
	if (ret == 0 && att)
		ret = xml_child_int(att, "networkCardIndex", 0,
				    &eni->attachment_network_card_index, err);
	if (ret == 0)
		ret = parse_tag_set(item, &eni->tags, &eni->tag_count, err);
	if (ret < 0 && eni->id)
		kb_error_prefix(err, "%s", eni->id);
	return ret;
}

static const struct item_kind eni_kind = {sizeof(struct ec2_eni), parse_eni, eni_clear};

static const struct text_field volume_fields[] = {
	{"volumeId", offsetof(struct ec2_volume, id)},
	{"availabilityZone", offsetof(struct ec2_volume, az)},
	{"status", offsetof(struct ec2_volume, status)},
	{"volumeType", offsetof(struct ec2_volume, volume_type)},
};

static const struct text_field volume_attachment_fields[] = {
	{"instanceId", offsetof(struct ec2_volume, attachment_instance_id)},
	{"device", offsetof(struct ec2_volume, attachment_device)},
	{"status", offsetof(struct ec2_volume, attachment_status)},
};

/* volumeSet/item; attachmentSet is empty or absent when the volume is not attached. */
static int parse_volume(const xmlNode *item, const void *ctx, void *obj, struct kb_error *err)
{
	const xmlNode *set = xml_child(item, "attachmentSet");
	const xmlNode *att = set ? xml_child(set, "item") : NULL;
	struct ec2_volume *vol = obj;
	int ret;

	(void)ctx;
	ret = read_text_fields(item, volume_fields,
			       sizeof(volume_fields) / sizeof(volume_fields[0]), vol, err);
	if (ret == 0 && !vol->id)
		return kb_errorf(err, EBADMSG, "volume without <volumeId>");
	if (ret == 0)
		ret = xml_child_int(item, "size", 0, &vol->size_gib, err);
	if (ret == 0)
		ret = xml_child_bool(item, "encrypted", &vol->encrypted, err);
	if (ret == 0 && att)
		ret = read_text_fields(att, volume_attachment_fields,
				       sizeof(volume_attachment_fields) /
				       sizeof(volume_attachment_fields[0]), vol, err);
	if (ret == 0)
		ret = parse_tag_set(item, &vol->tags, &vol->tag_count, err);
	if (ret < 0 && vol->id)
		kb_error_prefix(err, "%s", vol->id);
	return ret;
}

static const struct item_kind volume_kind = {sizeof(struct ec2_volume), parse_volume,
					     volume_clear};

static const struct text_field instance_fields[] = {
	{"instanceId", offsetof(struct ec2_instance, id)},
	{"launchTime", offsetof(struct ec2_instance, launch_time)},
};

/* reservationSet/item/instancesSet/item. */
static int parse_instance(const xmlNode *item, const void *ctx, void *obj,
			  struct kb_error *err)
{
	const xmlNode *state = xml_child(item, "instanceState");
	const xmlNode *placement = xml_child(item, "placement");
	struct ec2_instance *inst = obj;
	int ret;

	(void)ctx;
	inst->state_code = -1;
	ret = read_text_fields(item, instance_fields,
			       sizeof(instance_fields) / sizeof(instance_fields[0]), inst, err);
	if (ret == 0 && !inst->id)
		return kb_errorf(err, EBADMSG, "instance without <instanceId>");
	if (ret == 0 && state)
		ret = xml_child_text(state, "name", &inst->state_name, err);
	if (ret == 0 && state)
		ret = xml_child_int(state, "code", -1, &inst->state_code, err);
	/* The high byte is EC2-internal (InstanceState: "code & 0xff"). */
	if (ret == 0 && inst->state_code > 0)
		inst->state_code &= 0xff;
	if (ret == 0 && placement)
		ret = xml_child_text(placement, "availabilityZone", &inst->az, err);
	if (ret == 0)
		ret = parse_tag_set(item, &inst->tags, &inst->tag_count, err);
	if (ret < 0 && inst->id)
		kb_error_prefix(err, "%s", inst->id);
	return ret;
}

static const struct item_kind instance_kind = {sizeof(struct ec2_instance), parse_instance,
					       instance_clear};

static void items_free(void *items, size_t count, const struct item_kind *kind)
{
	for (size_t i = 0; i < count; i++)
		kind->clear((char *)items + i * kind->size);
	free(items);
}

void ec2_tags_free(struct ec2_tag *tags, size_t count)
{
	items_free(tags, count, &tag_kind);
}

void ec2_eni_list_free(struct ec2_eni_list *list)
{
	if (list)
		items_free(list->items, list->count, &eni_kind);
	free(list);
}

void ec2_volume_list_free(struct ec2_volume_list *list)
{
	if (list)
		items_free(list->items, list->count, &volume_kind);
	free(list);
}

void ec2_instance_list_free(struct ec2_instance_list *list)
{
	if (list)
		items_free(list->items, list->count, &instance_kind);
	free(list);
}

/* Opens one response page: checks the root element, finds the set (NULL when absent: EC2 may
 * omit an empty set) and takes nextToken, absent or empty meaning the last page. */
static int page_open(const char *xml, size_t len, const char *root_name, const char *set_name,
		     xmlDoc **doc, xmlNode **set, char **next_token, struct kb_error *err)
{
	char *token = NULL;
	xmlNode *root;
	int ret;

	*set = NULL;
	ret = xml_read_root(xml, len, root_name, doc, &root, err);
	if (ret < 0)
		return ret;
	*set = xml_child(root, set_name);
	ret = xml_child_text(root, "nextToken", &token, err);
	if (ret < 0)
		return ret;
	if (token && token[0] != '\0' && next_token)
		*next_token = token;
	else
		free(token);
	return 0;
}

/* One Describe page whose items are root/set_name/item, or, with nested_set, the items of
 * each root/set_name/item/nested_set (DescribeInstances' reservations). */
static int parse_page(const char *xml, size_t len, const char *root_name, const char *set_name,
		      const char *nested_set, const struct item_kind *kind, const void *ctx,
		      void **items, size_t *count, char **next_token, struct kb_error *err)
{
	size_t start = *count;
	xmlDoc *doc = NULL;
	xmlNode *set;
	int ret;

	if (next_token)
		*next_token = NULL;
	ret = page_open(xml, len, root_name, set_name, &doc, &set, next_token, err);
	if (ret == 0 && !nested_set)
		ret = parse_items(set, kind, ctx, items, count, err);
	for (xmlNode *outer = set && nested_set ? xml_child(set, "item") : NULL;
	     outer && ret == 0; outer = xml_next(outer, "item"))
		ret = parse_items(xml_child(outer, nested_set), kind, ctx, items, count, err);
	if (ret < 0) {
		while (*count > start)
			kind->clear((char *)*items + --(*count) * kind->size);
		if (next_token) {
			free(*next_token);
			*next_token = NULL;
		}
	}
	xmlFreeDoc(doc);
	return ret;
}

int ec2_parse_network_interfaces(const char *xml, size_t len, struct ec2_eni_list **out,
				 char **next_token, struct kb_error *err)
{
	struct ec2_eni_list *list = *out ? *out : calloc(1, sizeof(*list));
	void *items;
	int ret;

	if (!list)
		return kb_errorf(err, ENOMEM, "out of memory");
	items = list->items;
	ret = parse_page(xml, len, "DescribeNetworkInterfacesResponse", "networkInterfaceSet",
			 NULL, &eni_kind, NULL, &items, &list->count, next_token, err);
	list->items = items;
	if (ret < 0 && !*out)
		ec2_eni_list_free(list);
	else
		*out = list;
	return ret;
}

int ec2_parse_volumes(const char *xml, size_t len, struct ec2_volume_list **out,
		      char **next_token, struct kb_error *err)
{
	struct ec2_volume_list *list = *out ? *out : calloc(1, sizeof(*list));
	void *items;
	int ret;

	if (!list)
		return kb_errorf(err, ENOMEM, "out of memory");
	items = list->items;
	ret = parse_page(xml, len, "DescribeVolumesResponse", "volumeSet", NULL, &volume_kind,
			 NULL, &items, &list->count, next_token, err);
	list->items = items;
	if (ret < 0 && !*out)
		ec2_volume_list_free(list);
	else
		*out = list;
	return ret;
}

int ec2_parse_instances(const char *xml, size_t len, struct ec2_instance_list **out,
			char **next_token, struct kb_error *err)
{
	struct ec2_instance_list *list = *out ? *out : calloc(1, sizeof(*list));
	void *items;
	int ret;

	if (!list)
		return kb_errorf(err, ENOMEM, "out of memory");
	items = list->items;
	ret = parse_page(xml, len, "DescribeInstancesResponse", "reservationSet", "instancesSet",
			 &instance_kind, NULL, &items, &list->count, next_token, err);
	list->items = items;
	if (ret < 0 && !*out)
		ec2_instance_list_free(list);
	else
		*out = list;
	return ret;
}

int ec2_parse_tags(const char *xml, size_t len, const char *resource_id, struct ec2_tag **tags,
		   size_t *count, char **next_token, struct kb_error *err)
{
	void *items = *tags;
	int ret = parse_page(xml, len, "DescribeTagsResponse", "tagSet", NULL, &tag_kind,
			     resource_id, &items, count, next_token, err);

	*tags = items;
	return ret;
}

int ec2_parse_attach_network_interface(const char *xml, size_t len, char **attachment_id,
				       struct kb_error *err)
{
	xmlDoc *doc = NULL;
	xmlNode *root;
	int ret;

	*attachment_id = NULL;
	ret = xml_read_root(xml, len, "AttachNetworkInterfaceResponse", &doc, &root, err);
	if (ret == 0)
		ret = xml_child_text(root, "attachmentId", attachment_id, err);
	if (ret == 0 && (!*attachment_id || !**attachment_id))
		ret = kb_errorf(err, EBADMSG, "AttachNetworkInterfaceResponse without <attachmentId>");
	if (ret < 0) {
		free(*attachment_id);
		*attachment_id = NULL;
	}
	xmlFreeDoc(doc);
	return ret;
}

/* One parser of AWS error documents in the program: aws.c's, which aws_query uses too. */
int ec2_parse_error(const char *xml, size_t len, char **code, char **message, char **request_id)
{
	return aws_parse_error(xml, len, code, message, request_id);
}

/* ---- Requests -------------------------------------------------------------------------- */

/* AWS error codes callers act on (ec2.h). Throttling and 5xx never get here: aws_query retried
 * them until its budget or the deadline ran out. */
static const struct {
	const char *code;
	int ret;
} ec2_errors[] = {
	{"InvalidNetworkInterface.InUse", -EBUSY},
	{"VolumeInUse", -EBUSY},
	{"InvalidDevice.InUse", -EBUSY},
	{"IncorrectState", -EAGAIN},
	{"InvalidVolume.ZoneMismatch", -KB_EHELD},
	{"UnauthorizedOperation", -KB_EDENIED},
};

static int ec2_map_error(const struct aws_response *resp, int ret)
{
	const char *code = resp ? resp->error_code : NULL;
	const char *msg = resp && resp->error_message ? resp->error_message : "";
	size_t n;

	if (!code)
		return ret;
	n = strlen(code);
	/* InvalidNetworkInterfaceID.NotFound, InvalidVolume.NotFound, InvalidInstanceID.NotFound,
	 * InvalidAttachmentID.NotFound... */
	if (n > 9 && strcmp(code + n - 9, ".NotFound") == 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(ec2_errors) / sizeof(ec2_errors[0]); i++)
		if (strcmp(code, ec2_errors[i].code) == 0)
			return ec2_errors[i].ret;
	/* "Instance 'i-…' already has an interface attached at device index '1'." */
	if (strcmp(code, "InvalidParameterValue") == 0 &&
	    strcasestr(msg, "already has an interface attached at device index"))
		return -EBUSY;
	/* An ENI in another AZ: "You may not attach a network interface to an instance if they
	 * are not in the same availability zone" (reported as InvalidParameterCombination, and as
	 * InvalidParameterValue). */
	if ((strcmp(code, "InvalidParameterCombination") == 0 ||
	     strcmp(code, "InvalidParameterValue") == 0) &&
	    strcasestr(msg, "same availability zone"))
		return -KB_EHELD;
	return ret;
}

/* One EC2 call. On failure the message reads "<what>: <Action>: <Code>: <Message>" ("<Action>:
 * ..." when what is NULL) and the return value is mapped from AWS's code; DryRunOperation
 * (HTTP 412) is success with no response: EC2 says the call would have been allowed. */
static int ec2_call(struct aws_ctx *ctx, const struct aws_params *params, const char *what,
		    int64_t deadline, struct aws_response **out, struct kb_error *err)
{
	struct kb_error call_err = {{0}};
	struct aws_response *resp = NULL;
	int ret = aws_query(ctx, AWS_SERVICE_EC2, params, deadline, &resp, &call_err);

	*out = NULL;
	if (ret == 0) {
		*out = resp;
		return 0;
	}
	if (resp && resp->error_code && strcmp(resp->error_code, "DryRunOperation") == 0)
		ret = 0;
	else
		ret = kb_errorf(err, ec2_map_error(resp, ret), "%s%s%s", what ? what : "",
				what ? ": " : "", call_err.msg);
	aws_response_free(resp);
	return ret;
}

/* Whether the builder calls below all succeeded; aws_params_* fail only for memory. */
static int params_done(struct aws_params *params, int failed, struct kb_error *err)
{
	if (!params || failed)
		return kb_errorf(err, ENOMEM, "out of memory");
	return 0;
}

static int add_filters(struct aws_params *params, const struct ec2_filter *filters, size_t n,
		       struct kb_error *err)
{
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		if (!filters[i].name || !filters[i].name[0] || filters[i].value_count == 0)
			return kb_errorf(err, EINVAL, "filter %zu has no name or no value", i + 1);
		failed |= aws_params_addf(params, filters[i].name, "Filter.%zu.Name", i + 1);
		for (size_t j = 0; j < filters[i].value_count; j++)
			failed |= aws_params_addf(params, filters[i].values[j],
						  "Filter.%zu.Value.%zu", i + 1, j + 1);
	}
	return params_done(params, failed, err);
}

typedef int (*ec2_page_fn)(const char *xml, size_t len, void *out, char **next_token,
			   struct kb_error *err);

/* One Describe call, followed through every page. */
struct ec2_describe {
	const char *action;
	const char *id_name; /* "NetworkInterfaceId": ids are sent as NetworkInterfaceId.N */
	const char *const *ids;
	size_t id_count;
	const struct ec2_filter *filters;
	size_t filter_count;
	int max_results; /* never with ids: EC2 answers InvalidParameterCombination */
	ec2_page_fn parse;
	void *out;
};

static int describe_params(const struct ec2_describe *d, const char *token,
			   struct aws_params **out, struct kb_error *err)
{
	struct aws_params *params = aws_params_new(d->action, EC2_API_VERSION);
	char max[16];
	int failed = 0, ret;

	for (size_t i = 0; params && i < d->id_count; i++)
		failed |= aws_params_addf(params, d->ids[i], "%s.%zu", d->id_name, i + 1);
	ret = params_done(params, failed, err);
	if (ret == 0)
		ret = add_filters(params, d->filters, d->filter_count, err);
	if (ret == 0 && d->id_count == 0 && d->max_results > 0) {
		snprintf(max, sizeof(max), "%d", d->max_results);
		ret = params_done(params, aws_params_add(params, "MaxResults", max), err);
	}
	if (ret == 0 && token)
		ret = params_done(params, aws_params_add(params, "NextToken", token), err);
	if (ret < 0) {
		aws_params_free(params);
		params = NULL;
	}
	*out = params;
	return ret;
}

/* Pages until nextToken is absent or empty: a short or empty page is not the end. */
static int describe_pages(struct aws_ctx *ctx, const struct ec2_describe *d, int64_t deadline,
			  struct kb_error *err)
{
	char *token = NULL;
	int ret;

	do {
		struct kb_error parse_err = {{0}};
		struct aws_params *params = NULL;
		struct aws_response *resp = NULL;
		char *next = NULL;

		ret = describe_params(d, token, &params, err);
		if (ret == 0)
			ret = ec2_call(ctx, params, NULL, deadline, &resp, err);
		if (ret == 0 && !resp)
			ret = kb_errorf(err, EPROTO, "%s: no response", d->action);
		if (ret == 0)
			ret = d->parse(resp->body, resp->body_len, d->out, &next, &parse_err);
		if (ret < 0 && parse_err.msg[0])
			kb_errorf(err, ret, "%s: unreadable response: %s", d->action,
				  parse_err.msg);
		if (ret == 0 && next && token && strcmp(next, token) == 0)
			ret = kb_errorf(err, EPROTO, "%s: EC2 returned the same NextToken twice",
					d->action);
		aws_params_free(params);
		aws_response_free(resp);
		free(token);
		token = next;
	} while (ret == 0 && token);
	free(token);
	return ret;
}

static int eni_page(const char *xml, size_t len, void *out, char **next_token,
		    struct kb_error *err)
{
	return ec2_parse_network_interfaces(xml, len, out, next_token, err);
}

static int volume_page(const char *xml, size_t len, void *out, char **next_token,
		       struct kb_error *err)
{
	return ec2_parse_volumes(xml, len, out, next_token, err);
}

static int instance_page(const char *xml, size_t len, void *out, char **next_token,
			 struct kb_error *err)
{
	return ec2_parse_instances(xml, len, out, next_token, err);
}

int ec2_describe_network_interfaces(struct aws_ctx *ctx, const struct ec2_filter *filters,
				    size_t filter_count, int64_t deadline,
				    struct ec2_eni_list **out, struct kb_error *err)
{
	struct ec2_eni_list *list = NULL;
	struct ec2_describe d = {
		.action = "DescribeNetworkInterfaces", .filters = filters,
		.filter_count = filter_count, .max_results = ENI_PAGE, .parse = eni_page,
		.out = &list,
	};
	int ret = describe_pages(ctx, &d, deadline, err);

	if (ret < 0) {
		ec2_eni_list_free(list);
		list = NULL;
	}
	*out = list;
	return ret;
}

int ec2_describe_network_interface(struct aws_ctx *ctx, const char *eni_id, int64_t deadline,
				   struct ec2_eni_list **out, struct kb_error *err)
{
	struct ec2_eni_list *list = NULL;
	struct ec2_describe d = {
		.action = "DescribeNetworkInterfaces", .id_name = "NetworkInterfaceId",
		.ids = &eni_id, .id_count = 1, .parse = eni_page, .out = &list,
	};
	int ret = describe_pages(ctx, &d, deadline, err);

	/* EC2 may answer a just-deleted id with an empty set instead of NotFound. */
	if (ret == 0 && list->count == 0)
		ret = kb_errorf(err, ENOENT, "DescribeNetworkInterfaces: %s: not found", eni_id);
	if (ret < 0) {
		ec2_eni_list_free(list);
		list = NULL;
	}
	*out = list;
	return ret;
}

int ec2_describe_volumes(struct aws_ctx *ctx, const struct ec2_filter *filters,
			 size_t filter_count, int64_t deadline, struct ec2_volume_list **out,
			 struct kb_error *err)
{
	struct ec2_volume_list *list = NULL;
	struct ec2_describe d = {
		.action = "DescribeVolumes", .filters = filters, .filter_count = filter_count,
		.max_results = VOLUME_PAGE, .parse = volume_page, .out = &list,
	};
	int ret = describe_pages(ctx, &d, deadline, err);

	if (ret < 0) {
		ec2_volume_list_free(list);
		list = NULL;
	}
	*out = list;
	return ret;
}

int ec2_describe_volume(struct aws_ctx *ctx, const char *volume_id, int64_t deadline,
			struct ec2_volume_list **out, struct kb_error *err)
{
	struct ec2_volume_list *list = NULL;
	struct ec2_describe d = {
		.action = "DescribeVolumes", .id_name = "VolumeId", .ids = &volume_id,
		.id_count = 1, .parse = volume_page, .out = &list,
	};
	int ret = describe_pages(ctx, &d, deadline, err);

	if (ret == 0 && list->count == 0)
		ret = kb_errorf(err, ENOENT, "DescribeVolumes: %s: not found", volume_id);
	if (ret < 0) {
		ec2_volume_list_free(list);
		list = NULL;
	}
	*out = list;
	return ret;
}

/* By the instance-id filter, not by InstanceId.N: with ids, one unknown id fails the whole
 * call with InvalidInstanceID.NotFound (and a just-launched owner may still be unknown), while
 * a filter simply leaves it out, which is what ec2.h promises, in one call per 100 ids. */
int ec2_describe_instances(struct aws_ctx *ctx, const char *const *ids, size_t id_count,
			   int64_t deadline, struct ec2_instance_list **out, struct kb_error *err)
{
	struct ec2_instance_list *list = calloc(1, sizeof(*list));
	int ret = list ? 0 : kb_errorf(err, ENOMEM, "out of memory");

	for (size_t done = 0; ret == 0 && done < id_count; done += INSTANCE_IDS_PER_CALL) {
		size_t n = id_count - done;
		struct ec2_filter filter = {
			.name = "instance-id", .values = ids + done,
			.value_count = n < INSTANCE_IDS_PER_CALL ? n : INSTANCE_IDS_PER_CALL,
		};
		struct ec2_describe d = {
			.action = "DescribeInstances", .filters = &filter, .filter_count = 1,
			.max_results = INSTANCE_PAGE, .parse = instance_page, .out = &list,
		};

		ret = describe_pages(ctx, &d, deadline, err);
	}
	if (ret < 0) {
		ec2_instance_list_free(list);
		list = NULL;
	}
	*out = list;
	return ret;
}

struct tag_list {
	const char *resource_id;
	struct ec2_tag *tags;
	size_t count;
};

static int tag_page(const char *xml, size_t len, void *out, char **next_token,
		    struct kb_error *err)
{
	struct tag_list *list = out;

	return ec2_parse_tags(xml, len, list->resource_id, &list->tags, &list->count, next_token,
			      err);
}

int ec2_describe_tags(struct aws_ctx *ctx, const char *resource_id, int64_t deadline,
		      struct ec2_tag **tags, size_t *count, struct kb_error *err)
{
	struct tag_list list = {.resource_id = resource_id};
	struct ec2_filter filter = {.name = "resource-id", .values = &resource_id,
				    .value_count = 1};
	struct ec2_describe d = {
		.action = "DescribeTags", .filters = &filter, .filter_count = 1,
		.max_results = TAG_PAGE, .parse = tag_page, .out = &list,
	};
	int ret = describe_pages(ctx, &d, deadline, err);

	if (ret < 0) {
		ec2_tags_free(list.tags, list.count);
		list.tags = NULL;
		list.count = 0;
	}
	*tags = list.tags;
	*count = list.count;
	return ret;
}

/* Sends one call that changes something (DryRun=true when dry_run) and checks the answer's
 * root element; a DryRun that EC2 allowed has no answer. The answer goes to *out when the
 * caller reads more of it. Takes params, even on failure. */
static int ec2_act(struct aws_ctx *ctx, struct aws_params *params, int failed, bool dry_run,
		   const char *root, const char *what, int64_t deadline,
		   struct aws_response **out, struct kb_error *err)
{
	struct kb_error parse_err = {{0}};
	struct aws_response *resp = NULL;
	int ret;

	if (params && dry_run)
		failed |= aws_params_add(params, "DryRun", "true");
	ret = params_done(params, failed, err);
	if (ret == 0)
		ret = ec2_call(ctx, params, what, deadline, &resp, err);
	if (ret == 0 && resp) {
		ret = xml_expect_root(resp->body, resp->body_len, root, &parse_err);
		if (ret < 0)
			kb_errorf(err, ret, "%s: unreadable response: %s", what, parse_err.msg);
	}
	aws_params_free(params);
	if (out && ret == 0)
		*out = resp;
	else
		aws_response_free(resp);
	return ret;
}

int ec2_attach_network_interface(struct aws_ctx *ctx, const char *eni_id,
				 const char *instance_id, int device_index, int network_card_index,
				 bool dry_run, int64_t deadline, char **attachment_id,
				 struct kb_error *err)
{
	struct aws_params *params = aws_params_new("AttachNetworkInterface", EC2_API_VERSION);
	struct kb_error parse_err = {{0}};
	struct aws_response *resp = NULL;
	char what[256], number[16];
	int failed = 0, ret;

	if (attachment_id)
		*attachment_id = NULL;
	snprintf(what, sizeof(what), "attach %s to %s as device %d on card %d", eni_id,
		 instance_id, device_index, network_card_index);
	if (params) {
		failed |= aws_params_add(params, "NetworkInterfaceId", eni_id);
		failed |= aws_params_add(params, "InstanceId", instance_id);
		snprintf(number, sizeof(number), "%d", device_index);
		failed |= aws_params_add(params, "DeviceIndex", number);
		/* Sent even for card 0: multi-card types need it explicitly (AWS-PROTOCOL 7). */
		snprintf(number, sizeof(number), "%d", network_card_index);
		if (network_card_index >= 0)
			failed |= aws_params_add(params, "NetworkCardIndex", number);
	}
	ret = ec2_act(ctx, params, failed, dry_run, "AttachNetworkInterfaceResponse", what,
		      deadline, &resp, err);
	if (ret == 0 && resp && attachment_id) {
		ret = ec2_parse_attach_network_interface(resp->body, resp->body_len,
							 attachment_id, &parse_err);
		if (ret < 0)
			kb_errorf(err, ret, "%s: unreadable response: %s", what, parse_err.msg);
	}
	aws_response_free(resp);
	return ret;
}

int ec2_detach_network_interface(struct aws_ctx *ctx, const char *attachment_id, bool force,
				 bool dry_run, int64_t deadline, struct kb_error *err)
{
	struct aws_params *params = aws_params_new("DetachNetworkInterface", EC2_API_VERSION);
	char what[256];
	int failed = 0;

	snprintf(what, sizeof(what), "detach %s%s", attachment_id, force ? " (forced)" : "");
	if (params) {
		failed |= aws_params_add(params, "AttachmentId", attachment_id);
		if (force)
			failed |= aws_params_add(params, "Force", "true");
	}
	return ec2_act(ctx, params, failed, dry_run, "DetachNetworkInterfaceResponse", what,
		       deadline, NULL, err);
}

int ec2_attach_volume(struct aws_ctx *ctx, const char *volume_id, const char *instance_id,
		      const char *device, bool dry_run, int64_t deadline, struct kb_error *err)
{
	struct aws_params *params = aws_params_new("AttachVolume", EC2_API_VERSION);
	char what[256];
	int failed = 0;

	snprintf(what, sizeof(what), "attach %s to %s as %s", volume_id, instance_id, device);
	if (params) {
		failed |= aws_params_add(params, "VolumeId", volume_id);
		failed |= aws_params_add(params, "InstanceId", instance_id);
		failed |= aws_params_add(params, "Device", device);
	}
	return ec2_act(ctx, params, failed, dry_run, "AttachVolumeResponse", what, deadline,
		       NULL, err);
}

int ec2_detach_volume(struct aws_ctx *ctx, const char *volume_id, const char *instance_id,
		      bool force, bool dry_run, int64_t deadline, struct kb_error *err)
{
	struct aws_params *params = aws_params_new("DetachVolume", EC2_API_VERSION);
	char what[256];
	int failed = 0;

	snprintf(what, sizeof(what), "detach %s from %s%s", volume_id,
		 instance_id ? instance_id : "its instance", force ? " (forced)" : "");
	if (params) {
		failed |= aws_params_add(params, "VolumeId", volume_id);
		if (instance_id)
			failed |= aws_params_add(params, "InstanceId", instance_id);
		if (force)
			failed |= aws_params_add(params, "Force", "true");
	}
	return ec2_act(ctx, params, failed, dry_run, "DetachVolumeResponse", what, deadline,
		       NULL, err);
}
