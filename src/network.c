/* network.c: the `network` stage: make the broker ENI's static IP usable.
 *
 * Finds the ENI's interface by MAC (names differ across AMIs: eth1, ens6, enX1), then adds
 * over netlink only what is missing: link up, the address, a route table of its own and a
 * from-rule (netcfg.c). Other network managers may configure the same interface
 * (amazon-ec2-net-utils through systemd-networkd, cloud-init/netplan, NetworkManager): it
 * uses amazon-ec2-net-utils' table and priority numbering so the two agree, says what it
 * found when theirs differs, and keeps systemd-networkd from removing our rule and routes as
 * foreign. Never touches the primary interface, its addresses or the main table. */
#include "kb/network.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb/deadline.h"
#include "kb/ec2.h"
#include "kb/file.h"
#include "kb/imds.h"
#include "kb/log.h"
#include "kb/netcfg.h"
#include "kb/stages.h"

#define NETWORKD_DROPIN "systemd/networkd.conf.d/80-kafka-bootstrap.conf"
/* How long a new link may stay unclaimed by udev before we configure it anyway. */
#define UDEV_WAIT_MS 10000

/* networkd.conf(5), systemd 252: both default to yes, and networkd then removes, whenever
 * it configures a link it manages, every rule and route no .network file names. It reads
 * /run/systemd/networkd.conf.d/ when it starts. */
static const char networkd_dropin[] =
	"# Written by kafka-bootstrap (network stage). The broker ENI's rule and the routes of\n"
	"# its table are not in any .network file: without this, systemd-networkd removes them\n"
	"# as foreign when it reconfigures a link. Read when systemd-networkd starts.\n"
	"[Network]\n"
	"ManageForeignRoutingPolicyRules=no\n"
	"ManageForeignRoutes=no\n";

static uint32_t derived_number(const struct kb_config *cfg, int device_index, int card_index)
{
	if (device_index < 0) {
		device_index = cfg->eni_device_index;
		card_index = cfg->network_card_index;
	}
	if (card_index < 0)
		card_index = 0;
	return 10000u + 100u * (uint32_t)card_index + (uint32_t)device_index;
}

uint32_t network_route_table(const struct kb_config *cfg, int device_index, int card_index)
{
	if (cfg->route_table)
		return (uint32_t)cfg->route_table;
	return derived_number(cfg, device_index, card_index);
}

uint32_t network_rule_priority(const struct kb_config *cfg, int device_index, int card_index)
{
	if (cfg->rule_priority)
		return (uint32_t)cfg->rule_priority;
	return derived_number(cfg, device_index, card_index);
}

__attribute__((format(printf, 2, 3))) static char *run_path(const struct kb_config *cfg,
							     const char *fmt, ...)
{
	char *rel = NULL;
	char *path = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&rel, fmt, ap) < 0)
		rel = NULL;
	va_end(ap);
	if (rel && asprintf(&path, "%s/%s", cfg->run_root, rel) < 0)
		path = NULL;
	free(rel);
	return path;
}

static bool path_exists(const char *path)
{
	struct stat st;

	return path && stat(path, &st) == 0;
}

/* udev renames a new interface (eth1 -> ens6) and the kernel refuses to rename one that is
 * up, so, as systemd-networkd does, leave the link alone until udev is done with it: udev
 * marks that by writing its database entry n<ifindex> (renamed into place). Returns 0 when
 * done or when no udev runs, 1 when udev stayed silent for UDEV_WAIT_MS. */
static int wait_udev(const struct kb_config *cfg, int ifindex, int64_t deadline,
		     struct kb_error *err)
{
	char *control = run_path(cfg, "udev/control");
	char *dir = run_path(cfg, "udev/data");
	char *entry = run_path(cfg, "udev/data/n%d", ifindex);
	int64_t until = deadline_min(deadline, deadline_after_ms(UDEV_WAIT_MS));
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int fd = -1;
	int ret = 0;

	if (!control || !dir || !entry) {
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	if (!path_exists(control) || path_exists(entry))
		goto out;
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0 || inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO) < 0) {
		ret = kb_errorf(err, errno, "watch %s: %s", dir, strerror(errno));
		goto out;
	}
	/* Between the first check and the watch, the entry may have appeared. */
	while (!path_exists(entry)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline_remaining_ms(until);

		if (left == 0) {
			ret = 1;
			break;
		}
		if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR) {
			ret = kb_errorf(err, errno, "wait for %s: %s", entry, strerror(errno));
			break;
		}
		while (read(fd, events, sizeof(events)) > 0)
			;
	}
out:
	if (fd >= 0)
		close(fd);
	free(control);
	free(dir);
	free(entry);
	return ret;
}

/* The value of "KEY=" in a KEY=VALUE file (systemd's state files, .network drop-ins);
 * NULL when absent or unreadable. */
static char *file_value(const char *path, const char *key)
{
	struct kb_error ignored = {{0}};
	size_t klen = strlen(key);
	char *text = NULL;
	char *value = NULL;
	size_t len;

	if (!path || file_read_all(path, &text, &len, &ignored) < 0)
		return NULL;
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
									 : NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			value = strndup(line + klen + 1, strcspn(line + klen + 1, "\n"));
			break;
		}
	}
	free(text);
	return value;
}

/* What other network managers do with the ENI's link; fills *who ("" when none) for the
 * warnings about state that differs from ours. Best effort: a manager it cannot read is one
 * it does not report. */
static void note_managers(const struct kb_config *cfg, const struct netcfg_link *link,
			  uint32_t table, char *who, size_t who_len)
{
	char *state_file = run_path(cfg, "systemd/netif/links/%d", link->ifindex);
	char *admin = file_value(state_file, "ADMIN_STATE");
	char *network_file = file_value(state_file, "NETWORK_FILE");
	char *policy = run_path(cfg, "systemd/network/70-%s.network.d/ec2net_policy_4.conf",
				link->name);
	char *ec2_table = file_value(policy, "Table");
	char *nm = run_path(cfg, "NetworkManager/devices/%d", link->ifindex);

	who[0] = '\0';
	if (admin && strcmp(admin, "unmanaged") != 0) {
		snprintf(who, who_len, "systemd-networkd (%s)", network_file ? network_file : "?");
		log_info("network: systemd-networkd manages %s (state %s, %s)", link->name, admin,
			 network_file ? network_file : "no network file");
	}
	if (network_file && strstr(network_file, "netplan"))
		log_info("network: %s comes from netplan (cloud-init's secondary-NIC routes use "
			 "tables 100 + device index)", network_file);
	if (ec2_table) {
		log_info("network: amazon-ec2-net-utils configures %s with table %s", link->name,
			 ec2_table);
		if (strtoul(ec2_table, NULL, 10) != table)
			log_warn("network: amazon-ec2-net-utils routes %s through table %s, "
				 "kafka-bootstrap through table %u (route_table): two tables for "
				 "one address, the lower rule priority wins", link->name, ec2_table,
				 table);
	}
	if (path_exists(nm)) {
		snprintf(who, who_len, "NetworkManager");
		log_info("network: NetworkManager knows %s (%s)", link->name, nm);
	}
	free(state_file);
	free(admin);
	free(network_file);
	free(policy);
	free(ec2_table);
	free(nm);
}

static void warn_addrs(const struct netcfg_state *state, const struct netcfg_spec *spec,
		       const char *ifname, const char *by)
{
	char a[NETCFG_IP_STRLEN];

	for (size_t i = 0; i < state->addr_count; i++) {
		const struct netcfg_addr *addr = &state->addrs[i];
		bool ours = addr->local.s_addr == spec->ip.s_addr;

		inet_ntop(AF_INET, &addr->local, a, sizeof(a));
		if (ours && addr->ifindex != spec->ifindex)
			log_warn("network: %s is also on interface #%d, not only on %s%s", a,
				 addr->ifindex, ifname, by);
		else if (ours && addr->prefix_len != spec->prefix_len)
			log_warn("network: %s has %s/%u, the subnet is /%u%s; left as it is",
				 ifname, a, addr->prefix_len, spec->prefix_len, by);
		else if (!ours && addr->ifindex == spec->ifindex)
			log_warn("network: %s also has %s/%u%s; left as it is", ifname, a,
				 addr->prefix_len, by);
	}
}

/* Says what another manager configured differently: other addresses, other rules for our
 * address, main-table routes through the ENI. Nothing here is changed. */
static void warn_differences(const struct netcfg_state *state, const struct netcfg_spec *spec,
			     const char *ifname, const char *who)
{
	char by[160];

	snprintf(by, sizeof(by), "%s%s%s", who[0] ? " (set by " : " (set by another tool)", who,
		 who[0] ? ")" : "");
	warn_addrs(state, spec, ifname, by);
	for (size_t i = 0; i < state->rule_count; i++) {
		const struct netcfg_rule *rule = &state->rules[i];
		char *text;

		if (rule->priority == spec->priority || rule->src_len != 32 ||
		    rule->src.s_addr != spec->ip.s_addr)
			continue;
		text = netcfg_rule_text(rule);
		log_warn("network: another rule for the ENI's address: %s%s; ours is priority %u "
			 "(lower numbers are looked up first)", text ? text : "?", by,
			 spec->priority);
		free(text);
	}
	for (size_t i = 0; i < state->route_count; i++) {
		const struct netcfg_route *route = &state->routes[i];
		char *text;

		if (route->table != RT_TABLE_MAIN || route->oif != spec->ifindex)
			continue;
		text = netcfg_route_text(route, ifname);
		log_warn("network: the main table routes through the ENI: %s%s; left as it is",
			 text ? text : "?", by);
		free(text);
	}
}

static int ensure_networkd_dropin(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	struct file_write_options opts = {.mode = 0644, .uid = (uid_t)-1, .gid = (gid_t)-1,
					  .make_dir = true};
	struct kb_error ignored = {{0}};
	char *netif = run_path(cfg, "systemd/netif");
	char *path = run_path(cfg, NETWORKD_DROPIN);
	char *text = NULL;
	size_t len = 0;
	int ret = 0;

	if (!netif || !path) {
		ret = kb_errorf(&run->err, ENOMEM, "out of memory");
		goto out;
	}
	/* No state directory: systemd-networkd has not run this boot. */
	if (!path_exists(netif))
		goto out;
	if (file_read_all(path, &text, &len, &ignored) == 0 && len == strlen(networkd_dropin) &&
	    memcmp(text, networkd_dropin, len) == 0)
		goto out;
	if (run->mode == KB_MODE_RUN) {
		ret = file_write_atomic(path, networkd_dropin, strlen(networkd_dropin), &opts,
					&run->err);
		if (ret < 0)
			goto out;
		log_info("network: systemd-networkd keeps our rule and routes from its next start "
			 "on; until then, kafka-bootstrap run repairs them if it removes them");
	}
	kb_run_change(run, "write %s (ManageForeignRoutingPolicyRules=no, "
		      "ManageForeignRoutes=no)", path);
out:
	free(netif);
	free(path);
	free(text);
	return ret;
}

static int parse_target(struct kb_run *run, const struct network_target *t,
			uint8_t mac[NETCFG_MAC_LEN], struct netcfg_spec *spec)
{
	struct in_addr network;
	uint8_t primary[NETCFG_MAC_LEN];

	memset(spec, 0, sizeof(*spec));
	if (!t->mac || netcfg_parse_mac(t->mac, mac) < 0)
		return kb_errorf(&run->err, EINVAL, "ENI MAC '%s' is not a MAC address",
				 t->mac ? t->mac : "");
	if (t->primary_mac && netcfg_parse_mac(t->primary_mac, primary) == 0 &&
	    memcmp(primary, mac, NETCFG_MAC_LEN) == 0)
		return kb_errorf(&run->err, KB_EINTERNAL, "the ENI's MAC %s is the primary "
				 "interface's: refusing to configure it", t->mac);
	if (!t->ip || inet_pton(AF_INET, t->ip, &spec->ip) != 1)
		return kb_errorf(&run->err, EINVAL, "ENI address '%s' is not an IPv4 address",
				 t->ip ? t->ip : "");
	spec->table = t->table;
	spec->priority = t->priority;
	if (!t->subnet_cidr)
		return 0;
	if (netcfg_parse_cidr(t->subnet_cidr, &network, &spec->prefix_len) < 0)
		return kb_errorf(&run->err, EINVAL, "subnet '%s' is not an IPv4 CIDR block",
				 t->subnet_cidr);
	if ((spec->ip.s_addr ^ network.s_addr) &
	    htonl(spec->prefix_len ? ~0u << (32 - spec->prefix_len) : 0))
		return kb_errorf(&run->err, EINVAL, "ENI address %s is not in its subnet %s", t->ip,
				 t->subnet_cidr);
	spec->router = netcfg_subnet_router(network);
	return 0;
}

/* Finds the ENI's link: waits for it in run mode, looks once otherwise. Returns 1 when it is
 * not there (plan, prerequisite). */
static int find_eni_link(struct kb_run *run, struct netcfg *nc, const uint8_t mac[NETCFG_MAC_LEN],
			 const char *mac_text, struct netcfg_link *link)
{
	bool wait = run->mode == KB_MODE_RUN && !run->prerequisite;
	int64_t started = deadline_now_ms();
	int ifindex;
	int ret;

	ret = netcfg_wait_link(nc, mac, wait ? run->stage_deadline : 0, link, &run->err);
	if (ret == -KB_ETIMEOUT && !wait) {
		kb_error_clear(&run->err);
		return 1;
	}
	if (ret < 0) {
		kb_error_prefix(&run->err, "find the ENI's interface (MAC %s)", mac_text);
		return ret;
	}
	log_info("network: the ENI's interface is %s (ifindex %d, MAC %s), found after %lld ms",
		 link->name, link->ifindex, mac_text, (long long)(deadline_now_ms() - started));
	if (!wait)
		return 0;
	ret = wait_udev(run->cfg, link->ifindex, run->stage_deadline, &run->err);
	if (ret == 1)
		log_warn("network: udev has not finished with %s after %d ms; configuring it "
			 "anyway", link->name, UDEV_WAIT_MS);
	if (ret < 0)
		return ret;
	/* udev may have renamed it meanwhile. */
	ifindex = link->ifindex;
	netcfg_link_clear(link);
	ret = netcfg_link_get(nc, ifindex, link, &run->err);
	return ret < 0 ? ret : 0;
}

/* Plan for an ENI that is not attached yet: what would happen once its link appears. */
static int plan_absent(struct kb_run *run, struct netcfg *nc, const struct network_target *t,
		       struct netcfg_spec *spec)
{
	struct netcfg_state *state = NULL;
	struct netcfg_change_list *changes = NULL;
	int ret;

	kb_run_change(run, "wait for the interface with MAC %s (the ENI is not attached yet)",
		      t->mac);
	if (!t->subnet_cidr) {
		kb_run_change(run, "configure %s with its subnet's prefix (from IMDS once "
			      "attached), table %u, rule priority %u", t->ip, t->table,
			      t->priority);
		return 0;
	}
	ret = netcfg_state_read(nc, 0, &state, &run->err);
	if (ret < 0)
		return ret;
	state->link.ifindex = spec->ifindex = -1;
	state->link.name = strdup(t->mac);
	ret = state->link.name ? netcfg_diff(state, spec, &changes, &run->err)
			       : kb_errorf(&run->err, ENOMEM, "out of memory");
	for (size_t i = 0; ret == 0 && i < changes->count; i++)
		kb_run_change(run, "%s", changes->items[i].text);
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
	return ret;
}

static int apply_changes(struct kb_run *run, struct netcfg *nc,
			 const struct netcfg_change_list *changes, const char *ifname)
{
	int ret;

	if (run->prerequisite && changes->count) {
		return kb_errorf(&run->err, ENOENT, "%s is not configured yet (%zu netlink "
				 "changes missing, first: %s): run the network stage", ifname,
				 changes->count, changes->items[0].text);
	}
	for (size_t i = 0; i < changes->count; i++) {
		if (run->mode == KB_MODE_RUN) {
			ret = netcfg_apply(nc, &changes->items[i], &run->err);
			if (ret < 0)
				return ret;
		}
		kb_run_change(run, "%s", changes->items[i].text);
	}
	return 0;
}

int network_configure(struct kb_run *run, const struct network_target *t)
{
	struct netcfg *nc = NULL;
	struct netcfg_link link = {0};
	struct netcfg_state *state = NULL;
	struct netcfg_change_list *changes = NULL;
	struct netcfg_spec spec;
	uint8_t mac[NETCFG_MAC_LEN];
	char who[256];
	int ret;

	ret = parse_target(run, t, mac, &spec);
	if (ret < 0)
		return ret;
	if (!t->subnet_cidr && run->mode == KB_MODE_RUN)
		return kb_errorf(&run->err, KB_EINTERNAL, "no subnet for ENI address %s", t->ip);
	nc = netcfg_new(&run->err);
	if (!nc)
		return -EIO;
	ret = find_eni_link(run, nc, mac, t->mac, &link);
	if (ret == 1 && run->prerequisite) {
		ret = kb_errorf(&run->err, ENODEV, "no interface has the ENI's MAC %s: the ENI is "
				"not attached to this instance (run the eni stage)", t->mac);
		goto out;
	}
	if (ret == 1) {
		ret = plan_absent(run, nc, t, &spec);
		goto out;
	}
	if (ret < 0)
		goto out;
	free(run->ifname);
	run->ifname = strdup(link.name);
	spec.ifindex = link.ifindex;
	if (!t->subnet_cidr) {
		kb_run_change(run, "configure %s on %s once IMDS lists the ENI's subnet", t->ip,
			      link.name);
		goto out;
	}
	ret = netcfg_state_read(nc, link.ifindex, &state, &run->err);
	if (ret < 0)
		goto out;
	note_managers(run->cfg, &state->link, spec.table, who, sizeof(who));
	warn_differences(state, &spec, state->link.name, who);
	ret = netcfg_diff(state, &spec, &changes, &run->err);
	if (ret == 0)
		ret = apply_changes(run, nc, changes, state->link.name);
	if (ret == 0 && !run->prerequisite)
		ret = ensure_networkd_dropin(run);
	if (ret < 0)
		kb_error_prefix(&run->err, "configure %s (%s) for %s", state->link.name, t->mac,
				t->ip);
out:
	netcfg_change_list_free(changes);
	netcfg_state_free(state);
	netcfg_link_clear(&link);
	netcfg_free(nc);
	return ret;
}

/* IMDS lists a just-attached ENI's keys only after a lag (404 meanwhile): imds_wait retries
 * them until the deadline, and never takes an error for "no subnet". */
static int subnet_from_imds(struct kb_run *run, const char *mac, char **cidr)
{
	char *path = NULL;
	char *lower = strdup(mac);
	int ret;

	*cidr = NULL;
	if (!lower)
		return kb_errorf(&run->err, ENOMEM, "out of memory");
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (asprintf(&path, "meta-data/network/interfaces/macs/%s/subnet-ipv4-cidr-block",
		     lower) < 0) {
		free(lower);
		return kb_errorf(&run->err, ENOMEM, "out of memory");
	}
	ret = run->imds ? imds_wait(run->imds, path, run->stage_deadline, cidr, &run->err)
			: kb_errorf(&run->err, KB_EINTERNAL, "no IMDS client");
	if (ret < 0)
		kb_error_prefix(&run->err, "subnet of the ENI (IMDS %s)", path);
	else
		(*cidr)[strcspn(*cidr, "\r\n")] = '\0';
	free(path);
	free(lower);
	return ret;
}

int network_stage(struct kb_run *run)
{
	const struct ec2_eni *eni = run->broker ? run->broker->eni : NULL;
	struct network_target t = {0};
	char *cidr = NULL;
	bool mine;
	int ret;

	if (!eni || !eni->mac || !eni->private_ip)
		return kb_errorf(&run->err, KB_EINTERNAL, "no ENI to configure: no broker id was "
				 "claimed with one");
	/* The device index of the attachment, not IMDS's device-number, which reads 0 for a
	 * while after a hot attach (amazon-ec2-net-utils lib.sh _get_device_number). */
	mine = eni->attachment_instance_id && run->identity.instance_id &&
	       strcmp(eni->attachment_instance_id, run->identity.instance_id) == 0;
	t.mac = eni->mac;
	t.ip = eni->private_ip;
	t.primary_mac = run->identity.mac;
	t.table = network_route_table(run->cfg, mine ? eni->attachment_device_index : -1,
				      mine ? eni->attachment_network_card_index : -1);
	t.priority = network_rule_priority(run->cfg, mine ? eni->attachment_device_index : -1,
					   mine ? eni->attachment_network_card_index : -1);
	if (!mine && run->prerequisite)
		return kb_errorf(&run->err, ENODEV, "ENI %s is not attached to this instance: run "
				 "the eni stage", eni->id ? eni->id : "?");
	if (mine || run->mode == KB_MODE_RUN) {
		ret = subnet_from_imds(run, eni->mac, &cidr);
		if (ret < 0)
			return ret;
	}
	t.subnet_cidr = cidr;
	ret = network_configure(run, &t);
	if (ret < 0)
		kb_error_prefix(&run->err, "ENI %s", eni->id ? eni->id : "?");
	free(cidr);
	return ret;
}

static const char *link_name(const struct netcfg_link_list *links, int ifindex)
{
	for (size_t i = 0; links && i < links->count; i++) {
		if (links->items[i].ifindex == ifindex)
			return links->items[i].name;
	}
	return NULL;
}

static bool route_uses_link(const struct netcfg_state *state, uint32_t table, int ifindex)
{
	for (size_t i = 0; i < state->route_count; i++) {
		if (state->routes[i].table == table && state->routes[i].oif == ifindex)
			return true;
	}
	return false;
}

static size_t print_state(const struct netcfg_state *state, const struct netcfg_link_list *links,
			  uint32_t table, uint32_t priority, FILE *out)
{
	char a[NETCFG_IP_STRLEN];
	size_t shown = 0;
	char *text;

	for (size_t i = 0; i < state->rule_count; i++) {
		const struct netcfg_rule *r = &state->rules[i];

		if (r->priority != priority &&
		    !(r->action == FR_ACT_TO_TBL && r->table == table))
			continue;
		text = netcfg_rule_text(r);
		fprintf(out, "  rule    %s\n", text ? text : "?");
		free(text);
		shown++;
	}
	for (size_t i = 0; i < state->route_count; i++) {
		if (state->routes[i].table != table)
			continue;
		text = netcfg_route_text(&state->routes[i],
					 link_name(links, state->routes[i].oif));
		fprintf(out, "  route   %s\n", text ? text : "?");
		free(text);
		shown++;
	}
	for (size_t i = 0; i < state->addr_count; i++) {
		const struct netcfg_addr *addr = &state->addrs[i];
		const char *name = link_name(links, addr->ifindex);

		if (!route_uses_link(state, table, addr->ifindex))
			continue;
		fprintf(out, "  address %s/%u dev %s%s\n",
			inet_ntop(AF_INET, &addr->local, a, sizeof(a)), addr->prefix_len,
			name ? name : "?",
			addr->flags & IFA_F_NOPREFIXROUTE ? " noprefixroute" : "");
		shown++;
	}
	return shown;
}

int network_status(const struct kb_config *cfg, FILE *out, struct kb_error *err)
{
	uint32_t table = network_route_table(cfg, -1, -1);
	uint32_t priority = network_rule_priority(cfg, -1, -1);
	struct netcfg_link_list *links = NULL;
	struct netcfg_state *state = NULL;
	struct netcfg *nc = netcfg_new(err);
	int ret;

	if (!nc)
		return -EIO;
	ret = netcfg_links(nc, &links, err);
	if (ret == 0)
		ret = netcfg_state_read(nc, 0, &state, err);
	if (ret < 0)
		goto out;
	fprintf(out, "network: route table %u, rule priority %u%s\n", table, priority,
		cfg->route_table && cfg->rule_priority ? "" : " (numbers for the configured "
		"device index; an ENI attached elsewhere uses its own)");
	if (print_state(state, links, table, priority, out) == 0)
		fprintf(out, "  nothing in place: no rule at priority %u, table %u empty\n",
			priority, table);
out:
	netcfg_state_free(state);
	netcfg_link_list_free(links);
	netcfg_free(nc);
	return ret;
}
