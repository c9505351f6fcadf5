/* properties.c: placeholder until its issue lands; every function reports "not implemented". */
#include "kb/stages.h"

int properties_stage(struct kb_run *run)
{
	kb_run_skip(run, "not implemented yet");
	return 0;
}
