/* test_ec2_parse.c: EC2 response parsers against AWS's documentation samples, moto-shaped
 * answers, errors, pagination tokens, empty sets, and broken or hostile documents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/ec2.h"
#include "kb/file.h"
#include "kb/xml.h"

static char *fixture(const char *name, size_t *len)
{
	const char *src = getenv("KB_SOURCE_DIR");
	struct kb_error err = {{0}};
	char path[4096];
	char *data = NULL;

	snprintf(path, sizeof(path), "%s/tests/data/ec2/%s", src ? src : ".", name);
	if (file_read_all(path, &data, len, &err) < 0)
		fail_msg("%s", err.msg);
	return data;
}

static void assert_tag(const struct ec2_tag *tags, size_t count, const char *key,
		       const char *value)
{
	const char *got = ec2_tag_value(tags, count, key);

	assert_non_null(got);
	assert_string_equal(got, value);
}

static void aws_sample_network_interfaces_read_every_field(void **state)
{
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = (char *)"unset";
	size_t len;
	char *xml = fixture("aws-describe-network-interfaces.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_network_interfaces(xml, len, &list, &next, &err), 0);
	assert_null(next);
	assert_int_equal(list->count, 2);
	assert_string_equal(list->items[0].id, "eni-0f62d866");
	assert_string_equal(list->items[0].subnet_id, "subnet-c53c87ac");
	assert_string_equal(list->items[0].vpc_id, "vpc-cc3c87a5");
	assert_string_equal(list->items[0].az, "api-southeast-1b");
	assert_string_equal(list->items[0].mac, "02:81:60:cb:27:37");
	/* The item's own address, not one of privateIpAddressesSet's. */
	assert_string_equal(list->items[0].private_ip, "10.0.0.146");
	assert_string_equal(list->items[0].status, "in-use");
	assert_string_equal(list->items[0].attachment_id, "eni-attach-6537fc0c");
	assert_string_equal(list->items[0].attachment_instance_id, "i-1234567890abcdef0");
	assert_string_equal(list->items[0].attachment_status, "attached");
	assert_int_equal(list->items[0].attachment_device_index, 0);
	assert_int_equal(list->items[0].attachment_network_card_index, 0);
	assert_int_equal(list->items[0].tag_count, 0);
	assert_string_equal(list->items[1].id, "eni-a66ed5cf");
	assert_string_equal(list->items[1].az, "ap-southeast-1b");
	assert_string_equal(list->items[1].private_ip, "10.0.1.233");
	assert_string_equal(list->items[1].attachment_instance_id, "i-0598c7d356eba48d7");
	assert_string_equal(list->items[1].attachment_id, "eni-attach-a99c57c0");
	ec2_eni_list_free(list);
	free(xml);
}

static void moto_network_interfaces_namespace_without_slash_and_unattached(void **state)
{
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;
	size_t len;
	char *xml = fixture("moto-describe-network-interfaces.xml", &len);
	const struct ec2_eni *a, *b;

	(void)state;
	assert_int_equal(ec2_parse_network_interfaces(xml, len, &list, &next, &err), 0);
	assert_null(next);
	assert_int_equal(list->count, 2);
	a = &list->items[0];
	b = &list->items[1];
	assert_string_equal(a->id, "eni-0a1b2c3d4e5f60718");
	assert_string_equal(a->attachment_instance_id, "i-0123456789abcdef0");
	assert_int_equal(a->attachment_device_index, 1);
	assert_int_equal(a->attachment_network_card_index, 0);
	assert_int_equal(a->tag_count, 2);
	assert_tag(a->tags, a->tag_count, "Name", "KAFKA-3");
	/* Entities decoded once. */
	assert_tag(a->tags, a->tag_count, "kafka-bootstrap:cluster", "prod & \"blue\"");
	assert_string_equal(b->id, "eni-0b2c3d4e5f6071829");
	assert_string_equal(b->status, "available");
	assert_string_equal(b->mac, "0e:49:61:0f:c3:12");
	assert_null(b->attachment_id);
	assert_null(b->attachment_instance_id);
	assert_null(b->attachment_status);
	assert_int_equal(b->attachment_device_index, -1);
	assert_int_equal(b->attachment_network_card_index, -1);
	assert_tag(b->tags, b->tag_count, "Name", "KAFKA-4");
	assert_null(ec2_tag_value(b->tags, b->tag_count, "kafka-bootstrap:cluster"));
	ec2_eni_list_free(list);
	free(xml);
}

static void aws_sample_volumes_read_every_field(void **state)
{
	struct ec2_volume_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;
	size_t len;
	char *xml = fixture("aws-describe-volumes.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_volumes(xml, len, &list, &next, &err), 0);
	assert_null(next);
	assert_int_equal(list->count, 1);
	assert_string_equal(list->items[0].id, "vol-1234567890abcdef0");
	assert_int_equal(list->items[0].size_gib, 80);
	assert_string_equal(list->items[0].az, "us-east-1a");
	assert_string_equal(list->items[0].status, "in-use");
	assert_string_equal(list->items[0].volume_type, "standard");
	assert_true(list->items[0].encrypted);
	assert_string_equal(list->items[0].attachment_instance_id, "i-1234567890abcdef0");
	assert_string_equal(list->items[0].attachment_device, "/dev/sdh");
	assert_string_equal(list->items[0].attachment_status, "attached");
	assert_int_equal(list->items[0].tag_count, 0);
	ec2_volume_list_free(list);
	free(xml);
}

static void moto_volumes_empty_attachment_set_and_empty_next_token(void **state)
{
	struct ec2_volume_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = (char *)"unset";
	size_t len;
	char *xml = fixture("moto-describe-volumes.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_volumes(xml, len, &list, &next, &err), 0);
	assert_null(next);
	assert_int_equal(list->count, 2);
	assert_string_equal(list->items[0].id, "vol-0123456789abcdef0");
	assert_int_equal(list->items[0].size_gib, 500);
	assert_false(list->items[0].encrypted);
	assert_string_equal(list->items[0].volume_type, "gp3");
	assert_null(list->items[0].attachment_instance_id);
	assert_null(list->items[0].attachment_device);
	assert_null(list->items[0].attachment_status);
	assert_int_equal(list->items[0].tag_count, 1);
	assert_tag(list->items[0].tags, list->items[0].tag_count, "Name", "KAFKA-3");
	assert_true(list->items[1].encrypted);
	assert_string_equal(list->items[1].attachment_instance_id, "i-0fedcba9876543210");
	assert_string_equal(list->items[1].attachment_device, "/dev/sdg");
	assert_int_equal(list->items[1].tag_count, 0);
	ec2_volume_list_free(list);
	free(xml);
}

static void aws_sample_instances_read_state_zone_and_own_tags(void **state)
{
	struct ec2_instance_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;
	size_t len;
	char *xml = fixture("aws-describe-instances.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_instances(xml, len, &list, &next, &err), 0);
	assert_null(next);
	assert_int_equal(list->count, 1);
	assert_string_equal(list->items[0].id, "i-1234567890abcdef0");
	assert_string_equal(list->items[0].state_name, "running");
	assert_int_equal(list->items[0].state_code, 16);
	assert_string_equal(list->items[0].az, "eu-west-1c");
	assert_string_equal(list->items[0].launch_time, "2018-05-08T16:46:19.000Z");
	assert_int_equal(list->items[0].tag_count, 1);
	assert_tag(list->items[0].tags, list->items[0].tag_count, "Name", "Server_1");
	ec2_instance_list_free(list);
	free(xml);
}

static void instances_from_every_reservation_with_masked_state_code(void **state)
{
	static const char xml[] =
		"<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
		"<reservationSet>"
		"<item><instancesSet>"
		"<item><instanceId>i-a</instanceId><instanceState><code>272</code>"
		"<name>running</name></instanceState></item>"
		"<item><instanceId>i-b</instanceId><instanceState><code>48</code>"
		"<name>terminated</name></instanceState></item>"
		"</instancesSet></item>"
		"<item><instancesSet><item><instanceId>i-c</instanceId></item></instancesSet></item>"
		"<item><instancesSet/></item>"
		"</reservationSet></DescribeInstancesResponse>";
	struct ec2_instance_list *list = NULL;
	struct kb_error err = {{0}};

	(void)state;
	assert_int_equal(ec2_parse_instances(xml, sizeof(xml) - 1, &list, NULL, &err), 0);
	assert_int_equal(list->count, 3);
	assert_string_equal(list->items[0].id, "i-a");
	assert_int_equal(list->items[0].state_code, 16);
	assert_string_equal(list->items[1].state_name, "terminated");
	assert_int_equal(list->items[1].state_code, 48);
	assert_string_equal(list->items[2].id, "i-c");
	assert_null(list->items[2].state_name);
	assert_int_equal(list->items[2].state_code, -1);
	assert_null(list->items[2].az);
	ec2_instance_list_free(list);
}

static void aws_sample_describe_tags_is_not_well_formed_and_is_refused(void **state)
{
	struct ec2_tag *tags = NULL;
	struct kb_error err = {{0}};
	size_t count = 0, len;
	char *xml = fixture("aws-describe-tags.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_tags(xml, len, "i-1234567890abcdef0", &tags, &count, NULL,
					&err), -EBADMSG);
	assert_int_equal(count, 0);
	assert_null(tags);
	assert_non_null(strstr(err.msg, "malformed XML: line 1"));
	free(xml);
}

static void describe_tags_keeps_only_the_resource_asked_for(void **state)
{
	/* The documentation's sample with its root element repaired. */
	static const char xml[] =
		"<DescribeTagsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
		"<requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId><tagSet>"
		"<item><resourceId>ami-1a2b3c4d</resourceId><resourceType>image</resourceType>"
		"<key>webserver</key><value/></item>"
		"<item><resourceId>i-1234567890abcdef0</resourceId><resourceType>instance"
		"</resourceType><key>webserver</key><value/></item>"
		"<item><resourceId>i-1234567890abcdef0</resourceId><resourceType>instance"
		"</resourceType><key>stack</key><value>Production</value></item>"
		"<item><resourceId>i-0598c7d356eba48d7</resourceId><resourceType>instance"
		"</resourceType><key>stack</key><value>Test</value></item>"
		"</tagSet><nextToken>page-2</nextToken></DescribeTagsResponse>";
	struct ec2_tag *tags = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;
	size_t count = 0;

	(void)state;
	assert_int_equal(ec2_parse_tags(xml, sizeof(xml) - 1, "i-1234567890abcdef0", &tags,
					&count, &next, &err), 0);
	assert_int_equal(count, 2);
	assert_string_equal(tags[0].key, "webserver");
	assert_string_equal(tags[0].value, "");
	assert_string_equal(tags[1].key, "stack");
	assert_string_equal(tags[1].value, "Production");
	assert_string_equal(next, "page-2");
	free(next);
	ec2_tags_free(tags, count);
}

static void aws_sample_attach_network_interface_gives_attachment_id(void **state)
{
	struct kb_error err = {{0}};
	char *id = NULL;
	size_t len;
	char *xml = fixture("aws-attach-network-interface.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_attach_network_interface(xml, len, &id, &err), 0);
	assert_string_equal(id, "eni-attach-d94b09b0");
	free(id);
	free(xml);
}

static void aws_sample_attach_volume_root_is_checked(void **state)
{
	struct kb_error err = {{0}};
	size_t len;
	char *xml = fixture("aws-attach-volume.xml", &len);

	(void)state;
	assert_int_equal(xml_expect_root(xml, len, "AttachVolumeResponse", &err), 0);
	assert_int_equal(xml_expect_root(xml, len, "DetachVolumeResponse", &err), -EBADMSG);
	assert_string_equal(err.msg, "expected <DetachVolumeResponse>, got <AttachVolumeResponse>");
	free(xml);
}

struct error_case {
	const char *file, *code, *message, *request_id;
};

static void error_documents_of_every_shape(void **state)
{
	static const struct error_case cases[] = {
		{"aws-error.xml", "InvalidInstanceID.NotFound",
		 "The instance ID 'i-1a2b3c4d' does not exist", "ea966190-f9aa-478e-9ede-example"},
		{"moto-error.xml", "InvalidVolume.NotFound",
		 "The volume '{'vol-0123456789abcdef0'}' does not exist.",
		 "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"},
		{"cfn-error-not-waiting.xml", "ValidationError",
		 "Stack arn:aws:cloudformation:us-east-1:123456789012:stack/kafka/"
		 "0b5e6e40-1a2b-11ef-8c1d-0a1b2c3d4e5f is in CREATE_COMPLETE state and cannot be "
		 "signaled", "b254a5e5-6f1c-4d8a-9c5e-example"},
		{"asg-error.xml", "ValidationError",
		 "No active Lifecycle Action found with instance ID i-0123456789abcdef0",
		 "7c6e1d2a-0b3f-4e5d-8a9b-example"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *code = NULL, *message = NULL, *request_id = NULL;
		size_t len;
		char *xml = fixture(cases[i].file, &len);

		assert_int_equal(ec2_parse_error(xml, len, &code, &message, &request_id), 0);
		assert_string_equal(code, cases[i].code);
		assert_string_equal(message, cases[i].message);
		assert_string_equal(request_id, cases[i].request_id);
		free(code);
		free(message);
		free(request_id);
		free(xml);
	}
}

static void a_success_document_is_not_an_error(void **state)
{
	char *code = NULL, *message = NULL, *request_id = NULL;
	size_t len;
	char *xml = fixture("aws-describe-volumes.xml", &len);

	(void)state;
	assert_true(ec2_parse_error(xml, len, &code, &message, &request_id) < 0);
	assert_null(code);
	assert_true(ec2_parse_error("<Response", 9, &code, &message, &request_id) < 0);
	assert_null(code);
	free(xml);
}

static void pages_append_and_next_token_follows_the_page(void **state)
{
	static const char page1[] =
		"<DescribeNetworkInterfacesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
		"<networkInterfaceSet><item><networkInterfaceId>eni-1</networkInterfaceId></item>"
		"</networkInterfaceSet><nextToken>tok+/=1</nextToken>"
		"</DescribeNetworkInterfacesResponse>";
	/* A short, even empty, page that is not the last. */
	static const char page2[] =
		"<DescribeNetworkInterfacesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
		"<networkInterfaceSet/><nextToken>tok2</nextToken>"
		"</DescribeNetworkInterfacesResponse>";
	static const char page3[] =
		"<DescribeNetworkInterfacesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
		"<networkInterfaceSet><item><networkInterfaceId>eni-2</networkInterfaceId></item>"
		"<item><networkInterfaceId>eni-3</networkInterfaceId></item></networkInterfaceSet>"
		"</DescribeNetworkInterfacesResponse>";
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;

	(void)state;
	assert_int_equal(ec2_parse_network_interfaces(page1, sizeof(page1) - 1, &list, &next,
						      &err), 0);
	assert_string_equal(next, "tok+/=1");
	free(next);
	assert_int_equal(ec2_parse_network_interfaces(page2, sizeof(page2) - 1, &list, &next,
						      &err), 0);
	assert_string_equal(next, "tok2");
	free(next);
	assert_int_equal(list->count, 1);
	assert_int_equal(ec2_parse_network_interfaces(page3, sizeof(page3) - 1, &list, &next,
						      &err), 0);
	assert_null(next);
	assert_int_equal(list->count, 3);
	assert_string_equal(list->items[0].id, "eni-1");
	assert_string_equal(list->items[2].id, "eni-3");
	ec2_eni_list_free(list);
}

static void empty_or_absent_sets_give_an_empty_list(void **state)
{
	static const char *const docs[] = {
		"<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
		"<volumeSet/></DescribeVolumesResponse>",
		"<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\">"
		"<requestId>r</requestId></DescribeVolumesResponse>",
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVolumesResponse>\n"
		"<volumeSet>\n</volumeSet>\n<nextToken/>\n</DescribeVolumesResponse>\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct ec2_volume_list *list = NULL;
		struct kb_error err = {{0}};
		char *next = (char *)"unset";

		assert_int_equal(ec2_parse_volumes(docs[i], strlen(docs[i]), &list, &next, &err),
				 0);
		assert_non_null(list);
		assert_int_equal(list->count, 0);
		assert_null(next);
		ec2_volume_list_free(list);
	}
}

static void wrong_root_is_refused_with_both_names(void **state)
{
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	size_t len;
	char *xml = fixture("aws-describe-volumes.xml", &len);
	char *error_doc = fixture("aws-error.xml", &len);

	(void)state;
	len = strlen(xml);
	assert_int_equal(ec2_parse_network_interfaces(xml, len, &list, NULL, &err), -EBADMSG);
	assert_null(list);
	assert_string_equal(err.msg, "expected <DescribeNetworkInterfacesResponse>, got "
				     "<DescribeVolumesResponse>");
	kb_error_clear(&err);
	assert_int_equal(ec2_parse_network_interfaces(error_doc, strlen(error_doc), &list, NULL,
						      &err), -EBADMSG);
	assert_string_equal(err.msg, "expected <DescribeNetworkInterfacesResponse>, got "
				     "<Response>");
	free(xml);
	free(error_doc);
}

static void every_truncation_of_a_sample_is_an_error(void **state)
{
	size_t len;
	char *xml = fixture("aws-describe-network-interfaces.xml", &len);
	size_t end = len;

	(void)state;
	/* Well-formed again only once the root's end tag is complete. */
	while (end > 0 && xml[end - 1] != '>')
		end--;
	for (size_t n = 0; n < end; n++) {
		struct ec2_eni_list *list = NULL;
		struct kb_error err = {{0}};
		char *next = NULL;
		int ret = ec2_parse_network_interfaces(xml, n, &list, &next, &err);

		if (ret != -EBADMSG)
			fail_msg("prefix of %zu bytes: %d %s", n, ret, err.msg);
		assert_null(list);
		assert_null(next);
		assert_true(strncmp(err.msg, "malformed XML", 13) == 0);
	}
	free(xml);
}

static void a_failed_page_leaves_earlier_pages_untouched(void **state)
{
	static const char bad[] =
		"<DescribeNetworkInterfacesResponse><networkInterfaceSet>"
		"<item><networkInterfaceId>eni-x</networkInterfaceId></item>"
		"<item><networkInterfaceId>eni-y</networkInterfaceId>"
		"<attachment><deviceIndex>one</deviceIndex></attachment></item>"
		"</networkInterfaceSet><nextToken>t</nextToken></DescribeNetworkInterfacesResponse>";
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;
	size_t len;
	char *xml = fixture("aws-describe-network-interfaces.xml", &len);

	(void)state;
	assert_int_equal(ec2_parse_network_interfaces(xml, len, &list, NULL, &err), 0);
	assert_int_equal(ec2_parse_network_interfaces(bad, sizeof(bad) - 1, &list, &next, &err),
			 -EBADMSG);
	assert_string_equal(err.msg, "eni-y: <deviceIndex> is not an integer: 'one'");
	assert_null(next);
	assert_int_equal(list->count, 2);
	assert_string_equal(list->items[1].id, "eni-a66ed5cf");
	ec2_eni_list_free(list);
	free(xml);
}

static void items_without_id_or_with_bad_values_are_errors(void **state)
{
	static const char no_id[] =
		"<DescribeVolumesResponse><volumeSet><item><size>8</size></item></volumeSet>"
		"</DescribeVolumesResponse>";
	static const char bad_bool[] =
		"<DescribeVolumesResponse><volumeSet><item><volumeId>vol-1</volumeId>"
		"<encrypted>yes</encrypted></item></volumeSet></DescribeVolumesResponse>";
	static const char big_size[] =
		"<DescribeVolumesResponse><volumeSet><item><volumeId>vol-1</volumeId>"
		"<size>99999999999</size></item></volumeSet></DescribeVolumesResponse>";
	static const char tag_no_key[] =
		"<DescribeVolumesResponse><volumeSet><item><volumeId>vol-1</volumeId>"
		"<tagSet><item><value>v</value></item></tagSet></item></volumeSet>"
		"</DescribeVolumesResponse>";
	static const struct {
		const char *xml, *msg;
	} cases[] = {
		{no_id, "volume without <volumeId>"},
		{bad_bool, "vol-1: <encrypted> is not a boolean: 'yes'"},
		{big_size, "vol-1: <size> is not an integer: '99999999999'"},
		{tag_no_key, "vol-1: tag without <key>"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ec2_volume_list *list = NULL;
		struct kb_error err = {{0}};

		assert_int_equal(ec2_parse_volumes(cases[i].xml, strlen(cases[i].xml), &list, NULL,
						   &err), -EBADMSG);
		assert_null(list);
		assert_string_equal(err.msg, cases[i].msg);
	}
}

static void fields_are_never_taken_from_nested_elements(void **state)
{
	static const char xml[] =
		"<DescribeNetworkInterfacesResponse><networkInterfaceSet><item>"
		"<networkInterfaceId>eni-1</networkInterfaceId>"
		"<association><status>associated</status></association>"
		"<privateIpAddressesSet><item><privateIpAddress>10.0.0.9</privateIpAddress></item>"
		"</privateIpAddressesSet>"
		"<groupSet><item><key>Name</key><value>KAFKA-1</value></item></groupSet>"
		"</item></networkInterfaceSet></DescribeNetworkInterfacesResponse>";
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};

	(void)state;
	assert_int_equal(ec2_parse_network_interfaces(xml, sizeof(xml) - 1, &list, NULL, &err),
			 0);
	assert_int_equal(list->count, 1);
	assert_null(list->items[0].status);
	assert_null(list->items[0].private_ip);
	assert_int_equal(list->items[0].tag_count, 0);
	assert_null(list->items[0].attachment_id);
	ec2_eni_list_free(list);
}

static void dtd_and_entities_are_refused_before_expansion(void **state)
{
	static const char laughs[] =
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		"<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">"
		"<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
		"<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
		"<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
		"<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
		"<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
		"<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
		"<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">"
		"]><DescribeTagsResponse><tagSet><item><key>k</key><value>&lol9;</value></item>"
		"</tagSet></DescribeTagsResponse>";
	static const char external[] =
		"<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"http://169.254.169.254/latest/\">"
		"<DescribeTagsResponse><tagSet><item><key>k</key><value>v</value></item></tagSet>"
		"</DescribeTagsResponse>";
	static const char *const docs[] = {laughs, external};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct ec2_tag *tags = NULL;
		struct kb_error err = {{0}};
		size_t count = 0;

		assert_int_equal(ec2_parse_tags(docs[i], strlen(docs[i]), NULL, &tags, &count,
						NULL, &err), -EPROTO);
		assert_int_equal(count, 0);
		assert_string_equal(err.msg, "XML document carries a DTD, which AWS never sends");
	}
}

static void huge_or_deep_documents_fail_cleanly(void **state)
{
	size_t deep_n = 5000, len = XML_MAX_DOCUMENT + 1;
	char *huge = malloc(len), *deep = malloc(deep_n * 7 + 64), *p;
	struct ec2_volume_list *list = NULL;
	struct kb_error err = {{0}};

	(void)state;
	assert_non_null(huge);
	assert_non_null(deep);
	memset(huge, ' ', len);
	assert_int_equal(ec2_parse_volumes(huge, len, &list, NULL, &err), -EFBIG);
	assert_null(list);
	p = deep + sprintf(deep, "<DescribeVolumesResponse>");
	for (size_t i = 0; i < deep_n; i++)
		p += sprintf(p, "<a>");
	kb_error_clear(&err);
	assert_int_equal(ec2_parse_volumes(deep, (size_t)(p - deep), &list, NULL, &err),
			 -EBADMSG);
	assert_null(list);
	free(huge);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aws_sample_network_interfaces_read_every_field),
		cmocka_unit_test(moto_network_interfaces_namespace_without_slash_and_unattached),
		cmocka_unit_test(aws_sample_volumes_read_every_field),
		cmocka_unit_test(moto_volumes_empty_attachment_set_and_empty_next_token),
		cmocka_unit_test(aws_sample_instances_read_state_zone_and_own_tags),
		cmocka_unit_test(instances_from_every_reservation_with_masked_state_code),
		cmocka_unit_test(aws_sample_describe_tags_is_not_well_formed_and_is_refused),
		cmocka_unit_test(describe_tags_keeps_only_the_resource_asked_for),
		cmocka_unit_test(aws_sample_attach_network_interface_gives_attachment_id),
		cmocka_unit_test(aws_sample_attach_volume_root_is_checked),
		cmocka_unit_test(error_documents_of_every_shape),
		cmocka_unit_test(a_success_document_is_not_an_error),
		cmocka_unit_test(pages_append_and_next_token_follows_the_page),
		cmocka_unit_test(empty_or_absent_sets_give_an_empty_list),
		cmocka_unit_test(wrong_root_is_refused_with_both_names),
		cmocka_unit_test(every_truncation_of_a_sample_is_an_error),
		cmocka_unit_test(a_failed_page_leaves_earlier_pages_untouched),
		cmocka_unit_test(items_without_id_or_with_bad_values_are_errors),
		cmocka_unit_test(fields_are_never_taken_from_nested_elements),
		cmocka_unit_test(dtd_and_entities_are_refused_before_expansion),
		cmocka_unit_test(huge_or_deep_documents_fail_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
