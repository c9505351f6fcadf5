/* fuzz_imds_identity.c: the instance identity document (IMDS's
 * dynamic/instance-identity/document) on arbitrary bytes. Invariants: a success sets each of
 * instanceId, availabilityZone, region, privateIp and accountId to the document's string cut
 * at its first line end, a single printable token of 1 to 255 bytes, and nothing else; a
 * refusal says why. The agent puts these values in file names, ZooKeeper records and log
 * lines, so nothing with a blank or a control byte may get through. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kb/private/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {"instanceId", "availabilityZone", "region", "privateIp",
				   "accountId"};

static void check_token(const json_t *doc, const char *key, const char *value)
{
	const char *member = json_string_value(json_object_get(doc, key));
	size_t n;

	if (!member || !value)
		abort();
	n = strcspn(member, "\r\n");
	if (n == 0 || n > 255 || strlen(value) != n || memcmp(value, member, n) != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!isgraph((unsigned char)value[i]))
			abort();
	}
}

static void check_success(const char *text, const struct kb_identity *id)
{
	json_t *doc = json_loads(text, 0, NULL);
	const char *values[] = {id->instance_id, id->az, id->region, id->private_ip,
				id->account_id};

	if (!json_is_object(doc) || id->az_id || id->mac)
		abort();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		check_token(doc, keys[i], values[i]);
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* IMDS answers arrive NUL-terminated (imds_get); an embedded NUL ends the document. */
	char *text = malloc(size + 1);
	struct kb_identity id = {0};
	struct kb_error err = {{0}};

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (identity_parse_document(&id, text, &err) == 0)
		check_success(text, &id);
	else if (err.msg[0] == '\0')
		abort(); /* a refusal must say why */
	kb_identity_clear(&id);
	free(text);
	return 0;
}
