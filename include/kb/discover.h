/* discover.h: which broker ids this instance may claim, from EC2's tags.
 *
 * The stage (stages.h) makes one DescribeNetworkInterfaces and, when volumes are managed, one
 * DescribeVolumes, both filtered on tag:<tag_key>=<tag_prefix>*, availability-zone=<az> and,
 * when a cluster is set, tag:<cluster_tag_key>=<cluster>. Later stages reuse the lists. */
#ifndef KB_DISCOVER_H
#define KB_DISCOVER_H

#include <stddef.h>
#include <stdio.h>

#include "kb/config.h"
#include "kb/ec2.h"
#include "kb/error.h"
#include "kb/pipeline.h"

/* The candidates (sorted by id, pointing into the lists) from what EC2 returned. Resources
 * whose tag is not <tag_prefix><canonical decimal id> (below broker_count when set), that
 * are in another AZ or cluster, or whose id lacks its ENI or its volume are skipped with a
 * warning, also written to notes ("; " between them) when notes is not NULL. An id tagged on
 * two ENIs (or two volumes) is a candidate marked ambiguous, with a warning naming them: the
 * claim offers it to no new claim, the stage owning the resource refuses it. volumes may be
 * NULL when volumes are not managed. */
int discover_candidates(const struct kb_config *cfg, const char *az,
			const struct ec2_eni_list *enis, const struct ec2_volume_list *volumes,
			struct kb_broker **out, size_t *count, FILE *notes, struct kb_error *err);

/* The broker id a resource's tags name (<tag_key>=<tag_prefix><canonical decimal id>, below
 * broker_count when set), -1 when they name none. The AZ and cluster are not looked at. */
int discover_tag_id(const struct kb_config *cfg, const struct ec2_tag *tags, size_t tag_count);

#endif
