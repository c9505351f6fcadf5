/* volume.c: placeholder for the attach half; the local half is volume_disk.c. */
#include "kb/ec2.h"
#include "kb/stages.h"
#include "kb/volume.h"

int volume_stage(struct kb_run *run)
{
	kb_run_skip(run, "not implemented yet");
	return 0;
}
