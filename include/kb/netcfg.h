/* netcfg.h: the ENI's link, address, route table and rule, over rtnetlink (libmnl).
 *
 * Three layers, used in this order: find the link by MAC address (waiting on link
 * notifications when it is not there yet); read the live state (links, addresses, routes,
 * rules); compare it with what the ENI needs (netcfg_diff: a list of changes, each with the
 * text `plan` prints and the netlink request that makes it) and apply the changes one by one.
 * Nothing here deletes, and nothing writes to the kernel's main, local or default tables or to
 * a link other than the one given. IPv4 only: EC2 hands the broker's static address out as
 * the ENI's primary private IPv4 address. */
#ifndef KB_NETCFG_H
#define KB_NETCFG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kb/error.h"

#define NETCFG_MAC_LEN 6

/* Text forms, NUL included: "0a:1b:2c:3d:4e:5f", "255.255.255.255". */
#define NETCFG_MAC_STRLEN 18
#define NETCFG_IP_STRLEN 16

/* One rtnetlink socket for requests and dumps (SOCK_CLOEXEC, extended acks on). */
struct netcfg;

struct netcfg *netcfg_new(struct kb_error *err);
void netcfg_free(struct netcfg *nc);

/* "0A:1b:..." into 6 bytes; -EINVAL when it is not a MAC address. */
int netcfg_parse_mac(const char *text, uint8_t mac[NETCFG_MAC_LEN]);
void netcfg_format_mac(const uint8_t mac[NETCFG_MAC_LEN], char out[NETCFG_MAC_STRLEN]);
/* "10.0.1.0/24" into network and prefix length; -EINVAL when malformed or when host bits are
 * set (IMDS's subnet-ipv4-cidr-block never has them, so they mean a wrong key was read). */
int netcfg_parse_cidr(const char *text, struct in_addr *network, uint8_t *prefix_len);
/* The VPC subnet's router: the network address + 1 (EC2 reserves it in every subnet). */
struct in_addr netcfg_subnet_router(struct in_addr network);

struct netcfg_link {
	int ifindex;
	char *name;
	uint8_t mac[NETCFG_MAC_LEN];
	bool has_mac;
	unsigned flags; /* IFF_UP, ... */
};

struct netcfg_link_list {
	struct netcfg_link *items;
	size_t count;
};

void netcfg_link_clear(struct netcfg_link *link);
void netcfg_link_list_free(struct netcfg_link_list *list);

int netcfg_links(struct netcfg *nc, struct netcfg_link_list **out, struct kb_error *err);
/* One link by index; -ENODEV when it is gone. */
int netcfg_link_get(struct netcfg *nc, int ifindex, struct netcfg_link *out,
		    struct kb_error *err);

/* Finds the link carrying mac. When none does yet, waits on RTM_NEWLINK notifications (the
 * listening socket is opened before the dump, so a link appearing in between is not missed)
 * until one appears or the deadline passes: -KB_ETIMEOUT then. A deadline already passed
 * means "look once". */
int netcfg_wait_link(struct netcfg *nc, const uint8_t mac[NETCFG_MAC_LEN], int64_t deadline,
		     struct netcfg_link *out, struct kb_error *err);

struct netcfg_addr {
	int ifindex;
	struct in_addr local;
	uint8_t prefix_len;
	uint8_t scope;
	uint32_t flags; /* IFA_F_*, from IFA_FLAGS when present */
};

struct netcfg_route {
	uint32_t table;
	struct in_addr dst;
	uint8_t dst_len;
	struct in_addr gateway; /* 0.0.0.0: none */
	struct in_addr prefsrc; /* 0.0.0.0: none */
	int oif;                /* 0: none */
	uint8_t scope;
	uint8_t protocol;
	uint8_t type;
	uint32_t metric;
	bool multipath;         /* RTA_MULTIPATH: several next hops, never one of ours */
};

struct netcfg_rule {
	uint32_t priority;
	uint32_t table;
	uint8_t action;         /* FR_ACT_TO_TBL, ... */
	struct in_addr src;
	uint8_t src_len;
	uint8_t dst_len;
	bool invert;            /* FIB_RULE_INVERT: "not from" */
	bool other_selectors;   /* iif, oif, fwmark, uid range, ports...: not a plain from-rule */
};

/* What is in place, as one consistent read. */
struct netcfg_state {
	struct netcfg_link link; /* the ENI's link */
	struct netcfg_addr *addrs; /* every IPv4 address, all links */
	size_t addr_count;
	struct netcfg_route *routes; /* every IPv4 route, all tables */
	size_t route_count;
	struct netcfg_rule *rules; /* every IPv4 rule */
	size_t rule_count;
};

/* Reads the link ifindex (none when ifindex <= 0) and every IPv4 address, route and rule. */
int netcfg_state_read(struct netcfg *nc, int ifindex, struct netcfg_state **out,
		      struct kb_error *err);
void netcfg_state_free(struct netcfg_state *state);

/* What the ENI needs. */
struct netcfg_spec {
	int ifindex;
	struct in_addr ip;
	uint8_t prefix_len;
	struct in_addr router;
	uint32_t table;
	uint32_t priority;
};

enum netcfg_change_kind {
	NETCFG_LINK_UP,
	NETCFG_ADDR_REPLACE,
	NETCFG_ROUTE_REPLACE,
	NETCFG_RULE_ADD,
};

struct netcfg_change {
	enum netcfg_change_kind kind;
	int ifindex;
	char *text; /* "RTM_NEWRULE create exclusive priority 10001: from 10.0.1.5 lookup 10001" */
	struct netcfg_addr addr;
	struct netcfg_route route;
	struct netcfg_rule rule;
};

struct netcfg_change_list {
	struct netcfg_change *items;
	size_t count;
};

void netcfg_change_list_free(struct netcfg_change_list *list);

/* The changes that make state match spec, in the order they must be applied (link, address,
 * subnet route, default route, rule: the kernel checks the gateway against the table). An
 * empty list means all is in place. A conflict is an error, not a change (-KB_ECONFIG, the
 * message says what is in the way): another rule at the spec's priority, routes of another
 * link in the spec's table, a reserved table (0, 253-255) or priority (0, 32766, 32767). */
int netcfg_diff(const struct netcfg_state *state, const struct netcfg_spec *spec,
		struct netcfg_change_list **out, struct kb_error *err);

/* Makes one change. A rule that exists already (EEXIST) is done only when an identical rule
 * is found at its priority; anything else there is a conflict (-KB_ECONFIG). The kernel's
 * extended-ack text is in the message when it sent one. */
int netcfg_apply(struct netcfg *nc, const struct netcfg_change *change, struct kb_error *err);

/* Predicates over state, shared by netcfg_diff and by callers looking for other managers. */
bool netcfg_rule_is_from(const struct netcfg_rule *rule, struct in_addr ip, uint32_t table);

/* ip(8)-like text of a route or rule ("default via 10.0.1.1 dev eth1 table 10001");
 * ifname may be NULL (then "dev #<ifindex>"). NULL when out of memory. */
char *netcfg_route_text(const struct netcfg_route *route, const char *ifname);
char *netcfg_rule_text(const struct netcfg_rule *rule);

#endif
