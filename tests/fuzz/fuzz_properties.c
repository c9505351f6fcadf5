/* libFuzzer target: a server.properties file parsed, the managed keys set, formatted, parsed
 * again. Invariants: Java's view of every managed key is the value set, and setting the same
 * values again changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb/properties.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[][2] = {
	{"broker.id", "7"},
	{"listeners", "PLAINTEXT://10.0.1.23:9092"},
	{"log.dirs", "/var/lib/kafka/logs"},
	{"broker.rack", " use1-az6\\"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_error err = {{0}};
	struct properties *props = properties_parse_new((const char *)data, size, &err);
	struct properties *again = NULL;
	char *text = NULL;
	size_t len = 0;

	if (!props) {
		if (!memchr(data, '\0', size))
			abort(); /* only a NUL byte is a reason to refuse */
		return 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (properties_set(props, keys[i][0], keys[i][1], &err) < 0)
			abort();
	}
	text = properties_format_new(props, &len);
	again = text ? properties_parse_new(text, len, &err) : NULL;
	if (!again)
		abort();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *value = properties_get_new(again, keys[i][0]);

		if (!value || strcmp(value, keys[i][1]) != 0)
			abort();
		free(value);
		if (properties_set(again, keys[i][0], keys[i][1], &err) != 0)
			abort();
	}
	properties_free(again);
	properties_free(props);
	free(text);
	return 0;
}
