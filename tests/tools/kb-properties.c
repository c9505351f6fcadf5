/* kb-properties BASE OUT KEY=VALUE...: sets keys in a properties file the way the properties
 * stage does and writes the result atomically, so a test can read it back with Java. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/file.h"
#include "kb/properties.h"

int main(int argc, char *argv[])
{
	struct file_write_options opts = {.mode = 0640, .uid = (uid_t)-1, .gid = (gid_t)-1};
	struct kb_error err = {{0}};
	struct properties *props;
	char *text = NULL, *out;
	size_t len = 0;
	int ret;

	if (argc < 3) {
		fprintf(stderr, "usage: kb-properties BASE OUT KEY=VALUE...\n");
		return 64;
	}
	if (file_read_all(argv[1], &text, &len, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	props = properties_parse_new(text, len, &err);
	free(text);
	for (int i = 3; props && i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq)
			return 64;
		*eq = '\0';
		if (properties_set(props, argv[i], eq + 1, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
	}
	if (!props) {
		fprintf(stderr, "%s: %s\n", argv[1], err.msg);
		return 1;
	}
	out = properties_format_new(props, &len);
	ret = out ? file_write_atomic(argv[2], out, len, &opts, &err) : -1;
	if (ret < 0)
		fprintf(stderr, "%s\n", err.msg);
	free(out);
	properties_free(props);
	return ret < 0 ? 1 : 0;
}
