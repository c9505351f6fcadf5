/* fuzz_imds_credentials.c: the instance credentials document (IMDS's
 * iam/security-credentials/<role>) on arbitrary bytes. Invariants: a success returns exactly
 * the document's strings; a refusal says why; and no error message depends on the values of
 * SecretAccessKey or Token (the same document with other secrets of the same length must give
 * the same message), so a refusal can never carry a secret into a log. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kb/imds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replaces a string member with one of the same length that differs in every byte. */
static void swap_secret(json_t *doc, const char *key)
{
	const char *value = json_string_value(json_object_get(doc, key));
	size_t len = value ? strlen(value) : 0;
	char *other = value ? malloc(len + 1) : NULL;

	if (!value)
		return;
	if (!other)
		abort();
	for (size_t i = 0; i < len; i++)
		other[i] = value[i] == 'x' ? 'y' : 'x';
	other[len] = '\0';
	if (json_object_set_new(doc, key, json_string(other)) < 0)
		abort();
	free(other);
}

/* The error message for doc as serialised; NULL when it parses. Caller frees. */
static char *refusal(const json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	struct imds_credentials creds;
	struct kb_error err = {{0}};
	char *msg = NULL;

	if (!text)
		abort();
	if (imds_parse_credentials(text, strlen(text), &creds, &err) == 0)
		imds_credentials_clear(&creds);
	else if (!(msg = strdup(err.msg)))
		abort();
	free(text);
	return msg;
}

/* Whether the refusal of doc is the same with other secrets. */
static void check_secrets_stay_out(json_t *doc)
{
	json_t *other = json_deep_copy(doc);
	char *before, *after;

	if (!other)
		abort();
	swap_secret(other, "SecretAccessKey");
	swap_secret(other, "Token");
	before = refusal(doc);
	after = refusal(other);
	if (!before != !after || (before && strcmp(before, after) != 0))
		abort();
	free(before);
	free(after);
	json_decref(other);
}

static bool member_is(const json_t *doc, const char *key, const char *value)
{
	const char *member = json_string_value(json_object_get(doc, key));

	return value && member && strcmp(value, member) == 0;
}

static void check_success(const uint8_t *data, size_t size, const struct imds_credentials *c)
{
	json_t *doc = json_loadb((const char *)data, size, 0, NULL);

	if (!member_is(doc, "AccessKeyId", c->access_key_id) ||
	    !member_is(doc, "SecretAccessKey", c->secret_access_key) ||
	    !member_is(doc, "Token", c->token))
		abort();
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imds_credentials creds;
	struct kb_error err = {{0}};
	json_t *doc;

	if (imds_parse_credentials((const char *)data, size, &creds, &err) == 0) {
		check_success(data, size, &creds);
		imds_credentials_clear(&creds);
	} else if (err.msg[0] == '\0') {
		abort(); /* a refusal must say why */
	}
	doc = json_loadb((const char *)data, size, 0, NULL);
	if (json_is_object(doc))
		check_secrets_stay_out(doc);
	json_decref(doc);
	return 0;
}
