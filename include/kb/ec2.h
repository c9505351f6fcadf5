/* ec2.h: the EC2 Query API calls kafka-bootstrap makes, with typed results.
 *
 * Responses are parsed with libxml2, matching elements by local name (EC2's namespace is
 * http://ec2.amazonaws.com/doc/2016-11-15/, and moto's lacks the final slash). NextToken
 * pagination is followed inside each Describe function. AWS error codes the callers act on
 * are mapped to return values, and the code stays in the message:
 *   -ENOENT       InvalidNetworkInterfaceID.NotFound, InvalidVolume.NotFound,
 *                 InvalidInstanceID.NotFound
 *   -EBUSY        InvalidNetworkInterface.InUse, VolumeInUse, InvalidDevice.InUse,
 *                 InvalidParameterValue for a taken device index
 *   -EAGAIN       IncorrectState (volume still creating)
 *   -KB_EHELD     InvalidVolume.ZoneMismatch, an ENI in another AZ
 *   -KB_EDENIED   UnauthorizedOperation
 *   -KB_EAWS      any other AWS error; -KB_EUNAVAIL nothing answered before the deadline
 * A DryRun call returns 0 when EC2 answered DryRunOperation (the role may do it). */
#ifndef KB_EC2_H
#define KB_EC2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

struct aws_ctx;

#define EC2_API_VERSION "2016-11-15"

struct ec2_tag {
	char *key;
	char *value;
};

struct ec2_eni {
	char *id;
	char *subnet_id;
	char *vpc_id;
	char *az;
	char *mac;
	char *private_ip;
	char *status; /* available, attaching, in-use, detaching, associated */
	/* attachment, all NULL / -1 when unattached */
	char *attachment_id;
	char *attachment_instance_id;
	char *attachment_status; /* attaching, attached, detaching, detached */
	int attachment_device_index;
	int attachment_network_card_index;
	struct ec2_tag *tags;
	size_t tag_count;
};

struct ec2_eni_list {
	struct ec2_eni *items;
	size_t count;
};

struct ec2_volume {
	char *id;
	char *az;
	char *status; /* creating, available, in-use, deleting, deleted, error */
	char *volume_type;
	int size_gib;
	bool encrypted;
	/* first attachment (kafka-bootstrap never uses Multi-Attach); NULL when unattached */
	char *attachment_instance_id;
	char *attachment_device;
	char *attachment_status; /* attaching, attached, detaching, detached, busy */
	struct ec2_tag *tags;
	size_t tag_count;
};

struct ec2_volume_list {
	struct ec2_volume *items;
	size_t count;
};

struct ec2_instance {
	char *id;
	char *state_name; /* pending, running, shutting-down, terminated, stopping, stopped */
	int state_code;   /* already masked with 0xff */
	char *az;
	char *launch_time;
	struct ec2_tag *tags;
	size_t tag_count;
};

struct ec2_instance_list {
	struct ec2_instance *items;
	size_t count;
};

struct ec2_filter {
	const char *name;            /* "tag:Name", "availability-zone" */
	const char *const *values;   /* OR */
	size_t value_count;
};

void ec2_eni_list_free(struct ec2_eni_list *list);
void ec2_volume_list_free(struct ec2_volume_list *list);
void ec2_instance_list_free(struct ec2_instance_list *list);
/* Borrowed value of key, NULL when absent. */
const char *ec2_tag_value(const struct ec2_tag *tags, size_t count, const char *key);

/* Filters AND, values OR. */
int ec2_describe_network_interfaces(struct aws_ctx *ctx, const struct ec2_filter *filters,
				    size_t filter_count, int64_t deadline,
				    struct ec2_eni_list **out, struct kb_error *err);
/* By id: one interface (-ENOENT when unknown); used to poll an attachment. */
int ec2_describe_network_interface(struct aws_ctx *ctx, const char *eni_id, int64_t deadline,
				   struct ec2_eni_list **out, struct kb_error *err);
int ec2_attach_network_interface(struct aws_ctx *ctx, const char *eni_id,
				 const char *instance_id, int device_index, int network_card_index,
				 bool dry_run, int64_t deadline, char **attachment_id,
				 struct kb_error *err);
int ec2_detach_network_interface(struct aws_ctx *ctx, const char *attachment_id, bool force,
				 bool dry_run, int64_t deadline, struct kb_error *err);

int ec2_describe_volumes(struct aws_ctx *ctx, const struct ec2_filter *filters,
			 size_t filter_count, int64_t deadline, struct ec2_volume_list **out,
			 struct kb_error *err);
int ec2_describe_volume(struct aws_ctx *ctx, const char *volume_id, int64_t deadline,
			struct ec2_volume_list **out, struct kb_error *err);
int ec2_attach_volume(struct aws_ctx *ctx, const char *volume_id, const char *instance_id,
		      const char *device, bool dry_run, int64_t deadline, struct kb_error *err);
int ec2_detach_volume(struct aws_ctx *ctx, const char *volume_id, const char *instance_id,
		      bool force, bool dry_run, int64_t deadline, struct kb_error *err);

/* Instances by id. Ids EC2 does not know are absent from the list (not an error), so one call
 * answers for several claim owners; the caller treats "absent" as unknown. */
int ec2_describe_instances(struct aws_ctx *ctx, const char *const *ids, size_t id_count,
			   int64_t deadline, struct ec2_instance_list **out, struct kb_error *err);
/* Tags of one resource (DescribeTags resource-id=<id>). */
int ec2_describe_tags(struct aws_ctx *ctx, const char *resource_id, int64_t deadline,
		      struct ec2_tag **tags, size_t *count, struct kb_error *err);
void ec2_tags_free(struct ec2_tag *tags, size_t count);

/* Response parsers, exposed for tests and fuzz targets. *next_token is NULL at the end. They
 * append to *out (allocated on first use). */
int ec2_parse_network_interfaces(const char *xml, size_t len, struct ec2_eni_list **out,
				 char **next_token, struct kb_error *err);
int ec2_parse_volumes(const char *xml, size_t len, struct ec2_volume_list **out,
		      char **next_token, struct kb_error *err);
int ec2_parse_instances(const char *xml, size_t len, struct ec2_instance_list **out,
			char **next_token, struct kb_error *err);
/* DescribeTags: the key and value of each item whose resourceId is resource_id. */
int ec2_parse_tags(const char *xml, size_t len, const char *resource_id, struct ec2_tag **tags,
		   size_t *count, char **next_token, struct kb_error *err);
/* AttachNetworkInterface: the attachmentId. */
int ec2_parse_attach_network_interface(const char *xml, size_t len, char **attachment_id,
				       struct kb_error *err);
/* <Response><Errors><Error><Code>..; also CloudFormation's and Auto Scaling's <ErrorResponse>. */
int ec2_parse_error(const char *xml, size_t len, char **code, char **message, char **request_id);

#endif
