/* claim.c: placeholder until its issue lands; every function reports "not implemented". */
#include "kb/claim.h"
#include "kb/cli.h"
#include "kb/log.h"
#include "kb/stages.h"

int claim_stage(struct kb_run *run)
{
	kb_run_skip(run, "not implemented yet");
	return 0;
}

void claim_free(struct claim *claim)
{
	(void)claim;
}

int release_command(const struct kb_options *opts, const struct kb_config *cfg)
{
	(void)opts;
	(void)cfg;
	log_error("release: not implemented yet");
	return KB_EXIT_INTERNAL;
}
