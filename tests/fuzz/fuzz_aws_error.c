/* fuzz_aws_error.c: the error document parser (EC2's <Response><Errors>, the Query protocol's
 * <ErrorResponse>) on arbitrary bytes; aws_query runs it on every non-2xx answer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kb/ec2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *code = NULL, *message = NULL, *request_id = NULL;

	ec2_parse_error((const char *)data, size, &code, &message, &request_id);
	free(code);
	free(message);
	free(request_id);
	return 0;
}
