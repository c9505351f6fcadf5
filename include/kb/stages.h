/* stages.h: one function per pipeline stage, each in the module that owns it.
 * Contract (pipeline.h): look first, act on the difference, record changes, honour plan mode
 * and run->prerequisite, stay within run->stage_deadline, fill run->err on failure. */
#ifndef KB_STAGES_H
#define KB_STAGES_H

#include "kb/pipeline.h"

int identity_stage(struct kb_run *run);   /* identity.c: IMDSv2 */
int discover_stage(struct kb_run *run);   /* discover.c: one DescribeNetworkInterfaces, one DescribeVolumes */
int claim_stage(struct kb_run *run);      /* claim.c: broker id in ZooKeeper */
int eni_stage(struct kb_run *run);        /* eni.c: attach the ENI, wait for it */
int volume_stage(struct kb_run *run);     /* volume.c: attach, find, check, mkfs if blank, mount */
int network_stage(struct kb_run *run);    /* network.c: address, route table, rule over netlink */
int properties_stage(struct kb_run *run); /* properties.c: server.properties, atomically */
int signal_stage(struct kb_run *run);     /* signal.c: CloudFormation and Auto Scaling */

#endif
