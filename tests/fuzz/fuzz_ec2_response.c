/* fuzz_ec2_response.c: every EC2 response parser on the same arbitrary bytes, each page also
 * appended to a list that already holds one (the path a second page takes). Wrong roots are
 * refused early, so one corpus of EC2 documents reaches all of them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kb/ec2.h"
#include "kb/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void enis(const char *xml, size_t len)
{
	struct ec2_eni_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;

	if (ec2_parse_network_interfaces(xml, len, &list, &next, &err) == 0) {
		free(next);
		next = NULL;
		ec2_parse_network_interfaces(xml, len, &list, &next, &err);
	}
	free(next);
	ec2_eni_list_free(list);
}

static void volumes(const char *xml, size_t len)
{
	struct ec2_volume_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;

	if (ec2_parse_volumes(xml, len, &list, &next, &err) == 0) {
		free(next);
		next = NULL;
		ec2_parse_volumes(xml, len, &list, &next, &err);
	}
	free(next);
	ec2_volume_list_free(list);
}

static void instances(const char *xml, size_t len)
{
	struct ec2_instance_list *list = NULL;
	struct kb_error err = {{0}};
	char *next = NULL;

	if (ec2_parse_instances(xml, len, &list, &next, &err) == 0) {
		free(next);
		next = NULL;
		ec2_parse_instances(xml, len, &list, &next, &err);
	}
	free(next);
	ec2_instance_list_free(list);
}

static void tags(const char *xml, size_t len)
{
	struct kb_error err = {{0}};
	struct ec2_tag *found = NULL;
	char *next = NULL;
	size_t count = 0;

	if (ec2_parse_tags(xml, len, NULL, &found, &count, &next, &err) == 0) {
		free(next);
		next = NULL;
		ec2_parse_tags(xml, len, "i-1234567890abcdef0", &found, &count, &next, &err);
	}
	free(next);
	ec2_tags_free(found, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	struct kb_error err = {{0}};
	char *attachment = NULL;

	enis(xml, size);
	volumes(xml, size);
	instances(xml, size);
	tags(xml, size);
	ec2_parse_attach_network_interface(xml, size, &attachment, &err);
	free(attachment);
	xml_expect_root(xml, size, "AttachVolumeResponse", &err);
	return 0;
}
