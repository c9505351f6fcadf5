/* netcfg: parsing, the diff between live state and what the ENI needs (conflicts, order,
 * what counts as already there), and, in a network namespace of its own (unshare), real
 * netlink requests: apply then read back, a rerun's rule add, the kernel's extended ack in an
 * error, the deadline of a link that never appears. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/netcfg.h"

static struct in_addr ip4(const char *text)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, text, &a), 1);
	return a;
}

static void mac_parsing_accepts_colon_hex_and_refuses_the_rest(void **unused)
{
	uint8_t mac[NETCFG_MAC_LEN];
	char text[NETCFG_MAC_STRLEN];

	(void)unused;
	assert_int_equal(netcfg_parse_mac("0A:1b:2C:3d:4E:5f", mac), 0);
	netcfg_format_mac(mac, text);
	assert_string_equal(text, "0a:1b:2c:3d:4e:5f");
	assert_int_equal(netcfg_parse_mac("0a:1b:2c:3d:4e", mac), -EINVAL);
	assert_int_equal(netcfg_parse_mac("0a-1b-2c-3d-4e-5f", mac), -EINVAL);
	assert_int_equal(netcfg_parse_mac("0a:1b:2c:3d:4e:5g", mac), -EINVAL);
	assert_int_equal(netcfg_parse_mac(" a:1b:2c:3d:4e:5f", mac), -EINVAL);
	assert_int_equal(netcfg_parse_mac(NULL, mac), -EINVAL);
}

static void cidr_parsing_refuses_host_bits_and_bad_prefixes(void **unused)
{
	struct in_addr net;
	uint8_t len;
	char text[NETCFG_IP_STRLEN];

	(void)unused;
	assert_int_equal(netcfg_parse_cidr("10.0.16.0/20", &net, &len), 0);
	assert_int_equal(len, 20);
	assert_string_equal(inet_ntop(AF_INET, &net, text, sizeof(text)), "10.0.16.0");
	net = netcfg_subnet_router(net);
	assert_string_equal(inet_ntop(AF_INET, &net, text, sizeof(text)), "10.0.16.1");
	assert_int_equal(netcfg_parse_cidr("10.0.1.0/24\n", &net, &len), 0);
	assert_int_equal(netcfg_parse_cidr("10.0.1.5/24", &net, &len), -EINVAL);
	assert_int_equal(netcfg_parse_cidr("10.0.1.0/33", &net, &len), -EINVAL);
	assert_int_equal(netcfg_parse_cidr("10.0.1.0/", &net, &len), -EINVAL);
	assert_int_equal(netcfg_parse_cidr("10.0.1.0", &net, &len), -EINVAL);
	assert_int_equal(netcfg_parse_cidr("10.0.1/24", &net, &len), -EINVAL);
}

static const struct netcfg_spec spec_eth1 = {
	.ifindex = 5, .prefix_len = 24, .table = 10001, .priority = 10001,
};

static struct netcfg_spec spec(void)
{
	struct netcfg_spec s = spec_eth1;

	s.ip = ip4("10.0.1.5");
	s.router = ip4("10.0.1.1");
	return s;
}

/* A state holding only the link eth1 (#5), down. */
static struct netcfg_state *bare_state(void)
{
	struct netcfg_state *state = calloc(1, sizeof(*state));

	assert_non_null(state);
	state->link.ifindex = 5;
	state->link.name = strdup("eth1");
	return state;
}

static void add_route(struct netcfg_state *state, const struct netcfg_route *route)
{
	state->routes = realloc(state->routes, (state->route_count + 1) * sizeof(*route));
	assert_non_null(state->routes);
	state->routes[state->route_count++] = *route;
}

static void add_rule(struct netcfg_state *state, const struct netcfg_rule *rule)
{
	state->rules = realloc(state->rules, (state->rule_count + 1) * sizeof(*rule));
	assert_non_null(state->rules);
	state->rules[state->rule_count++] = *rule;
}

static struct netcfg_rule our_rule(void)
{
	struct netcfg_rule r = {.priority = 10001, .table = 10001, .action = FR_ACT_TO_TBL,
				.src_len = 32};

	r.src = ip4("10.0.1.5");
	return r;
}

/* The state a finished run leaves, with routes as another manager would write them. */
static struct netcfg_state *configured_state(void)
{
	struct netcfg_state *state = bare_state();
	struct netcfg_route subnet = {.table = 10001, .dst_len = 24, .oif = 5,
				      .scope = RT_SCOPE_LINK, .protocol = RTPROT_STATIC,
				      .type = RTN_UNICAST, .metric = 1024};
	struct netcfg_route deflt = {.table = 10001, .oif = 5, .protocol = RTPROT_DHCP,
				     .type = RTN_UNICAST, .metric = 512};
	struct netcfg_rule rule = our_rule();

	state->link.flags = IFF_UP;
	state->addrs = calloc(1, sizeof(*state->addrs));
	assert_non_null(state->addrs);
	state->addrs[0] = (struct netcfg_addr){.ifindex = 5, .local = ip4("10.0.1.5"),
					       .prefix_len = 24};
	state->addr_count = 1;
	subnet.dst = ip4("10.0.1.0");
	deflt.gateway = ip4("10.0.1.1");
	add_route(state, &subnet);
	add_route(state, &deflt);
	add_rule(state, &rule);
	return state;
}

static void diff_of_a_bare_link_lists_every_change_in_kernel_order(void **unused)
{
	struct netcfg_state *state = bare_state();
	struct netcfg_spec s = spec();
	struct netcfg_change_list *changes = NULL;
	struct kb_error err = {{0}};

	(void)unused;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), 0);
	assert_int_equal(changes->count, 5);
	assert_string_equal(changes->items[0].text, "RTM_NEWLINK set eth1 up");
	assert_string_equal(changes->items[1].text,
			    "RTM_NEWADDR replace 10.0.1.5/24 dev eth1 noprefixroute");
	assert_string_equal(changes->items[2].text,
			    "RTM_NEWROUTE replace 10.0.1.0/24 dev eth1 table 10001 proto boot "
			    "scope link src 10.0.1.5");
	assert_string_equal(changes->items[3].text,
			    "RTM_NEWROUTE replace default via 10.0.1.1 dev eth1 table 10001 "
			    "proto boot");
	assert_string_equal(changes->items[4].text,
			    "RTM_NEWRULE create exclusive priority 10001: from 10.0.1.5 lookup "
			    "10001");
	assert_int_equal(changes->items[4].rule.src_len, 32);
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
}

static void equivalent_state_from_another_manager_needs_no_change(void **unused)
{
	struct netcfg_state *state = configured_state();
	struct netcfg_spec s = spec();
	struct netcfg_change_list *changes = NULL;
	struct kb_error err = {{0}};

	(void)unused;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), 0);
	assert_int_equal(changes->count, 0);
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
}

static void only_the_missing_rule_is_added_back(void **unused)
{
	struct netcfg_state *state = configured_state();
	struct netcfg_spec s = spec();
	struct netcfg_change_list *changes = NULL;
	struct kb_error err = {{0}};

	(void)unused;
	/* Our rule, but at another priority (an earlier run with another rule_priority). */
	state->rules[0].priority = 20000;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), 0);
	assert_int_equal(changes->count, 1);
	assert_int_equal(changes->items[0].kind, NETCFG_RULE_ADD);
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
}

static void another_rule_at_our_priority_is_a_conflict(void **unused)
{
	struct netcfg_state *state = configured_state();
	struct netcfg_spec s = spec();
	struct netcfg_change_list *changes = NULL;
	struct kb_error err = {{0}};
	struct netcfg_rule other = our_rule();

	(void)unused;
	other.src = ip4("10.0.1.9");
	add_rule(state, &other);
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), -KB_ECONFIG);
	assert_null(changes);
	assert_non_null(strstr(err.msg, "priority 10001: from 10.0.1.9 lookup 10001"));

	/* Same source and table but an iif selector: not our rule either. */
	kb_error_clear(&err);
	state->rules[1] = our_rule();
	state->rules[1].other_selectors = true;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), -KB_ECONFIG);
	assert_non_null(strstr(err.msg, "with other selectors"));
	netcfg_state_free(state);
}

static void table_holding_another_links_routes_is_a_conflict(void **unused)
{
	struct netcfg_state *state = configured_state();
	struct netcfg_spec s = spec();
	struct netcfg_change_list *changes = NULL;
	struct kb_error err = {{0}};
	struct netcfg_route via_eth0 = {.table = 10001, .oif = 2, .type = RTN_UNICAST,
					.protocol = RTPROT_BOOT};

	(void)unused;
	via_eth0.gateway = ip4("192.168.0.1");
	add_route(state, &via_eth0);
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), -KB_ECONFIG);
	assert_non_null(strstr(err.msg, "default via 192.168.0.1 dev #2 table 10001"));
	netcfg_state_free(state);
}

static void kernel_tables_and_priorities_are_refused(void **unused)
{
	struct netcfg_state *state = bare_state();
	struct netcfg_spec s = spec();
	struct netcfg_change_list *changes = NULL;
	struct kb_error err = {{0}};

	(void)unused;
	s.table = RT_TABLE_MAIN;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), -KB_ECONFIG);
	kb_error_clear(&err);
	s = spec();
	s.priority = 32766;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), -KB_ECONFIG);
	kb_error_clear(&err);
	s = spec();
	s.priority = 0;
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), -KB_ECONFIG);
	netcfg_state_free(state);
}

/* Netlink, in a namespace of this process's own: only lo, down. */

static int own_namespace(void **unused)
{
	(void)unused;
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	return 0;
}

static void changes_apply_then_read_back_as_nothing_to_do(void **unused)
{
	uint8_t zero_mac[NETCFG_MAC_LEN] = {0};
	struct kb_error err = {{0}};
	struct netcfg *nc = netcfg_new(&err);
	struct netcfg_link lo;
	struct netcfg_state *state = NULL;
	struct netcfg_change_list *changes = NULL;
	struct netcfg_spec s = spec();

	(void)unused;
	assert_non_null(nc);
	assert_int_equal(netcfg_wait_link(nc, zero_mac, 0, &lo, &err), 0);
	assert_string_equal(lo.name, "lo");
	s.ifindex = lo.ifindex;
	assert_int_equal(netcfg_state_read(nc, lo.ifindex, &state, &err), 0);
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), 0);
	assert_int_equal(changes->count, 5);
	for (size_t i = 0; i < changes->count; i++) {
		if (netcfg_apply(nc, &changes->items[i], &err) < 0)
			fail_msg("%s", err.msg);
	}
	/* A rule that is there already: EEXIST, found identical, done. */
	assert_int_equal(netcfg_apply(nc, &changes->items[4], &err), 0);
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
	assert_int_equal(netcfg_state_read(nc, lo.ifindex, &state, &err), 0);
	assert_int_equal(netcfg_diff(state, &s, &changes, &err), 0);
	assert_int_equal(changes->count, 0);
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
	netcfg_link_clear(&lo);
	netcfg_free(nc);
}

static void kernel_refusal_carries_its_extended_ack_text(void **unused)
{
	struct kb_error err = {{0}};
	struct netcfg *nc = netcfg_new(&err);
	struct netcfg_change change = {.kind = NETCFG_ROUTE_REPLACE, .ifindex = 1};
	int ret;

	(void)unused;
	assert_non_null(nc);
	change.text = "unreachable gateway";
	change.route = (struct netcfg_route){.table = 10077, .oif = 1, .type = RTN_UNICAST,
					     .protocol = RTPROT_BOOT};
	change.route.gateway = ip4("10.99.0.1");
	ret = netcfg_apply(nc, &change, &err);
	assert_true(ret < 0);
	/* Linux fib_check_nh_v4_gw: NL_SET_ERR_MSG(extack, "Nexthop has invalid gateway") */
	if (!strstr(err.msg, "unreachable gateway: Nexthop has invalid gateway ("))
		fail_msg("no extended ack in: %s", err.msg);
	netcfg_free(nc);
}

static void link_that_never_appears_ends_at_the_deadline(void **unused)
{
	uint8_t mac[NETCFG_MAC_LEN] = {0x02, 0, 0, 0, 0x77, 0x01};
	struct kb_error err = {{0}};
	struct netcfg *nc = netcfg_new(&err);
	struct netcfg_link link;
	int64_t started = deadline_now_ms();
	int64_t elapsed;

	(void)unused;
	assert_non_null(nc);
	assert_int_equal(netcfg_wait_link(nc, mac, deadline_after_ms(300), &link, &err),
			 -KB_ETIMEOUT);
	elapsed = deadline_now_ms() - started;
	assert_true(elapsed >= 300 && elapsed < 1000);
	assert_non_null(strstr(err.msg, "no network interface with MAC 02:00:00:00:77:01"));
	netcfg_free(nc);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(mac_parsing_accepts_colon_hex_and_refuses_the_rest),
		cmocka_unit_test(cidr_parsing_refuses_host_bits_and_bad_prefixes),
		cmocka_unit_test(diff_of_a_bare_link_lists_every_change_in_kernel_order),
		cmocka_unit_test(equivalent_state_from_another_manager_needs_no_change),
		cmocka_unit_test(only_the_missing_rule_is_added_back),
		cmocka_unit_test(another_rule_at_our_priority_is_a_conflict),
		cmocka_unit_test(table_holding_another_links_routes_is_a_conflict),
		cmocka_unit_test(kernel_tables_and_priorities_are_refused),
	};
	const struct CMUnitTest netlink[] = {
		cmocka_unit_test(changes_apply_then_read_back_as_nothing_to_do),
		cmocka_unit_test(kernel_refusal_carries_its_extended_ack_text),
		cmocka_unit_test(link_that_never_appears_ends_at_the_deadline),
	};
	int failed;

	log_init(LOG_LEVEL_ERROR);
	log_set_console(NULL);
	failed = cmocka_run_group_tests_name("netcfg", pure, NULL, NULL);
	return failed + cmocka_run_group_tests_name("netcfg in its own network namespace",
						    netlink, own_namespace, NULL);
}
