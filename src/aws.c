/* aws.c: placeholder until its issue lands; every function reports "not implemented". */
#include "kb/aws.h"

void aws_ctx_free(struct aws_ctx *ctx)
{
	(void)ctx;
}
