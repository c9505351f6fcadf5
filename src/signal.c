/* signal.c: placeholder until its issue lands; every function reports "not implemented". */
#include "kb/cli.h"
#include "kb/log.h"
#include "kb/stages.h"

int signal_stage(struct kb_run *run)
{
	kb_run_skip(run, "not implemented yet");
	return 0;
}

int signal_command(const struct kb_options *opts, const struct kb_config *cfg)
{
	(void)opts;
	(void)cfg;
	log_error("signal: not implemented yet");
	return KB_EXIT_INTERNAL;
}
