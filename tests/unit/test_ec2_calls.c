/* test_ec2_calls.c: what the EC2 calls send (exact form bodies), how they follow pages, and
 * how EC2's answers become return values, against a scripted HTTP responder (http_stub.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_stub.h"
#include "kb/aws.h"
#include "kb/deadline.h"
#include "kb/ec2.h"

#define NS "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

/* An EC2 error document as AWS sends it (no namespace, RequestID). */
static char *ec2_error(const char *code, const char *message)
{
	char *doc = NULL;

	assert_true(asprintf(&doc,
			     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
			     "<Code>%s</Code><Message>%s</Message></Error></Errors>"
			     "<RequestID>5b48c718-0000-4000-8000-000000000000</RequestID></Response>",
			     code, message) > 0);
	return doc;
}

static void describe_sends_filters_encoded_once_and_follows_every_page(void **state)
{
	static const char *const tag[] = {"KAFKA-*"};
	static const char *const az[] = {"us-east-1a"};
	static const char *const cluster[] = {"prod blue/a+b~c*\xc3\xbc", "x"};
	const struct ec2_filter filters[] = {
		{"tag:Name", tag, 1}, {"availability-zone", az, 1},
		{"tag:kafka-bootstrap:cluster", cluster, 2},
	};
	const struct stub_reply replies[] = {
		{200, "<DescribeNetworkInterfacesResponse " NS "><networkInterfaceSet>"
		      "<item><networkInterfaceId>eni-1</networkInterfaceId></item>"
		      "</networkInterfaceSet><nextToken>tok/+= 1</nextToken>"
		      "</DescribeNetworkInterfacesResponse>", NULL},
		{200, "<DescribeNetworkInterfacesResponse " NS "><networkInterfaceSet/>"
		      "<nextToken>t2</nextToken></DescribeNetworkInterfacesResponse>", NULL},
		{200, "<DescribeNetworkInterfacesResponse " NS "><networkInterfaceSet>"
		      "<item><networkInterfaceId>eni-2</networkInterfaceId></item>"
		      "</networkInterfaceSet><nextToken></nextToken>"
		      "</DescribeNetworkInterfacesResponse>", NULL},
	};
	/* botocore's serializer; aws.c writes a space as %20 where botocore writes '+' (a form
	 * decoder reads both as a space). */
	static const char first[] =
		"Action=DescribeNetworkInterfaces&Version=2016-11-15"
		"&Filter.1.Name=tag%3AName&Filter.1.Value.1=KAFKA-%2A"
		"&Filter.2.Name=availability-zone&Filter.2.Value.1=us-east-1a"
		"&Filter.3.Name=tag%3Akafka-bootstrap%3Acluster"
		"&Filter.3.Value.1=prod%20blue%2Fa%2Bb~c%2A%C3%BC&Filter.3.Value.2=x"
		"&MaxResults=1000";
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 3);
	char expect[1024];

	(void)state;
	assert_int_equal(ec2_describe_network_interfaces(ctx, filters, 3,
							 deadline_after_ms(10000), &list, &err),
			 0);
	assert_int_equal(stub_served(s), 3);
	assert_string_equal(stub_body(s, 0), first);
	snprintf(expect, sizeof(expect), "%s&NextToken=tok%%2F%%2B%%3D%%201", first);
	assert_string_equal(stub_body(s, 1), expect);
	snprintf(expect, sizeof(expect), "%s&NextToken=t2", first);
	assert_string_equal(stub_body(s, 2), expect);
	assert_int_equal(list->count, 2);
	assert_string_equal(list->items[0].id, "eni-1");
	assert_string_equal(list->items[1].id, "eni-2");
	ec2_eni_list_free(list);
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void describe_by_id_sends_no_max_results_and_unknown_is_enoent(void **state)
{
	char *not_found = ec2_error("InvalidNetworkInterfaceID.NotFound",
				    "The networkInterface ID 'eni-9' does not exist");
	const struct stub_reply replies[] = {
		{400, not_found, NULL},
		{200, "<DescribeNetworkInterfacesResponse " NS "><networkInterfaceSet/>"
		      "</DescribeNetworkInterfacesResponse>", NULL},
		{200, "<DescribeVolumesResponse " NS "><volumeSet><item><volumeId>vol-1</volumeId>"
		      "</item></volumeSet></DescribeVolumesResponse>", NULL},
	};
	struct ec2_volume_list *vols = NULL;
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 3);

	(void)state;
	assert_int_equal(ec2_describe_network_interface(ctx, "eni-9", deadline_after_ms(10000),
							&list, &err), -ENOENT);
	assert_null(list);
	assert_string_equal(stub_body(s, 0), "Action=DescribeNetworkInterfaces&Version=2016-11-15"
					      "&NetworkInterfaceId.1=eni-9");
	/* The action once, then AWS's code and message. */
	assert_ptr_equal(strstr(err.msg, "DescribeNetworkInterfaces: "
				     "InvalidNetworkInterfaceID.NotFound: The networkInterface ID "
				     "'eni-9' does not exist"), err.msg);
	/* An id EC2 answers with an empty set is not found either. */
	kb_error_clear(&err);
	assert_int_equal(ec2_describe_network_interface(ctx, "eni-9", deadline_after_ms(10000),
							&list, &err), -ENOENT);
	assert_string_equal(err.msg, "DescribeNetworkInterfaces: eni-9: not found");
	assert_int_equal(ec2_describe_volume(ctx, "vol-1", deadline_after_ms(10000), &vols, &err),
			 0);
	assert_string_equal(stub_body(s, 2),
			    "Action=DescribeVolumes&Version=2016-11-15&VolumeId.1=vol-1");
	assert_int_equal(vols->count, 1);
	ec2_volume_list_free(vols);
	aws_ctx_free(ctx);
	stub_stop(s);
	free(not_found);
}

static void instances_by_filter_leave_unknown_ids_out_in_calls_of_100(void **state)
{
	const struct stub_reply replies[] = {
		{200, "<DescribeInstancesResponse " NS "><reservationSet><item><instancesSet>"
		      "<item><instanceId>i-a</instanceId><instanceState><code>16</code>"
		      "<name>running</name></instanceState></item>"
		      "</instancesSet></item></reservationSet></DescribeInstancesResponse>", NULL},
		{200, "<DescribeInstancesResponse " NS "><reservationSet/>"
		      "</DescribeInstancesResponse>", NULL},
		{200, "<DescribeInstancesResponse " NS "><reservationSet><item><instancesSet>"
		      "<item><instanceId>i-last</instanceId></item>"
		      "</instancesSet></item></reservationSet></DescribeInstancesResponse>", NULL},
	};
	const char *ids[150];
	char names[150][16];
	struct ec2_instance_list *list = NULL;
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 3);

	(void)state;
	ids[0] = "i-a";
	ids[1] = "i-gone";
	assert_int_equal(ec2_describe_instances(ctx, ids, 2, deadline_after_ms(10000), &list,
						&err), 0);
	assert_string_equal(stub_body(s, 0),
			    "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-id"
			    "&Filter.1.Value.1=i-a&Filter.1.Value.2=i-gone&MaxResults=1000");
	assert_int_equal(list->count, 1);
	assert_string_equal(list->items[0].id, "i-a");
	assert_int_equal(list->items[0].state_code, 16);
	ec2_instance_list_free(list);
	for (int i = 0; i < 150; i++) {
		snprintf(names[i], sizeof(names[i]), "i-%d", i);
		ids[i] = names[i];
	}
	assert_int_equal(ec2_describe_instances(ctx, ids, 150, deadline_after_ms(10000), &list,
						&err), 0);
	assert_int_equal(stub_served(s), 3);
	assert_non_null(strstr(stub_body(s, 1), "&Filter.1.Value.100=i-99&MaxResults=1000"));
	assert_non_null(strstr(stub_body(s, 2), "&Filter.1.Value.1=i-100&"));
	assert_non_null(strstr(stub_body(s, 2), "&Filter.1.Value.50=i-149&MaxResults=1000"));
	assert_int_equal(list->count, 1);
	assert_string_equal(list->items[0].id, "i-last");
	ec2_instance_list_free(list);
	/* No ids, no call. */
	assert_int_equal(ec2_describe_instances(ctx, ids, 0, deadline_after_ms(10000), &list,
						&err), 0);
	assert_int_equal(list->count, 0);
	assert_int_equal(stub_served(s), 3);
	ec2_instance_list_free(list);
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void describe_tags_asks_for_one_resource(void **state)
{
	const struct stub_reply replies[] = {
		{200, "<DescribeTagsResponse " NS "><tagSet>"
		      "<item><resourceId>i-0123</resourceId><resourceType>instance</resourceType>"
		      "<key>aws:cloudformation:stack-name</key><value>kafka</value></item>"
		      "<item><resourceId>i-0123</resourceId><resourceType>instance</resourceType>"
		      "<key>aws:cloudformation:logical-id</key><value>BrokerGroup</value></item>"
		      "</tagSet></DescribeTagsResponse>", NULL},
	};
	struct ec2_tag *tags = NULL;
	struct kb_error err = {{0}};
	size_t count = 0;
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 1);

	(void)state;
	assert_int_equal(ec2_describe_tags(ctx, "i-0123", deadline_after_ms(10000), &tags, &count,
					   &err), 0);
	assert_string_equal(stub_body(s, 0),
			    "Action=DescribeTags&Version=2016-11-15&Filter.1.Name=resource-id"
			    "&Filter.1.Value.1=i-0123&MaxResults=1000");
	assert_int_equal(count, 2);
	assert_string_equal(ec2_tag_value(tags, count, "aws:cloudformation:logical-id"),
			    "BrokerGroup");
	ec2_tags_free(tags, count);
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void attach_network_interface_returns_the_attachment_id(void **state)
{
	const struct stub_reply replies[] = {
		{200, "<AttachNetworkInterfaceResponse " NS "><requestId>r</requestId>"
		      "<attachmentId>eni-attach-d94b09b0</attachmentId>"
		      "</AttachNetworkInterfaceResponse>", NULL},
	};
	struct kb_error err = {{0}};
	char *attachment = NULL;
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 1);

	(void)state;
	assert_int_equal(ec2_attach_network_interface(ctx, "eni-1", "i-1", 1, 0, false,
						      deadline_after_ms(10000), &attachment, &err),
			 0);
	assert_string_equal(stub_body(s, 0),
			    "Action=AttachNetworkInterface&Version=2016-11-15"
			    "&NetworkInterfaceId=eni-1&InstanceId=i-1&DeviceIndex=1"
			    "&NetworkCardIndex=0");
	assert_string_equal(attachment, "eni-attach-d94b09b0");
	free(attachment);
	aws_ctx_free(ctx);
	stub_stop(s);
}

struct mapping {
	int status;
	const char *code, *message;
	int ret;
};

static const struct mapping eni_errors[] = {
	{400, "InvalidNetworkInterface.InUse", "Interface: [eni-1] in use.", -EBUSY},
	{400, "InvalidParameterValue",
	 "Instance 'i-1' already has an interface attached at device index '1'.", -EBUSY},
	{400, "InvalidParameterCombination",
	 "You may not attach a network interface to an instance if they are not in the same "
	 "availability zone", -KB_EHELD},
	{400, "InvalidNetworkInterfaceID.NotFound",
	 "The networkInterface ID 'eni-1' does not exist", -ENOENT},
	{403, "UnauthorizedOperation", "You are not authorized to perform this operation.",
	 -KB_EDENIED},
	{400, "InvalidParameterValue", "Invalid value '7' for networkCardIndex.", -KB_EAWS},
	{400, "AttachmentLimitExceeded", "Interface count 16 exceeds the limit", -KB_EAWS},
};

static const struct mapping volume_errors[] = {
	{400, "VolumeInUse", "vol-1 is already attached to an instance", -EBUSY},
	{400, "InvalidVolume.ZoneMismatch",
	 "The volume 'vol-1' is not in the same availability zone as instance 'i-1'", -KB_EHELD},
	{400, "IncorrectState", "vol-1 is not 'available'.", -EAGAIN},
	{400, "InvalidDevice.InUse", "Invalid value '/dev/sdg' for unixDevice.", -EBUSY},
	{400, "InvalidVolume.NotFound", "The volume 'vol-1' does not exist.", -ENOENT},
};

static void run_mappings(const struct mapping *cases, size_t n, bool eni)
{
	struct stub_reply replies[16];
	char *docs[16];
	struct stub *s;
	struct aws_ctx *ctx;

	for (size_t i = 0; i < n; i++) {
		docs[i] = ec2_error(cases[i].code, cases[i].message);
		replies[i] = (struct stub_reply){cases[i].status, docs[i], NULL};
	}
	ctx = stub_ctx(&s, replies, n);
	for (size_t i = 0; i < n; i++) {
		struct kb_error err = {{0}};
		char *attachment = NULL, expect[512];
		int ret;

		if (eni)
			ret = ec2_attach_network_interface(ctx, "eni-1", "i-1", 1, 0, false,
							   deadline_after_ms(10000), &attachment,
							   &err);
		else
			ret = ec2_attach_volume(ctx, "vol-1", "i-1", "/dev/sdg", false,
						deadline_after_ms(10000), &err);
		if (ret != cases[i].ret)
			fail_msg("%s: got %d, expected %d (%s)", cases[i].code, ret, cases[i].ret,
				 err.msg);
		assert_null(attachment);
		/* The context, then AWS's code and message as they came. */
		snprintf(expect, sizeof(expect), "%s: %s: %s: %s (HTTP %d",
			 eni ? "attach eni-1 to i-1 as device 1 on card 0"
			     : "attach vol-1 to i-1 as /dev/sdg",
			 eni ? "AttachNetworkInterface" : "AttachVolume", cases[i].code,
			 cases[i].message, cases[i].status);
		if (strncmp(err.msg, expect, strlen(expect)) != 0)
			fail_msg("message '%s', expected it to start with '%s'", err.msg, expect);
	}
	aws_ctx_free(ctx);
	stub_stop(s);
	for (size_t i = 0; i < n; i++)
		free(docs[i]);
}

static void attach_errors_map_to_documented_return_values(void **state)
{
	(void)state;
	run_mappings(eni_errors, sizeof(eni_errors) / sizeof(eni_errors[0]), true);
	run_mappings(volume_errors, sizeof(volume_errors) / sizeof(volume_errors[0]), false);
}

static void dry_run_allowed_is_success_and_denied_is_kb_edenied(void **state)
{
	char *allowed = ec2_error("DryRunOperation",
				  "Request would have succeeded, but DryRun flag is set.");
	char *denied = ec2_error("UnauthorizedOperation",
				 "You are not authorized to perform this operation. Encoded "
				 "authorization failure message: abc");
	const struct stub_reply replies[] = {
		{412, allowed, NULL}, {403, denied, NULL},
		{412, allowed, NULL}, {403, denied, NULL},
	};
	struct kb_error err = {{0}};
	char *attachment = NULL;
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 4);

	(void)state;
	assert_int_equal(ec2_attach_network_interface(ctx, "eni-1", "i-1", 1, 0, true,
						      deadline_after_ms(10000), &attachment, &err),
			 0);
	assert_null(attachment);
	assert_string_equal(err.msg, "");
	assert_string_equal(stub_body(s, 0),
			    "Action=AttachNetworkInterface&Version=2016-11-15"
			    "&NetworkInterfaceId=eni-1&InstanceId=i-1&DeviceIndex=1"
			    "&NetworkCardIndex=0&DryRun=true");
	assert_int_equal(ec2_attach_network_interface(ctx, "eni-1", "i-1", 1, 0, true,
						      deadline_after_ms(10000), &attachment, &err),
			 -KB_EDENIED);
	assert_non_null(strstr(err.msg, "UnauthorizedOperation"));
	kb_error_clear(&err);
	assert_int_equal(ec2_attach_volume(ctx, "vol-1", "i-1", "/dev/sdg", true,
					   deadline_after_ms(10000), &err), 0);
	assert_string_equal(err.msg, "");
	assert_string_equal(stub_body(s, 2), "Action=AttachVolume&Version=2016-11-15"
					      "&VolumeId=vol-1&InstanceId=i-1&Device=%2Fdev%2Fsdg"
					      "&DryRun=true");
	assert_int_equal(ec2_attach_volume(ctx, "vol-1", "i-1", "/dev/sdg", true,
					   deadline_after_ms(10000), &err), -KB_EDENIED);
	aws_ctx_free(ctx);
	stub_stop(s);
	free(allowed);
	free(denied);
}

static void detach_and_attach_volume_bodies(void **state)
{
	const struct stub_reply replies[] = {
		{200, "<AttachVolumeResponse " NS "><volumeId>vol-1</volumeId>"
		      "<status>attaching</status></AttachVolumeResponse>", NULL},
		{200, "<DetachNetworkInterfaceResponse " NS "><return>true</return>"
		      "</DetachNetworkInterfaceResponse>", NULL},
		{200, "<DetachVolumeResponse " NS "><status>detaching</status>"
		      "</DetachVolumeResponse>", NULL},
		{200, "<DetachVolumeResponse " NS "/>", NULL},
	};
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 4);

	(void)state;
	assert_int_equal(ec2_attach_volume(ctx, "vol-1", "i-1", "/dev/sdg", false,
					   deadline_after_ms(10000), &err), 0);
	assert_int_equal(ec2_detach_network_interface(ctx, "eni-attach-1", true, false,
						      deadline_after_ms(10000), &err), 0);
	assert_int_equal(ec2_detach_volume(ctx, "vol-1", "i-1", false, false,
					   deadline_after_ms(10000), &err), 0);
	assert_int_equal(ec2_detach_volume(ctx, "vol-1", NULL, true, false,
					   deadline_after_ms(10000), &err), 0);
	assert_string_equal(stub_body(s, 0), "Action=AttachVolume&Version=2016-11-15"
					      "&VolumeId=vol-1&InstanceId=i-1&Device=%2Fdev%2Fsdg");
	assert_string_equal(stub_body(s, 1), "Action=DetachNetworkInterface&Version=2016-11-15"
					      "&AttachmentId=eni-attach-1&Force=true");
	assert_string_equal(stub_body(s, 2), "Action=DetachVolume&Version=2016-11-15"
					      "&VolumeId=vol-1&InstanceId=i-1");
	assert_string_equal(stub_body(s, 3), "Action=DetachVolume&Version=2016-11-15"
					      "&VolumeId=vol-1&Force=true");
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void unexpected_answers_are_errors_not_empty_results(void **state)
{
	const struct stub_reply replies[] = {
		/* 200 with another action's document */
		{200, "<DescribeVolumesResponse " NS "><volumeSet/></DescribeVolumesResponse>",
		 NULL},
		/* 200 that is not XML */
		{200, "<html><body>proxy login</body", NULL},
		/* a token that never changes would page forever */
		{200, "<DescribeVolumesResponse " NS "><volumeSet/><nextToken>same</nextToken>"
		      "</DescribeVolumesResponse>", NULL},
		{200, "<DescribeVolumesResponse " NS "><volumeSet/><nextToken>same</nextToken>"
		      "</DescribeVolumesResponse>", NULL},
		{200, "<AttachVolumeResponse " NS "/>", NULL},
	};
	static const char *const one[] = {"x"};
	const struct ec2_filter filter = {"tag:Name", one, 1};
	struct ec2_volume_list *vols = NULL;
	struct ec2_eni_list *enis = NULL;
	struct kb_error err = {{0}};
	char *attachment = NULL;
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 5);

	(void)state;
	assert_int_equal(ec2_describe_network_interfaces(ctx, &filter, 1,
							 deadline_after_ms(10000), &enis, &err),
			 -EBADMSG);
	assert_null(enis);
	assert_string_equal(err.msg, "DescribeNetworkInterfaces: unreadable response: expected "
				     "<DescribeNetworkInterfacesResponse>, got "
				     "<DescribeVolumesResponse>");
	kb_error_clear(&err);
	assert_int_equal(ec2_describe_volumes(ctx, &filter, 1, deadline_after_ms(10000), &vols,
					      &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "DescribeVolumes: unreadable response: malformed XML"));
	kb_error_clear(&err);
	assert_int_equal(ec2_describe_volumes(ctx, &filter, 1, deadline_after_ms(10000), &vols,
					      &err), -EPROTO);
	assert_null(vols);
	assert_string_equal(err.msg, "DescribeVolumes: EC2 returned the same NextToken twice");
	kb_error_clear(&err);
	assert_int_equal(ec2_attach_network_interface(ctx, "eni-1", "i-1", 1, 0, false,
						      deadline_after_ms(10000), &attachment, &err),
			 -EBADMSG);
	assert_null(attachment);
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void a_filter_without_value_is_refused_before_sending(void **state)
{
	const struct ec2_filter filter = {"tag:Name", NULL, 0};
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, NULL, 0);

	(void)state;
	assert_int_equal(ec2_describe_network_interfaces(ctx, &filter, 1,
							 deadline_after_ms(10000), &list, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "filter 1 has no name or no value");
	assert_int_equal(stub_served(s), 0);
	aws_ctx_free(ctx);
	stub_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(describe_sends_filters_encoded_once_and_follows_every_page),
		cmocka_unit_test(describe_by_id_sends_no_max_results_and_unknown_is_enoent),
		cmocka_unit_test(instances_by_filter_leave_unknown_ids_out_in_calls_of_100),
		cmocka_unit_test(describe_tags_asks_for_one_resource),
		cmocka_unit_test(attach_network_interface_returns_the_attachment_id),
		cmocka_unit_test(attach_errors_map_to_documented_return_values),
		cmocka_unit_test(dry_run_allowed_is_success_and_denied_is_kb_edenied),
		cmocka_unit_test(detach_and_attach_volume_bodies),
		cmocka_unit_test(unexpected_answers_are_errors_not_empty_results),
		cmocka_unit_test(a_filter_without_value_is_refused_before_sending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
