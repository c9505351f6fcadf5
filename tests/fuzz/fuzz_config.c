/* libFuzzer target: one configuration file merged and validated. Any input must end in 0 or
 * a clean -KB_ECONFIG with a message, never a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_config *cfg = config_new();
	struct kb_error err = {{0}};
	char *text = malloc(size + 1);

	if (!cfg || !text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_merge_json(cfg, text, "fuzz", &err) == 0)
		(void)config_validate(cfg, &err);
	else if (err.msg[0] == '\0')
		abort(); /* a refusal must say why */
	free(text);
	config_free(cfg);
	log_clear_secrets();
	return 0;
}
