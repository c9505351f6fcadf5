/* netcfg.c: the ENI's link, address, route table and rule, over rtnetlink with libmnl.
 *
 * Requests, dumps and events follow libmnl's examples/rtnl; which attributes each request
 * carries follows iproute2 (ipaddress.c, iproute.c, iprule.c). It reads before it writes, so a
 * rerun sends nothing. It never deletes, never writes to the main, local or default table and
 * never changes a link other than the ENI's. */
#include "kb/netcfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <limits.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kb/deadline.h"
#include "kb/log.h"

/* The one fixed buffer: a dump datagram larger than this is reported by libmnl as ENOSPC,
 * never cut silently (the size libmnl 1.0.5 names MNL_SOCKET_DUMP_SIZE). */
#define NETCFG_BUF_SIZE 32768
/* Requests are a header and a few attributes. */
#define NETCFG_REQ_SIZE 512
/* A dump the kernel marks inconsistent (NLM_F_DUMP_INTR, a table changed while it was read)
 * is read again; more changes than this in a row mean something is churning the tables. */
#define NETCFG_DUMP_ATTEMPTS 5

struct netcfg {
	struct mnl_socket *nl;
	unsigned int portid;
	unsigned int seq;
	char *ext_ack; /* the kernel's extended-ack text for the last request, or NULL */
	char buf[NETCFG_BUF_SIZE];
};

static int socket_open(unsigned int groups, struct mnl_socket **out, unsigned int *portid,
		       struct kb_error *err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	int one = 1;
	int ret;

	if (!nl)
		return kb_errorf(err, errno, "cannot open a rtnetlink socket: %s", strerror(errno));
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		ret = errno;
		mnl_socket_close(nl);
		return kb_errorf(err, ret, "cannot bind a rtnetlink socket: %s", strerror(ret));
	}
	/* Ignored on purpose, as iproute2 does: a kernel without extended acks still answers,
	 * the messages only lose the kernel's explanation. CAP_ACK keeps our own request out
	 * of error replies. */
	(void)mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	*out = nl;
	if (portid)
		*portid = mnl_socket_get_portid(nl);
	return 0;
}

struct netcfg *netcfg_new(struct kb_error *err)
{
	struct netcfg *nc = calloc(1, sizeof(*nc));

	if (!nc) {
		kb_errorf(err, ENOMEM, "out of memory");
		return NULL;
	}
	if (socket_open(0, &nc->nl, &nc->portid, err) < 0) {
		free(nc);
		return NULL;
	}
	nc->seq = (unsigned int)time(NULL);
	return nc;
}

void netcfg_free(struct netcfg *nc)
{
	if (!nc)
		return;
	if (nc->nl)
		mnl_socket_close(nc->nl);
	free(nc->ext_ack);
	free(nc);
}

/* After a failure that may leave unread replies queued (an interrupted dump, a short read),
 * a new socket guarantees the next request reads only its own answer. */
static int socket_reset(struct netcfg *nc, struct kb_error *err)
{
	if (nc->nl)
		mnl_socket_close(nc->nl);
	nc->nl = NULL;
	return socket_open(0, &nc->nl, &nc->portid, err);
}

int netcfg_parse_mac(const char *text, uint8_t mac[NETCFG_MAC_LEN])
{
	if (!text || strlen(text) != NETCFG_MAC_STRLEN - 1)
		return -EINVAL;
	for (int i = 0; i < NETCFG_MAC_LEN; i++) {
		const char *p = text + i * 3;

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < NETCFG_MAC_LEN - 1 && p[2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)strtoul((char[]){p[0], p[1], '\0'}, NULL, 16);
	}
	return 0;
}

void netcfg_format_mac(const uint8_t mac[NETCFG_MAC_LEN], char out[NETCFG_MAC_STRLEN])
{
	snprintf(out, NETCFG_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}

static uint32_t prefix_mask(uint8_t prefix_len)
{
	return prefix_len == 0 ? 0 : htonl(~0u << (32 - prefix_len));
}

int netcfg_parse_cidr(const char *text, struct in_addr *network, uint8_t *prefix_len)
{
	const char *slash = text ? strchr(text, '/') : NULL;
	char addr[NETCFG_IP_STRLEN];
	char *end;
	long len;

	if (!slash || (size_t)(slash - text) >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	errno = 0;
	len = strtol(slash + 1, &end, 10);
	/* IMDS ends its values without a newline, but tolerate one. */
	if (errno || end == slash + 1 || (*end && strcmp(end, "\n") != 0) || len < 0 || len > 32)
		return -EINVAL;
	if (inet_pton(AF_INET, addr, network) != 1)
		return -EINVAL;
	if (network->s_addr & ~prefix_mask((uint8_t)len))
		return -EINVAL;
	*prefix_len = (uint8_t)len;
	return 0;
}

struct in_addr netcfg_subnet_router(struct in_addr network)
{
	struct in_addr router = {.s_addr = htonl(ntohl(network.s_addr) + 1)};

	return router;
}

/* Requests and replies. */

struct call {
	struct netcfg *nc;
	mnl_cb_t data_cb;
	void *data;
	bool refused; /* the kernel answered with an error: nothing more of it is queued */
};

static int call_data_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct call *call = arg;

	return call->data_cb ? call->data_cb(nlh, call->data) : MNL_CB_OK;
}

static int ext_ack_attr_cb(const struct nlattr *attr, void *data)
{
	const char **msg = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		*msg = mnl_attr_get_str(attr);
	return MNL_CB_OK;
}

/* libmnl's own NLMSG_ERROR handler only sets errno; this one also keeps the kernel's
 * extended-ack text (NLMSGERR_ATTR_MSG, after the capped request), as iproute2's
 * nl_dump_ext_ack does. */
static int read_error_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct call *call = arg;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *msg = NULL;
	size_t offset = sizeof(*e);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (e->error == 0)
		return MNL_CB_STOP;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			offset += e->msg.nlmsg_len - sizeof(e->msg);
		if (mnl_nlmsg_size(offset) <= nlh->nlmsg_len)
			mnl_attr_parse(nlh, (unsigned int)offset, ext_ack_attr_cb, &msg);
	}
	free(call->nc->ext_ack);
	call->nc->ext_ack = msg ? strdup(msg) : NULL;
	call->refused = true;
	errno = e->error < 0 ? -e->error : e->error;
	return MNL_CB_ERROR;
}

/* A dump that fails half-way ends with NLMSG_DONE carrying the error (iproute2's
 * rtnl_dump_done). */
static int read_done_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct call *call = arg;

	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
		int error;

		memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
		if (error < 0) {
			call->refused = true;
			errno = -error;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

static mnl_cb_t control_cbs[NLMSG_MIN_TYPE] = {
	[NLMSG_ERROR] = read_error_cb,
	[NLMSG_DONE] = read_done_cb,
};

/* Sends one request and runs its replies through data_cb until the ack or NLMSG_DONE.
 * Returns 0 or -errno; *kernel_error tells a refusal by the kernel, after which nothing of
 * the request is queued, from any other failure (ESRCH: not from the kernel; EPROTO:
 * another request's reply; EINTR: NLM_F_DUMP_INTR, libmnl src/callback.c; a callback's own
 * error), after which the rest of a dump may still be: the caller resets the socket. */
static int talk(struct netcfg *nc, struct nlmsghdr *nlh, mnl_cb_t data_cb, void *data,
		bool *kernel_error)
{
	struct call call = {.nc = nc, .data_cb = data_cb, .data = data};
	unsigned int seq = ++nc->seq;
	ssize_t n;
	int ret;

	*kernel_error = false;
	free(nc->ext_ack);
	nc->ext_ack = NULL;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nc->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nc->nl, nc->buf, sizeof(nc->buf));
		if (n < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run2(nc->buf, (size_t)n, seq, nc->portid, call_data_cb, &call,
				  control_cbs, NLMSG_MIN_TYPE);
		if (ret < 0) {
			*kernel_error = call.refused;
			return errno ? -errno : -EIO;
		}
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

/* "<what>: <kernel's explanation> (<strerror>)", or "<what>: <strerror>". */
static int request_error(struct netcfg *nc, int ret, struct kb_error *err, const char *what)
{
	if (nc->ext_ack)
		return kb_errorf(err, -ret, "%s: %s (%s)", what, nc->ext_ack, strerror(-ret));
	if (ret == -ENOSPC)
		return kb_errorf(err, -ret, "%s: a netlink reply did not fit in %d bytes", what,
				 NETCFG_BUF_SIZE);
	return kb_errorf(err, -ret, "%s: %s", what, strerror(-ret));
}

/* One request with an ack, or one dump (retried while the kernel marks it interrupted:
 * a partial view would make the diff add what is already there). reset_cb empties what
 * data_cb collected before a retry. */
static int request(struct netcfg *nc, struct nlmsghdr *nlh, mnl_cb_t data_cb, void *data,
		   void (*reset_cb)(void *data), struct kb_error *err, const char *what)
{
	bool kernel_error;
	int ret = 0;

	for (int attempt = 0; attempt < NETCFG_DUMP_ATTEMPTS; attempt++) {
		if (attempt > 0 && reset_cb)
			reset_cb(data);
		ret = talk(nc, nlh, data_cb, data, &kernel_error);
		if (ret == 0 || kernel_error)
			break;
		if (socket_reset(nc, err) < 0)
			return -EIO;
		if (ret != -EINTR || !(nlh->nlmsg_flags & NLM_F_DUMP))
			break;
		log_debug("netcfg: %s: dump interrupted by a concurrent change, reading again",
			  what);
	}
	if (ret == -EINTR)
		return kb_errorf(err, EINTR, "%s: the kernel interrupted the dump %d times in a "
				 "row (tables changing meanwhile)", what, NETCFG_DUMP_ATTEMPTS);
	if (ret < 0)
		return request_error(nc, ret, err, what);
	return 0;
}

static struct nlmsghdr *put_header(char *req, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

/* Growable arrays of the dumps. */
static void *grow(void **items, size_t *count, size_t size)
{
	char *grown = realloc(*items, (*count + 1) * size);

	if (!grown)
		return NULL;
	*items = grown;
	memset(grown + *count * size, 0, size);
	return grown + (*count)++ * size;
}

/* Links. */

/* Which attributes each dump keeps and what each must look like, as the kernel's own
 * nla_policy tables do: the one attribute callback skips unknown types
 * (mnl_attr_type_valid) and what the policy does not name, validates the rest. */
enum attr_kind { ATTR_SKIP, ATTR_IN_ADDR, ATTR_U32, ATTR_STRING, ATTR_BINARY };

struct attr_table {
	const uint8_t *policy; /* enum attr_kind by attribute type */
	unsigned int max;
	const struct nlattr **tb;
};

static const uint8_t link_policy[IFLA_MAX + 1] = {
	[IFLA_IFNAME] = ATTR_STRING, [IFLA_ADDRESS] = ATTR_BINARY,
};

static const uint8_t addr_policy[IFA_MAX + 1] = {
	[IFA_ADDRESS] = ATTR_IN_ADDR, [IFA_LOCAL] = ATTR_IN_ADDR, [IFA_FLAGS] = ATTR_U32,
};

static const uint8_t route_policy[RTA_MAX + 1] = {
	[RTA_DST] = ATTR_IN_ADDR, [RTA_GATEWAY] = ATTR_IN_ADDR, [RTA_PREFSRC] = ATTR_IN_ADDR,
	[RTA_TABLE] = ATTR_U32,   [RTA_OIF] = ATTR_U32,         [RTA_PRIORITY] = ATTR_U32,
	[RTA_MULTIPATH] = ATTR_BINARY,
};

/* FRA_SRC, FRA_PRIORITY, FRA_TABLE, and the selectors that make a rule more than "from
 * <src>" (see selector_set). */
static const uint8_t rule_policy[FRA_MAX + 1] = {
	[FRA_SRC] = ATTR_IN_ADDR,         [FRA_PRIORITY] = ATTR_U32,
	[FRA_TABLE] = ATTR_U32,           [FRA_FWMARK] = ATTR_U32,
	[FRA_SUPPRESS_IFGROUP] = ATTR_U32, [FRA_SUPPRESS_PREFIXLEN] = ATTR_U32,
	[FRA_IIFNAME] = ATTR_BINARY,      [FRA_OIFNAME] = ATTR_BINARY,
	[FRA_TUN_ID] = ATTR_BINARY,       [FRA_L3MDEV] = ATTR_BINARY,
	[FRA_UID_RANGE] = ATTR_BINARY,    [FRA_IP_PROTO] = ATTR_BINARY,
	[FRA_SPORT_RANGE] = ATTR_BINARY,  [FRA_DPORT_RANGE] = ATTR_BINARY,
};

static int read_attr_cb(const struct nlattr *attr, void *data)
{
	const struct attr_table *t = data;
	unsigned int type = mnl_attr_get_type(attr);
	int ret = 0;

	if (mnl_attr_type_valid(attr, (uint16_t)t->max) < 0)
		return MNL_CB_OK;
	switch (t->policy[type]) {
	case ATTR_SKIP:
		return MNL_CB_OK;
	case ATTR_IN_ADDR:
		ret = mnl_attr_validate2(attr, MNL_TYPE_BINARY, sizeof(struct in_addr));
		break;
	case ATTR_U32:
		ret = mnl_attr_validate(attr, MNL_TYPE_U32);
		break;
	case ATTR_STRING:
		ret = mnl_attr_validate(attr, MNL_TYPE_NUL_STRING);
		break;
	default:
		break;
	}
	if (ret < 0)
		return MNL_CB_ERROR;
	t->tb[type] = attr;
	return MNL_CB_OK;
}

/* Fills tb (max + 1 entries, zeroed) from the attributes after a hdr_len-byte header. */
static int parse_attrs(const struct nlmsghdr *nlh, size_t hdr_len, const uint8_t *policy,
		       unsigned int max, const struct nlattr **tb)
{
	struct attr_table t = {.policy = policy, .max = max, .tb = tb};

	return mnl_attr_parse(nlh, (unsigned int)hdr_len, read_attr_cb, &t);
}

/* Fills link from an RTM_NEWLINK message; -ENOMEM, or -EBADMSG for a malformed one. */
static int parse_link(const struct nlmsghdr *nlh, struct netcfg_link *link)
{
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	if (parse_attrs(nlh, sizeof(*ifm), link_policy, IFLA_MAX, tb) < 0)
		return -EBADMSG;
	memset(link, 0, sizeof(*link));
	link->ifindex = ifm->ifi_index;
	link->flags = ifm->ifi_flags;
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == NETCFG_MAC_LEN) {
		memcpy(link->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), NETCFG_MAC_LEN);
		link->has_mac = true;
	}
	link->name = strdup(tb[IFLA_IFNAME] ? mnl_attr_get_str(tb[IFLA_IFNAME]) : "");
	return link->name ? 0 : -ENOMEM;
}

void netcfg_link_clear(struct netcfg_link *link)
{
	if (!link)
		return;
	free(link->name);
	memset(link, 0, sizeof(*link));
}

void netcfg_link_list_free(struct netcfg_link_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++)
		netcfg_link_clear(&list->items[i]);
	free(list->items);
	free(list);
}

static int read_links_cb(const struct nlmsghdr *nlh, void *data)
{
	struct netcfg_link_list *list = data;
	struct netcfg_link *link;
	int ret;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	link = grow((void **)&list->items, &list->count, sizeof(*link));
	if (!link) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	ret = parse_link(nlh, link);
	if (ret < 0) {
		list->count--;
		errno = -ret;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static void reset_links(void *data)
{
	struct netcfg_link_list *list = data;

	for (size_t i = 0; i < list->count; i++)
		netcfg_link_clear(&list->items[i]);
	list->count = 0;
}

int netcfg_links(struct netcfg *nc, struct netcfg_link_list **out, struct kb_error *err)
{
	char req[NETCFG_REQ_SIZE];
	struct nlmsghdr *nlh = put_header(req, RTM_GETLINK, NLM_F_DUMP);
	struct rtgenmsg *rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	struct netcfg_link_list *list = calloc(1, sizeof(*list));
	int ret;

	*out = NULL;
	if (!list)
		return kb_errorf(err, ENOMEM, "out of memory");
	rt->rtgen_family = AF_PACKET;
	ret = request(nc, nlh, read_links_cb, list, reset_links, err, "dump links");
	if (ret < 0) {
		netcfg_link_list_free(list);
		return ret;
	}
	*out = list;
	return 0;
}

static int read_one_link_cb(const struct nlmsghdr *nlh, void *data)
{
	int ret;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	netcfg_link_clear(data);
	ret = parse_link(nlh, data);
	if (ret < 0) {
		errno = -ret;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

int netcfg_link_get(struct netcfg *nc, int ifindex, struct netcfg_link *out,
		    struct kb_error *err)
{
	char req[NETCFG_REQ_SIZE];
	char what[64];
	struct nlmsghdr *nlh = put_header(req, RTM_GETLINK, NLM_F_ACK);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	int ret;

	memset(out, 0, sizeof(*out));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	snprintf(what, sizeof(what), "read link #%d", ifindex);
	ret = request(nc, nlh, read_one_link_cb, out, NULL, err, what);
	if (ret == 0 && out->ifindex != ifindex) {
		netcfg_link_clear(out);
		return kb_errorf(err, ENODEV, "%s: the kernel sent no link", what);
	}
	if (ret < 0)
		netcfg_link_clear(out);
	return ret;
}

/* Waiting for the ENI's link. */

struct link_search {
	const uint8_t *mac;
	struct netcfg_link *found;
	bool done;
};

static int find_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_search *search = data;
	struct netcfg_link link;
	int ret;

	if (nlh->nlmsg_type != RTM_NEWLINK || search->done)
		return MNL_CB_OK;
	ret = parse_link(nlh, &link);
	if (ret < 0) {
		errno = -ret;
		return MNL_CB_ERROR;
	}
	if (link.has_mac && memcmp(link.mac, search->mac, NETCFG_MAC_LEN) == 0) {
		*search->found = link;
		search->done = true;
		return MNL_CB_OK;
	}
	netcfg_link_clear(&link);
	return MNL_CB_OK;
}

static int find_link(struct netcfg *nc, struct link_search *search, struct kb_error *err)
{
	char req[NETCFG_REQ_SIZE];
	struct nlmsghdr *nlh = put_header(req, RTM_GETLINK, NLM_F_DUMP);
	struct rtgenmsg *rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));

	rt->rtgen_family = AF_PACKET;
	if (search->done) {
		netcfg_link_clear(search->found);
		search->done = false;
	}
	return request(nc, nlh, find_link_cb, search, NULL, err, "dump links");
}

/* Reads one batch of link notifications. Returns 0 (read, maybe found), or -ENOBUFS when the
 * kernel dropped notifications (the socket overran): the caller looks again with a dump. */
static int read_link_events(struct netcfg *nc, struct mnl_socket *events,
			    struct link_search *search, struct kb_error *err)
{
	ssize_t n = mnl_socket_recvfrom(events, nc->buf, sizeof(nc->buf));
	int ret;

	if (n < 0) {
		if (errno == ENOBUFS)
			return -ENOBUFS;
		return kb_errorf(err, errno, "read link notifications: %s", strerror(errno));
	}
	/* Notifications carry sequence 0 and the kernel's port id 0. */
	ret = mnl_cb_run(nc->buf, (size_t)n, 0, 0, find_link_cb, search);
	if (ret < 0)
		return kb_errorf(err, errno, "read link notifications: %s", strerror(errno));
	return 0;
}

int netcfg_wait_link(struct netcfg *nc, const uint8_t mac[NETCFG_MAC_LEN], int64_t deadline,
		     struct netcfg_link *out, struct kb_error *err)
{
	struct link_search search = {.mac = mac, .found = out};
	struct mnl_socket *events = NULL;
	int64_t started = deadline_now_ms();
	char text[NETCFG_MAC_STRLEN];
	int ret;

	memset(out, 0, sizeof(*out));
	ret = socket_open(RTMGRP_LINK, &events, NULL, err);
	if (ret < 0)
		goto out;
	ret = find_link(nc, &search, err);
	while (ret == 0 && !search.done) {
		struct pollfd pfd = {.fd = mnl_socket_get_fd(events), .events = POLLIN};
		int64_t left = deadline_remaining_ms(deadline);
		int n;

		if (left == 0)
			break;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = kb_errorf(err, errno, "wait for link notifications: %s",
					strerror(errno));
			break;
		}
		if (n == 0)
			continue;
		ret = read_link_events(nc, events, &search, err);
		if (ret == -ENOBUFS) {
			log_debug("netcfg: link notifications overran, reading all links again");
			ret = find_link(nc, &search, err);
		}
	}
	if (ret == 0 && !search.done) {
		netcfg_format_mac(mac, text);
		ret = kb_errorf(err, KB_ETIMEOUT, "no network interface with MAC %s appeared "
				"within %lld ms", text, (long long)(deadline_now_ms() - started));
	}
out:
	if (ret < 0 && search.done)
		netcfg_link_clear(out);
	if (events)
		mnl_socket_close(events);
	return ret;
}

/* Addresses, routes, rules. */

static struct in_addr attr_in_addr(const struct nlattr *attr)
{
	struct in_addr a = {0};

	if (attr && mnl_attr_get_payload_len(attr) == sizeof(a))
		memcpy(&a, mnl_attr_get_payload(attr), sizeof(a));
	return a;
}

static int read_addrs_cb(const struct nlmsghdr *nlh, void *data)
{
	struct netcfg_state *state = data;
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct netcfg_addr *addr;

	if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET)
		return MNL_CB_OK;
	if (parse_attrs(nlh, sizeof(*ifa), addr_policy, IFA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	addr = grow((void **)&state->addrs, &state->addr_count, sizeof(*addr));
	if (!addr) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	addr->ifindex = (int)ifa->ifa_index;
	addr->local = attr_in_addr(tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS]);
	addr->prefix_len = ifa->ifa_prefixlen;
	addr->scope = ifa->ifa_scope;
	addr->flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	return MNL_CB_OK;
}

static void reset_addrs(void *data)
{
	((struct netcfg_state *)data)->addr_count = 0;
}

static int read_routes_cb(const struct nlmsghdr *nlh, void *data)
{
	struct netcfg_state *state = data;
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct netcfg_route *route;

	if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET)
		return MNL_CB_OK;
	if (parse_attrs(nlh, sizeof(*rtm), route_policy, RTA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	route = grow((void **)&state->routes, &state->route_count, sizeof(*route));
	if (!route) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	route->table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	route->dst = attr_in_addr(tb[RTA_DST]);
	route->dst_len = rtm->rtm_dst_len;
	route->gateway = attr_in_addr(tb[RTA_GATEWAY]);
	route->prefsrc = attr_in_addr(tb[RTA_PREFSRC]);
	route->oif = tb[RTA_OIF] ? (int)mnl_attr_get_u32(tb[RTA_OIF]) : 0;
	route->scope = rtm->rtm_scope;
	route->protocol = rtm->rtm_protocol;
	route->type = rtm->rtm_type;
	route->metric = tb[RTA_PRIORITY] ? mnl_attr_get_u32(tb[RTA_PRIORITY]) : 0;
	route->multipath = tb[RTA_MULTIPATH] != NULL;
	return MNL_CB_OK;
}

static void reset_routes(void *data)
{
	((struct netcfg_state *)data)->route_count = 0;
}

/* Whether a selector kept by rule_policy is set: Linux fib_nl_fill_rule puts each only when
 * it is, except the two suppressors, always sent, with (u32)-1 for "unset". */
static bool selector_set(const struct nlattr *attr)
{
	switch (mnl_attr_get_type(attr)) {
	case FRA_SUPPRESS_IFGROUP:
	case FRA_SUPPRESS_PREFIXLEN:
		return mnl_attr_get_u32(attr) != UINT32_MAX;
	case FRA_FWMARK:
		return mnl_attr_get_u32(attr) != 0;
	default:
		return true;
	}
}

static int read_rules_cb(const struct nlmsghdr *nlh, void *data)
{
	struct netcfg_state *state = data;
	const struct nlattr *tb[FRA_MAX + 1] = {0};
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct netcfg_rule *rule;

	if (nlh->nlmsg_type != RTM_NEWRULE || frh->family != AF_INET)
		return MNL_CB_OK;
	if (parse_attrs(nlh, sizeof(*frh), rule_policy, FRA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	rule = grow((void **)&state->rules, &state->rule_count, sizeof(*rule));
	if (!rule) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	rule->priority = tb[FRA_PRIORITY] ? mnl_attr_get_u32(tb[FRA_PRIORITY]) : 0;
	rule->table = tb[FRA_TABLE] ? mnl_attr_get_u32(tb[FRA_TABLE]) : frh->table;
	rule->action = frh->action;
	rule->src = attr_in_addr(tb[FRA_SRC]);
	rule->src_len = frh->src_len;
	rule->dst_len = frh->dst_len;
	rule->invert = frh->flags & FIB_RULE_INVERT;
	rule->other_selectors = frh->tos != 0;
	for (int type = 0; type <= FRA_MAX; type++) {
		if (tb[type] && type != FRA_SRC && type != FRA_PRIORITY && type != FRA_TABLE)
			rule->other_selectors |= selector_set(tb[type]);
	}
	return MNL_CB_OK;
}

static void reset_rules(void *data)
{
	((struct netcfg_state *)data)->rule_count = 0;
}

/* One dump of family's objects of one kind, through a header of hdr_len bytes whose first
 * byte is the family (ifaddrmsg, rtmsg and fib_rule_hdr all start so). */
static int dump(struct netcfg *nc, uint16_t type, size_t hdr_len, mnl_cb_t cb,
		void (*reset_cb)(void *), struct netcfg_state *state, struct kb_error *err,
		const char *what)
{
	char req[NETCFG_REQ_SIZE];
	struct nlmsghdr *nlh = put_header(req, type, NLM_F_DUMP);
	uint8_t *family = mnl_nlmsg_put_extra_header(nlh, hdr_len);

	*family = AF_INET;
	return request(nc, nlh, cb, state, reset_cb, err, what);
}

void netcfg_state_free(struct netcfg_state *state)
{
	if (!state)
		return;
	netcfg_link_clear(&state->link);
	free(state->addrs);
	free(state->routes);
	free(state->rules);
	free(state);
}

int netcfg_state_read(struct netcfg *nc, int ifindex, struct netcfg_state **out,
		      struct kb_error *err)
{
	struct netcfg_state *state = calloc(1, sizeof(*state));
	int ret;

	*out = NULL;
	if (!state)
		return kb_errorf(err, ENOMEM, "out of memory");
	ret = ifindex > 0 ? netcfg_link_get(nc, ifindex, &state->link, err) : 0;
	if (ret == 0)
		ret = dump(nc, RTM_GETADDR, sizeof(struct ifaddrmsg), read_addrs_cb, reset_addrs,
			   state, err, "dump IPv4 addresses");
	if (ret == 0)
		ret = dump(nc, RTM_GETROUTE, sizeof(struct rtmsg), read_routes_cb, reset_routes,
			   state, err, "dump IPv4 routes");
	if (ret == 0)
		ret = dump(nc, RTM_GETRULE, sizeof(struct fib_rule_hdr), read_rules_cb,
			   reset_rules, state, err, "dump IPv4 rules");
	if (ret < 0) {
		netcfg_state_free(state);
		return ret;
	}
	*out = state;
	return 0;
}

/* Texts. */

static const char *table_name(uint32_t table, char *buf, size_t len)
{
	if (table == RT_TABLE_MAIN)
		return "main";
	if (table == RT_TABLE_LOCAL)
		return "local";
	if (table == RT_TABLE_DEFAULT)
		return "default";
	snprintf(buf, len, "%u", table);
	return buf;
}

static const char *protocol_name(uint8_t protocol, char *buf, size_t len)
{
	switch (protocol) {
	case RTPROT_KERNEL:
		return "kernel";
	case RTPROT_BOOT:
		return "boot";
	case RTPROT_STATIC:
		return "static";
	case RTPROT_DHCP:
		return "dhcp";
	case RTPROT_RA:
		return "ra";
	default:
		snprintf(buf, len, "%u", protocol);
		return buf;
	}
}

static const char *type_prefix(uint8_t type)
{
	switch (type) {
	case RTN_UNICAST:
		return "";
	case RTN_LOCAL:
		return "local ";
	case RTN_BROADCAST:
		return "broadcast ";
	case RTN_BLACKHOLE:
		return "blackhole ";
	case RTN_UNREACHABLE:
		return "unreachable ";
	case RTN_PROHIBIT:
		return "prohibit ";
	default:
		return "(other type) ";
	}
}

static char *text_done(FILE *f, char **text)
{
	if (fclose(f) != 0) {
		free(*text);
		return NULL;
	}
	return *text;
}

char *netcfg_route_text(const struct netcfg_route *route, const char *ifname)
{
	char a[NETCFG_IP_STRLEN], b[16], c[16];
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fputs(type_prefix(route->type), f);
	if (route->dst_len == 0)
		fputs("default", f);
	else
		fprintf(f, "%s/%u", inet_ntop(AF_INET, &route->dst, a, sizeof(a)), route->dst_len);
	if (route->gateway.s_addr)
		fprintf(f, " via %s", inet_ntop(AF_INET, &route->gateway, a, sizeof(a)));
	if (route->oif && ifname)
		fprintf(f, " dev %s", ifname);
	else if (route->oif)
		fprintf(f, " dev #%d", route->oif);
	if (route->multipath)
		fputs(" (multipath)", f);
	fprintf(f, " table %s proto %s", table_name(route->table, b, sizeof(b)),
		protocol_name(route->protocol, c, sizeof(c)));
	if (route->scope == RT_SCOPE_LINK)
		fputs(" scope link", f);
	else if (route->scope == RT_SCOPE_HOST)
		fputs(" scope host", f);
	if (route->prefsrc.s_addr)
		fprintf(f, " src %s", inet_ntop(AF_INET, &route->prefsrc, a, sizeof(a)));
	if (route->metric)
		fprintf(f, " metric %u", route->metric);
	return text_done(f, &text);
}

char *netcfg_rule_text(const struct netcfg_rule *rule)
{
	char a[NETCFG_IP_STRLEN], b[16];
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fprintf(f, "priority %u: %s", rule->priority, rule->invert ? "not " : "");
	if (rule->src_len == 0)
		fputs("from all", f);
	else if (rule->src_len == 32)
		fprintf(f, "from %s", inet_ntop(AF_INET, &rule->src, a, sizeof(a)));
	else
		fprintf(f, "from %s/%u", inet_ntop(AF_INET, &rule->src, a, sizeof(a)),
			rule->src_len);
	if (rule->dst_len)
		fprintf(f, " to (a /%u prefix)", rule->dst_len);
	if (rule->other_selectors)
		fputs(" (with other selectors)", f);
	if (rule->action == FR_ACT_TO_TBL)
		fprintf(f, " lookup %s", table_name(rule->table, b, sizeof(b)));
	else
		fprintf(f, " action %u", rule->action);
	return text_done(f, &text);
}

static char *change_text(const struct netcfg_change *change, const char *ifname)
{
	char a[NETCFG_IP_STRLEN];
	char *inner = NULL;
	char *text = NULL;

	switch (change->kind) {
	case NETCFG_LINK_UP:
		if (asprintf(&text, "RTM_NEWLINK set %s up", ifname) < 0)
			text = NULL;
		return text;
	case NETCFG_ADDR_REPLACE:
		if (asprintf(&text, "RTM_NEWADDR replace %s/%u dev %s noprefixroute",
			     inet_ntop(AF_INET, &change->addr.local, a, sizeof(a)),
			     change->addr.prefix_len, ifname) < 0)
			text = NULL;
		return text;
	case NETCFG_ROUTE_REPLACE:
		inner = netcfg_route_text(&change->route, ifname);
		if (inner && asprintf(&text, "RTM_NEWROUTE replace %s", inner) < 0)
			text = NULL;
		break;
	case NETCFG_RULE_ADD:
		inner = netcfg_rule_text(&change->rule);
		if (inner && asprintf(&text, "RTM_NEWRULE create exclusive %s", inner) < 0)
			text = NULL;
		break;
	}
	free(inner);
	return text;
}

/* Comparing what is there with what is needed. */

bool netcfg_rule_is_from(const struct netcfg_rule *rule, struct in_addr ip, uint32_t table)
{
	return rule->action == FR_ACT_TO_TBL && !rule->invert && !rule->other_selectors &&
	       rule->src_len == 32 && rule->src.s_addr == ip.s_addr && rule->dst_len == 0 &&
	       rule->table == table;
}

void netcfg_change_list_free(struct netcfg_change_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i].text);
	free(list->items);
	free(list);
}

static int add_change(struct netcfg_change_list *list, const struct netcfg_change *change,
		      const char *ifname, struct kb_error *err)
{
	struct netcfg_change *slot = grow((void **)&list->items, &list->count, sizeof(*slot));

	if (!slot)
		return kb_errorf(err, ENOMEM, "out of memory");
	*slot = *change;
	slot->text = change_text(change, ifname);
	if (!slot->text) {
		list->count--;
		return kb_errorf(err, ENOMEM, "out of memory");
	}
	return 0;
}

static bool reserved_table(uint32_t table)
{
	return table == RT_TABLE_UNSPEC || table == RT_TABLE_DEFAULT || table == RT_TABLE_MAIN ||
	       table == RT_TABLE_LOCAL;
}

/* The kernel's own rules: local (0), main (32766), default (32767). */
static bool reserved_priority(uint32_t priority)
{
	return priority == 0 || priority == 32766 || priority == 32767;
}

static int check_conflicts(const struct netcfg_state *state, const struct netcfg_spec *spec,
			   struct kb_error *err)
{
	char *text = NULL;
	int ret = 0;

	if (reserved_table(spec->table))
		return kb_errorf(err, KB_ECONFIG, "route table %u is reserved by the kernel "
				 "(unspec, default, main, local): set route_table", spec->table);
	if (reserved_priority(spec->priority))
		return kb_errorf(err, KB_ECONFIG, "rule priority %u belongs to a kernel rule: "
				 "set rule_priority", spec->priority);
	for (size_t i = 0; i < state->rule_count && ret == 0; i++) {
		const struct netcfg_rule *rule = &state->rules[i];

		if (rule->priority != spec->priority ||
		    netcfg_rule_is_from(rule, spec->ip, spec->table))
			continue;
		text = netcfg_rule_text(rule);
		ret = kb_errorf(err, KB_ECONFIG, "another rule holds priority %u: %s; remove it "
				"or set rule_priority", spec->priority, text ? text : "?");
	}
	for (size_t i = 0; i < state->route_count && ret == 0; i++) {
		const struct netcfg_route *route = &state->routes[i];

		if (route->table != spec->table ||
		    (route->oif == spec->ifindex && !route->multipath))
			continue;
		text = netcfg_route_text(route, NULL);
		ret = kb_errorf(err, KB_ECONFIG, "route table %u is in use by another interface: "
				"%s; set route_table", spec->table, text ? text : "?");
	}
	free(text);
	return ret;
}

static bool has_addr(const struct netcfg_state *state, const struct netcfg_spec *spec)
{
	for (size_t i = 0; i < state->addr_count; i++) {
		if (state->addrs[i].ifindex == spec->ifindex &&
		    state->addrs[i].local.s_addr == spec->ip.s_addr)
			return true;
	}
	return false;
}

/* A route that forwards the same way counts, whoever added it (another manager's route may
 * lack our src or carry another protocol): replacing it would only start a fight. */
static bool has_route(const struct netcfg_state *state, const struct netcfg_route *want)
{
	for (size_t i = 0; i < state->route_count; i++) {
		const struct netcfg_route *r = &state->routes[i];

		if (r->table == want->table && r->type == RTN_UNICAST && !r->multipath &&
		    r->dst_len == want->dst_len && r->dst.s_addr == want->dst.s_addr &&
		    r->gateway.s_addr == want->gateway.s_addr && r->oif == want->oif)
			return true;
	}
	return false;
}

static bool has_rule(const struct netcfg_state *state, const struct netcfg_spec *spec)
{
	for (size_t i = 0; i < state->rule_count; i++) {
		if (state->rules[i].priority == spec->priority &&
		    netcfg_rule_is_from(&state->rules[i], spec->ip, spec->table))
			return true;
	}
	return false;
}

static void wanted_routes(const struct netcfg_spec *spec, struct netcfg_route *subnet,
			  struct netcfg_route *deflt)
{
	memset(subnet, 0, sizeof(*subnet));
	subnet->table = spec->table;
	subnet->dst.s_addr = spec->ip.s_addr & prefix_mask(spec->prefix_len);
	subnet->dst_len = spec->prefix_len;
	subnet->prefsrc = spec->ip;
	subnet->oif = spec->ifindex;
	subnet->scope = RT_SCOPE_LINK;
	/* What ip(8) sets when no protocol is given (iproute.c). */
	subnet->protocol = RTPROT_BOOT;
	subnet->type = RTN_UNICAST;
	*deflt = *subnet;
	deflt->dst.s_addr = 0;
	deflt->dst_len = 0;
	deflt->gateway = spec->router;
	deflt->prefsrc.s_addr = 0;
	deflt->scope = RT_SCOPE_UNIVERSE;
}

static int diff_changes(const struct netcfg_state *state, const struct netcfg_spec *spec,
			struct netcfg_change_list *list, struct kb_error *err)
{
	const char *ifname = state->link.name;
	struct netcfg_change change;
	struct netcfg_route routes[2];
	int ret = 0;

	memset(&change, 0, sizeof(change));
	if (!(state->link.flags & IFF_UP)) {
		change.kind = NETCFG_LINK_UP;
		change.ifindex = spec->ifindex;
		ret = add_change(list, &change, ifname, err);
	}
	if (ret == 0 && !has_addr(state, spec)) {
		memset(&change, 0, sizeof(change));
		change.kind = NETCFG_ADDR_REPLACE;
		change.ifindex = spec->ifindex;
		change.addr.ifindex = spec->ifindex;
		change.addr.local = spec->ip;
		change.addr.prefix_len = spec->prefix_len;
		change.addr.scope = RT_SCOPE_UNIVERSE;
		change.addr.flags = IFA_F_NOPREFIXROUTE;
		ret = add_change(list, &change, ifname, err);
	}
	wanted_routes(spec, &routes[0], &routes[1]);
	for (int i = 0; i < 2 && ret == 0; i++) {
		if (has_route(state, &routes[i]))
			continue;
		memset(&change, 0, sizeof(change));
		change.kind = NETCFG_ROUTE_REPLACE;
		change.ifindex = spec->ifindex;
		change.route = routes[i];
		ret = add_change(list, &change, ifname, err);
	}
	if (ret == 0 && !has_rule(state, spec)) {
		memset(&change, 0, sizeof(change));
		change.kind = NETCFG_RULE_ADD;
		change.ifindex = spec->ifindex;
		change.rule.priority = spec->priority;
		change.rule.table = spec->table;
		change.rule.action = FR_ACT_TO_TBL;
		change.rule.src = spec->ip;
		change.rule.src_len = 32;
		ret = add_change(list, &change, ifname, err);
	}
	return ret;
}

int netcfg_diff(const struct netcfg_state *state, const struct netcfg_spec *spec,
		struct netcfg_change_list **out, struct kb_error *err)
{
	struct netcfg_change_list *list;
	int ret;

	*out = NULL;
	if (state->link.ifindex != spec->ifindex)
		return kb_errorf(err, KB_EINTERNAL, "state of link #%d compared with link #%d",
				 state->link.ifindex, spec->ifindex);
	if (spec->prefix_len == 0 || spec->prefix_len > 30)
		return kb_errorf(err, EINVAL, "subnet prefix /%u cannot hold a VPC subnet "
				 "(EC2 subnets are /16 to /28)", spec->prefix_len);
	ret = check_conflicts(state, spec, err);
	if (ret < 0)
		return ret;
	list = calloc(1, sizeof(*list));
	if (!list)
		return kb_errorf(err, ENOMEM, "out of memory");
	ret = diff_changes(state, spec, list, err);
	if (ret < 0) {
		netcfg_change_list_free(list);
		return ret;
	}
	*out = list;
	return 0;
}

/* Making a change. Flags as iproute2's verbs: replace = CREATE|REPLACE (do_iproute), rule
 * add = CREATE|EXCL (do_iprule). */

static void put_link_up(struct nlmsghdr *nlh, const struct netcfg_change *change)
{
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

	nlh->nlmsg_type = RTM_NEWLINK;
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = change->ifindex;
	ifm->ifi_change = IFF_UP;
	ifm->ifi_flags = IFF_UP;
}

static void put_addr(struct nlmsghdr *nlh, const struct netcfg_addr *addr)
{
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = addr->prefix_len;
	ifa->ifa_scope = addr->scope;
	ifa->ifa_index = (uint32_t)addr->ifindex;
	/* ipaddress.c puts both for an address without a peer. */
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr->local), &addr->local);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr->local), &addr->local);
	/* noprefixroute: the subnet route goes to the ENI's own table, never to main, where
	 * it would compete with the primary interface's route to the same subnet. */
	mnl_attr_put_u32(nlh, IFA_FLAGS, addr->flags);
}

static void put_route(struct nlmsghdr *nlh, const struct netcfg_route *route)
{
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = route->dst_len;
	rtm->rtm_protocol = route->protocol;
	rtm->rtm_scope = route->scope;
	rtm->rtm_type = route->type;
	if (route->table < 256) {
		rtm->rtm_table = (uint8_t)route->table;
	} else {
		rtm->rtm_table = RT_TABLE_UNSPEC;
		mnl_attr_put_u32(nlh, RTA_TABLE, route->table);
	}
	if (route->dst_len)
		mnl_attr_put(nlh, RTA_DST, sizeof(route->dst), &route->dst);
	if (route->gateway.s_addr)
		mnl_attr_put(nlh, RTA_GATEWAY, sizeof(route->gateway), &route->gateway);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)route->oif);
	if (route->prefsrc.s_addr)
		mnl_attr_put(nlh, RTA_PREFSRC, sizeof(route->prefsrc), &route->prefsrc);
}

static void put_rule(struct nlmsghdr *nlh, const struct netcfg_rule *rule)
{
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

	nlh->nlmsg_type = RTM_NEWRULE;
	nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	frh->family = AF_INET;
	frh->src_len = rule->src_len;
	frh->action = rule->action;
	if (rule->table < 256) {
		frh->table = (uint8_t)rule->table;
	} else {
		frh->table = RT_TABLE_UNSPEC;
		mnl_attr_put_u32(nlh, FRA_TABLE, rule->table);
	}
	mnl_attr_put(nlh, FRA_SRC, sizeof(rule->src), &rule->src);
	/* Explicit: without it the kernel picks one, and no rerun could find the rule again. */
	mnl_attr_put_u32(nlh, FRA_PRIORITY, rule->priority);
}

/* EEXIST for a rule means the kernel found one it calls equal (Linux fib_rules.c
 * rule_exists); done only if ours is really there, else someone raced us to the priority. */
static int check_rule_exists(struct netcfg *nc, const struct netcfg_change *change,
			     struct kb_error *err)
{
	struct netcfg_state *state = calloc(1, sizeof(*state));
	struct netcfg_spec spec = {.ifindex = change->ifindex, .ip = change->rule.src,
				   .table = change->rule.table,
				   .priority = change->rule.priority};
	int ret;

	if (!state)
		return kb_errorf(err, ENOMEM, "out of memory");
	ret = dump(nc, RTM_GETRULE, sizeof(struct fib_rule_hdr), read_rules_cb, reset_rules,
		   state, err, "dump IPv4 rules");
	if (ret == 0 && !has_rule(state, &spec))
		ret = kb_errorf(err, KB_ECONFIG, "%s: the kernel has an equal rule, but not at "
				"priority %u", change->text, change->rule.priority);
	if (ret == 0)
		ret = check_conflicts(state, &spec, err);
	netcfg_state_free(state);
	return ret;
}

int netcfg_apply(struct netcfg *nc, const struct netcfg_change *change, struct kb_error *err)
{
	char req[NETCFG_REQ_SIZE];
	struct nlmsghdr *nlh = put_header(req, 0, NLM_F_ACK);
	struct kb_error first = {{0}};
	int ret;

	switch (change->kind) {
	case NETCFG_LINK_UP:
		put_link_up(nlh, change);
		break;
	case NETCFG_ADDR_REPLACE:
		put_addr(nlh, &change->addr);
		break;
	case NETCFG_ROUTE_REPLACE:
		put_route(nlh, &change->route);
		break;
	case NETCFG_RULE_ADD:
		put_rule(nlh, &change->rule);
		break;
	default:
		return kb_errorf(err, KB_EINTERNAL, "unknown netlink change %d", change->kind);
	}
	ret = request(nc, nlh, NULL, NULL, NULL, &first, change->text);
	if (ret == -EEXIST && change->kind == NETCFG_RULE_ADD)
		return check_rule_exists(nc, change, err);
	if (ret < 0)
		return kb_errorf(err, -ret, "%s", first.msg);
	return 0;
}
