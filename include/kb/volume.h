/* volume.h: the volume stage in two halves.
 *
 * volume.c attaches the EBS volume tagged <prefix><id> (EC2: attach, wait, refuse what is
 * held elsewhere) and then calls volume_prepare(), which knows nothing of AWS: find the block
 * device, create a filesystem only on a blank device, mount it, check that the data is this
 * broker's, give log_dir to the Kafka user. Tests drive volume_prepare() directly on loop
 * devices. */
#ifndef KB_VOLUME_H
#define KB_VOLUME_H

#include "kb/error.h"
#include "kb/pipeline.h"

/* The local half for volume_id, requested being the device name asked for at attach time
 * ("/dev/sdg"). Uses run->cfg, run->broker_id, run->mode, run->prerequisite and
 * run->stage_deadline; records changes with kb_run_change; sets run->device. */
int volume_prepare(struct kb_run *run, const char *volume_id, const char *requested);

/* -KB_EFOREIGN when log_dir/meta.properties names a broker.id or node.id other than
 * broker_id; 0 when it matches or there is no such file (Kafka never ran on this volume). */
int volume_check_identity(const char *log_dir, int broker_id, struct kb_error *err);

#endif
