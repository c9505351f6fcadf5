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
#include "kb/error.h"
#include "kb/pipeline.h"

/* The candidates (sorted by id, pointing into the lists) from what EC2 returned. Resources
 * whose tag is not <tag_prefix><canonical decimal id> (below broker_count when set), that
 * are in another AZ or cluster, or whose id lacks its ENI or its volume are skipped with a
 * warning, also written to notes ("; " between them) when notes is not NULL. Two ENIs (or
 * two volumes) tagged with one id: -KB_ECONFIG naming them. volumes may be NULL when
 * volumes are not managed. */
int discover_candidates(const struct kb_config *cfg, const char *az,
			const struct ec2_eni_list *enis, const struct ec2_volume_list *volumes,
			struct kb_broker **out, size_t *count, FILE *notes, struct kb_error *err);

#endif
