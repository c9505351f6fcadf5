/* network.h: the network stage's parts, for the stage itself (network_stage in stages.h), for
 * `status`, and for the test driver that runs them without AWS. */
#ifndef KB_NETWORK_H
#define KB_NETWORK_H

#include <stdint.h>
#include <stdio.h>

#include "kb/config.h"
#include "kb/error.h"
#include "kb/pipeline.h"

/* Where the ENI's routing goes, and what it must never touch. */
struct network_target {
	const char *mac;         /* the ENI's */
	const char *ip;          /* its primary private IPv4 address (EC2) */
	const char *subnet_cidr; /* its subnet (IMDS); NULL when not known yet (plan only) */
	uint32_t table;
	uint32_t priority;
	const char *primary_mac; /* the instance's primary interface: never configured */
};

/* Table and rule priority: the configured ones, else amazon-ec2-net-utils' 10000 + 100 *
 * network card + device index of the ENI's attachment (device_index < 0: not attached yet,
 * the configured device index and card then). */
uint32_t network_route_table(const struct kb_config *cfg, int device_index, int card_index);
uint32_t network_rule_priority(const struct kb_config *cfg, int device_index, int card_index);

/* Finds the ENI's link (waiting until run->stage_deadline in run mode), looks at what other
 * network managers did with it, then records and, in run mode, makes each missing netlink
 * change and the systemd-networkd drop-in. Sets run->ifname. run->prerequisite: reads only
 * and fails when something is missing. */
int network_configure(struct kb_run *run, const struct network_target *target);

/* `status`: the rule, table and link the configuration names, as they are now. */
int network_status(const struct kb_config *cfg, FILE *out, struct kb_error *err);

#endif
