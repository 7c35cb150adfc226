// SPDX-License-Identifier: GPL-2.0
/* check: what a person would otherwise piece together from netstat, ip
 * route, ip neigh, sysctl and the counters, one line a finding, each saying
 * what to do. The host's findings come first (interfaces and their modes,
 * netfilter), then each rule's. Reads only: the pinned state, /proc and the
 * kernel's tables. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "netlink.h"
#include "output.h"

#define TCP_LISTEN	0x0a	/* "st" of a listening socket in /proc/net/tcp */
#define IFNAME_LEN	24	/* an interface name, or "ifindex N" */
#define MAX_SHADOWED	4	/* shadowed ports a rule reports one by one */
#define XDP_ACT_BASIC	1	/* NETDEV_XDP_ACT_BASIC: the driver runs XDP itself */
/* The kernel's NUD_VALID (net/neighbour.h, not uapi): a usable entry. */
#define NUD_USABLE	(NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | \
			 NUD_STALE | NUD_DELAY)

enum severity { SEV_OK, SEV_INFO, SEV_WARN, SEV_ERROR };

static const char *const severity_names[] = { "ok", "info", "warn", "error" };

/* A local socket that takes packets on a port: a listening TCP socket, or
 * any bound UDP socket. */
struct sock {
	__u32 addr;		/* network order; 0 when bound to every address */
	__u16 port;		/* host order */
	__u8 proto;
	bool v6_any;		/* an IPv6 socket on [::], which takes IPv4 too */
	unsigned long inode;
};

struct check {
	const struct state *st;
	__u32 loaded[XDPFWD_MAX_IFACES];
	int n_loaded;
	int ip_forward;		/* forwarding_enabled() */
	struct sock *socks;	/* sorted by protocol and port */
	int n_socks;
	int cap_socks;
	int errors;
	int warnings;
};

/* finding - one finding of rule @rule (NULL: of the host): a line of text,
 * or an object of the "findings" array. */
static void __attribute__((format(printf, 5, 6)))
finding(struct check *c, const char *rule, enum severity sev, const char *what,
	const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->errors += sev == SEV_ERROR;
	c->warnings += sev == SEV_WARN;
	out_open_object(NULL);
	if (rule)
		out_string("rule", "%s: ", rule);
	else
		out_null("rule", NULL, NULL);
	out_string("severity", "%s: ", severity_names[sev]);
	out_string("what", NULL, what);
	out_string("message", "%s\n", msg);
	out_close_object();
}

/* ifname - @ifindex's name, or "ifindex N" for one that is gone. */
static const char *ifname(__u32 ifindex, char *buf)
{
	if (!if_indextoname(ifindex, buf))
		snprintf(buf, IFNAME_LEN, "ifindex %u", ifindex);
	return buf;
}

static bool is_loaded(const struct check *c, __u32 ifindex)
{
	int i;

	for (i = 0; i < c->n_loaded; i++)
		if (c->loaded[i] == ifindex)
			return true;
	return false;
}

/* in_tx_ports - whether the datapath sends to @ifindex itself. */
static bool in_tx_ports(const struct check *c, __u32 ifindex)
{
	struct bpf_devmap_val val;

	return !bpf_map_lookup_elem(c->st->map_fd[MAP_TX_PORTS], &ifindex, &val);
}

static bool is_local_addr(const struct check *c, __u32 addr)
{
	__u32 ifindex;

	return !bpf_map_lookup_elem(c->st->map_fd[MAP_LOCAL_ADDRS], &addr, &ifindex);
}

/* ---------------------------------------------------------------- sockets */

/* parse_sock - a line of /proc/net/{tcp,udp}{,6} into @s. False for the
 * header, a TCP socket that does not listen, and an IPv6-only address. */
static bool parse_sock(const char *line, __u8 proto, bool v6, struct sock *s)
{
	unsigned int a[4] = {}, port, state;
	int n;

	if (v6)
		n = sscanf(line, " %*s %8x%8x%8x%8x:%4x %*s %2x %*s %*s %*s %*s %*s %lu",
			   &a[0], &a[1], &a[2], &a[3], &port, &state, &s->inode);
	else
		n = sscanf(line, " %*s %8x:%4x %*s %2x %*s %*s %*s %*s %*s %lu",
			   &a[3], &port, &state, &s->inode);
	if (n != (v6 ? 7 : 4) || (proto == IPPROTO_TCP && state != TCP_LISTEN))
		return false;
	/* The table prints each 32-bit word of the address as it lies in
	 * memory, so a word read back is in network order already. Of IPv6
	 * addresses only [::] and v4-mapped ones take IPv4. */
	if (v6 && (a[0] || a[1] || (a[2] != htonl(0xffff) && (a[2] || a[3]))))
		return false;
	s->addr = a[3];
	s->v6_any = v6 && !a[3];
	s->port = port;
	s->proto = proto;
	return true;
}

/* read_socks - append the sockets of the table @path to c->socks. Returns
 * 0 or -errno. */
static int read_socks(struct check *c, const char *path, __u8 proto, bool v6)
{
	struct sock s, *grown;
	char line[512];
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!parse_sock(line, proto, v6, &s))
			continue;
		if (c->n_socks == c->cap_socks) {
			c->cap_socks = c->cap_socks ? 2 * c->cap_socks : 64;
			grown = realloc(c->socks, c->cap_socks * sizeof(*grown));
			if (!grown) {
				fclose(f);
				return -ENOMEM;
			}
			c->socks = grown;
		}
		c->socks[c->n_socks++] = s;
	}
	fclose(f);
	return 0;
}

static int by_port(const void *a, const void *b)
{
	const struct sock *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto - y->proto;
	return x->port - y->port;
}

/* read_all_socks - this network namespace's sockets that take packets, as
 * netstat -ltun shows them. A host without IPv6 has no tcp6 and udp6. */
static void read_all_socks(struct check *c)
{
	static const struct {
		const char *path;
		__u8 proto;
		bool v6;
	} tables[] = {
		{ "/proc/net/tcp", IPPROTO_TCP, false },
		{ "/proc/net/udp", IPPROTO_UDP, false },
		{ "/proc/net/tcp6", IPPROTO_TCP, true },
		{ "/proc/net/udp6", IPPROTO_UDP, true },
	};
	size_t i;
	int err;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		err = read_socks(c, tables[i].path, tables[i].proto, tables[i].v6);
		if (err && !(tables[i].v6 && err == -ENOENT))
			finding(c, NULL, SEV_WARN, "shadowed",
				"cannot read %s (%s): local sockets the forwards would shadow are not checked",
				tables[i].path, strerror(-err));
	}
	qsort(c->socks, c->n_socks, sizeof(*c->socks), by_port);
}

/* socket_owner - a process holding the socket of @inode: its pid, with its
 * name in @comm; 0 when none is seen (another user's, without root). */
static int socket_owner(unsigned long inode, char *comm, size_t len)
{
	char path[PATH_MAX], link[64], want[32];
	struct dirent *p, *fd;
	DIR *proc, *fds;
	ssize_t n;
	int pid = 0;
	FILE *f;

	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	proc = inode ? opendir("/proc") : NULL;
	while (proc && !pid && (p = readdir(proc))) {
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		while (fds && !pid && (fd = readdir(fds))) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s", p->d_name, fd->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n > 0 && (size_t)n == strlen(want) && !memcmp(link, want, n))
				pid = atoi(p->d_name);
		}
		if (fds)
			closedir(fds);
	}
	if (proc)
		closedir(proc);
	snprintf(comm, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = pid ? fopen(path, "r") : NULL;
	if (f) {
		if (fgets(comm, len, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	return pid;
}

/* sock_covered - whether @s takes packets that rule @r claims. */
static bool sock_covered(const struct check *c, const struct xdpfwd_rule *r,
			 const struct sock *s)
{
	__u32 first = ntohs(r->ext_port);

	if (s->proto != r->proto || s->port < first || s->port >= first + r->nports)
		return false;
	if (!s->addr)
		return true;
	return r->ext_addr ? s->addr == r->ext_addr : is_local_addr(c, s->addr);
}

/* report_shadowed - the finding for the port of socket @s. */
static void report_shadowed(struct check *c, const struct xdpfwd_rule *r, const struct sock *s)
{
	bool tcp = r->proto == IPPROTO_TCP;
	char who[64], comm[32];
	int pid;

	pid = socket_owner(s->inode, comm, sizeof(comm));
	if (pid)
		snprintf(who, sizeof(who), "pid %d %s", pid, comm);
	else
		snprintf(who, sizeof(who), "pid unknown");
	finding(c, r->name, SEV_WARN, "shadowed",
		"port %u/%s is also a %s socket here (%s%s): the forward takes its %s; move the service or the forward",
		s->port, proto_str(r->proto), tcp ? "listening" : "bound", who,
		s->v6_any ? ", on [::], which takes IPv4 too" : "",
		tcp ? "connections" : "datagrams");
}

/* check_shadowed - local sockets on the rule's external ports, which the
 * forward takes every packet from. One finding a port. */
static void check_shadowed(struct check *c, const struct xdpfwd_rule *r)
{
	int i, n = 0, last = -1;

	for (i = 0; i < c->n_socks; i++) {
		if (!sock_covered(c, r, &c->socks[i]) || c->socks[i].port == last)
			continue;
		last = c->socks[i].port;
		if (n++ < MAX_SHADOWED)
			report_shadowed(c, r, &c->socks[i]);
	}
	if (n > MAX_SHADOWED)
		finding(c, r->name, SEV_WARN, "shadowed",
			"%d more of its ports are local sockets too: see 'ss -%s'",
			n - MAX_SHADOWED, r->proto == IPPROTO_TCP ? "ltnp" : "lunp");
}

/* ---------------------------------------------------------------- backend */

static const char *route_type_name(__u8 type)
{
	switch (type) {
	case RTN_BLACKHOLE:	return "blackhole";
	case RTN_UNREACHABLE:	return "unreachable";
	case RTN_PROHIBIT:	return "prohibit";
	case RTN_BROADCAST:	return "broadcast";
	case RTN_MULTICAST:	return "multicast";
	default:		return "not unicast";
	}
}

/* check_route - how the kernel routes to @r's backend. Returns true, with
 * @rt, when it sends packets there out of an interface. */
static bool check_route(struct check *c, const struct xdpfwd_rule *r, struct nl_route *rt)
{
	char b[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], dev[IFNAME_LEN];
	int err = nl_route_get(r->int_addr, rt);

	addr_str(r->int_addr, b);
	if (err == -ENETUNREACH || err == -EHOSTUNREACH) {
		finding(c, r->name, SEV_ERROR, "route",
			"backend %s has no route from this host: add a route, or fix the rule with 'xdpfwd replace'",
			b);
	} else if (err) {
		finding(c, r->name, SEV_WARN, "route", "cannot ask the kernel for the route to backend %s: %s",
			b, strerror(-err));
	} else if (rt->type == RTN_LOCAL) {
		finding(c, r->name, SEV_ERROR, "route",
			"backend %s is an address of this host: forwarding to this host's own address is not supported: use a socket proxy or a local port",
			b);
	} else if (rt->type != RTN_UNICAST || !rt->oif) {
		finding(c, r->name, SEV_ERROR, "route",
			"the route to backend %s is %s: packets to it cannot be forwarded; change the route, or fix the rule with 'xdpfwd replace'",
			b, route_type_name(rt->type));
	} else if (rt->nexthop == r->int_addr) {
		finding(c, r->name, SEV_INFO, "route", "backend %s on %s (directly connected)", b,
			ifname(rt->oif, dev));
		return true;
	} else {
		finding(c, r->name, SEV_INFO, "route", "backend %s via %s (next hop %s)", b,
			ifname(rt->oif, dev), addr_str(rt->nexthop, h));
		return true;
	}
	return false;
}

static const char *nud_name(__u16 state)
{
	return state & NUD_REACHABLE ? "reachable" : state & NUD_STALE ? "stale" :
	       state & NUD_DELAY ? "delay" : state & NUD_PROBE ? "probe" :
	       state & NUD_PERMANENT ? "permanent" : "noarp";
}

/* check_neighbour - whether the next hop toward @r's backend answers ARP. */
static void check_neighbour(struct check *c, const struct xdpfwd_rule *r, const struct nl_route *rt)
{
	char b[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], who[64], dev[IFNAME_LEN];
	__u16 state;
	int err;

	addr_str(r->int_addr, b);
	if (rt->nexthop == r->int_addr)
		snprintf(who, sizeof(who), "backend %s", b);
	else
		snprintf(who, sizeof(who), "next hop %s (to backend %s)", addr_str(rt->nexthop, h), b);
	ifname(rt->oif, dev);
	err = nl_neigh_state(rt->oif, rt->nexthop, &state);
	if (err)
		finding(c, r->name, SEV_WARN, "neighbour", "cannot read the neighbour table for %s: %s",
			who, strerror(-err));
	else if (state & (NUD_FAILED | NUD_INCOMPLETE))
		finding(c, r->name, SEV_ERROR, "neighbour", "%s does not answer ARP on %s: is it up?",
			who, dev);
	else if (state & NUD_USABLE)
		finding(c, r->name, SEV_OK, "neighbour", "%s is resolved on %s (%s)", who, dev,
			nud_name(state));
	else
		finding(c, r->name, SEV_WARN, "neighbour",
			"%s is not resolved on %s yet; the first packets take the kernel path", who, dev);
}

/* check_facing - whether XDP sees what comes back from the backend's side:
 * replies to a SNAT address come to this host, and only XDP turns them
 * back; other replies the kernel can forward. */
static void check_facing(struct check *c, const struct xdpfwd_rule *r, __u32 oif)
{
	bool snat = r->flags & XDPFWD_RULE_F_SNAT;
	char dev[IFNAME_LEN];

	ifname(oif, dev);
	if (is_loaded(c, oif))
		finding(c, r->name, SEV_OK, "iface", "%s, facing the backend, is loaded: XDP translates the replies",
			dev);
	else if (snat)
		finding(c, r->name, SEV_ERROR, "iface",
			"%s, facing the backend, is not loaded: the replies, addressed to this host by SNAT, would never be translated; run 'xdpfwd load %s'",
			dev, dev);
	else if (c->ip_forward == 1)
		finding(c, r->name, SEV_INFO, "iface",
			"%s, facing the backend, is not loaded: the kernel forwards the replies and the TC egress program translates them ('xdpfwd load %s' for the fast path)",
			dev, dev);
	else
		finding(c, r->name, SEV_ERROR, "iface",
			"%s, facing the backend, is not loaded: the replies need the kernel to forward them, but net.ipv4.ip_forward is 0: run 'xdpfwd load %s', or sysctl -w net.ipv4.ip_forward=1",
			dev, dev);
}

/* loaded_names - " IFACE..." of the loaded interfaces, for advice. */
static const char *loaded_names(const struct check *c, char *buf, size_t len)
{
	char dev[IFNAME_LEN];
	int i;

	*buf = '\0';
	for (i = 0; i < c->n_loaded; i++)
		if (if_indextoname(c->loaded[i], dev) && strlen(buf) + strlen(dev) + 2 < len)
			strcat(strcat(buf, " "), dev);
	return buf;
}

/* check_forwarding - whether packets toward the backend leave by XDP, or
 * take the kernel path and then get through it. Source-NATed ones XDP
 * cannot send are sent by our TC ingress program, without the kernel's
 * forwarding; the others need it. */
static void check_forwarding(struct check *c, const struct xdpfwd_rule *r, __u32 oif)
{
	bool snat = r->flags & XDPFWD_RULE_F_SNAT, mapped = in_tx_ports(c, oif);
	char dev[IFNAME_LEN], names[256];

	ifname(oif, dev);
	if (mapped && xdp_egress_ok(oif))
		finding(c, r->name, SEV_OK, "forwarding", "XDP sends packets to %s itself", dev);
	else if (mapped)
		finding(c, r->name, SEV_ERROR, "forwarding",
			"XDP sends packets to %s, which stopped taking XDP frames since load (GRO off on its peer?): they are lost; run 'xdpfwd load%s' again, or 'ethtool -K PEER gro on' on its peer",
			dev, loaded_names(c, names, sizeof(names)));
	else if (!snat && c->ip_forward != 1)
		finding(c, r->name, SEV_ERROR, "forwarding",
			"packets to %s take the kernel path but net.ipv4.ip_forward is 0: sysctl -w net.ipv4.ip_forward=1, or turn GRO on on %s's peer ('ethtool -K PEER gro on', then 'xdpfwd load%s' again)",
			dev, dev, loaded_names(c, names, sizeof(names)));
	else
		finding(c, r->name, SEV_INFO, "forwarding",
			"%s cannot take XDP frames: packets to it take the slower kernel path; for the fast path run 'ethtool -K PEER gro on' on its peer, then 'xdpfwd load%s' again",
			dev, loaded_names(c, names, sizeof(names)));
}

/* check_snat - a fixed SNAT address the backend's replies can reach. */
static void check_snat(struct check *c, const struct xdpfwd_rule *r)
{
	char a[INET_ADDRSTRLEN];

	if ((r->flags & XDPFWD_RULE_F_SNAT) && !(r->flags & XDPFWD_RULE_F_SNAT_AUTO) &&
	    !is_local_addr(c, r->snat_addr))
		finding(c, r->name, SEV_WARN, "snat",
			"SNAT address %s is not an address of this host: the backend's replies to it must be routed here, or use --snat auto",
			addr_str(r->snat_addr, a));
}

/* check_traffic - what the rule's counters say about it. */
static void check_traffic(struct check *c, const struct xdpfwd_rule *r)
{
	struct xdpfwd_rule_stats sum;
	char ports[16];
	int err;

	err = rule_stats_read(c->st, r->id, &sum);
	format_ports(ports, sizeof(ports), rule_backend_port(r), r->nports);
	if (err)
		finding(c, r->name, SEV_WARN, "traffic", "cannot read the rule's counters: %s",
			strerror(-err));
	else if (!sum.orig_packets)
		finding(c, r->name, SEV_INFO, "traffic", "no traffic yet");
	else if (!sum.reply_packets)
		finding(c, r->name, SEV_WARN, "traffic",
			"the backend never answered (%llu packets sent to it): check it listens on %s/%s, and that its replies come back through this host (or use --snat auto)",
			(unsigned long long)sum.orig_packets, ports, proto_str(r->proto));
	else
		finding(c, r->name, SEV_OK, "traffic", "%llu packets forwarded, %llu answered",
			(unsigned long long)sum.orig_packets, (unsigned long long)sum.reply_packets);
	if (!err && sum.denied_packets)
		finding(c, r->name, SEV_INFO, "traffic",
			"%llu packets from sources outside the allowlist were dropped",
			(unsigned long long)sum.denied_packets);
}

/* check_rule - every finding of one rule. */
static void check_rule(struct check *c, const struct xdpfwd_rule *r)
{
	struct nl_route rt;

	check_shadowed(c, r);
	if (check_route(c, r, &rt)) {
		check_neighbour(c, r, &rt);
		check_facing(c, r, rt.oif);
		check_forwarding(c, r, rt.oif);
	}
	check_snat(c, r);
	check_traffic(c, r);
}

/* ---------------------------------------------------------------- host */

/* check_mode - the XDP mode of loaded interface @dev. */
static void check_mode(struct check *c, __u32 ifindex, const char *dev)
{
	__u64 features;

	if (attached_mode(ifindex) != MODE_GENERIC)
		finding(c, NULL, SEV_OK, "mode", "%s runs XDP in native mode", dev);
	else if (!nl_xdp_features(ifindex, &features) && (features & XDP_ACT_BASIC))
		finding(c, NULL, SEV_WARN, "mode",
			"%s runs XDP in generic mode, which is slower, though its driver has native XDP: 'xdpfwd unload %s', then 'xdpfwd load %s --mode native'",
			dev, dev, dev);
	else
		finding(c, NULL, SEV_WARN, "mode",
			"%s runs XDP in generic mode: generic mode is slower; the driver has no native XDP",
			dev);
}

/* check_egress - whether loaded interface @dev takes XDP frames, and
 * whether the datapath knows it as it is now. */
static void check_egress(struct check *c, __u32 ifindex, const char *dev)
{
	bool live = xdp_egress_ok(ifindex), mapped = in_tx_ports(c, ifindex);

	if (!live && mapped)
		finding(c, NULL, SEV_WARN, "egress",
			"%s stopped taking XDP frames since load (a veth whose peer has neither GRO nor an XDP program): XDP still sends to it and those frames are lost; run 'ethtool -K PEER gro on' on its peer, or 'xdpfwd load %s' again to send them through the kernel",
			dev, dev);
	else if (!live)
		finding(c, NULL, SEV_WARN, "egress",
			"%s cannot take XDP frames (a veth whose peer has neither GRO nor an XDP program): packets to it take the kernel path%s; for the fast path run 'ethtool -K PEER gro on' on its peer, then 'xdpfwd load %s' again",
			dev, c->ip_forward == 1 ? "" : ", which needs net.ipv4.ip_forward=1 for rules without SNAT",
			dev);
	else if (!mapped)
		finding(c, NULL, SEV_INFO, "egress",
			"%s takes XDP frames now, but xdpfwd still hands packets for it to the kernel: run 'xdpfwd load %s' again for the fast path",
			dev, dev);
}

/* check_host - the interfaces xdpfwd runs on, and what holds for every rule. */
static void check_host(struct check *c)
{
	char dev[IFNAME_LEN];
	int i;

	if (!c->n_loaded)
		finding(c, NULL, SEV_ERROR, "loaded",
			"no interface is loaded: run 'xdpfwd load IFACE...' with the interfaces clients and backends are reached by");
	for (i = 0; i < c->n_loaded; i++) {
		if (!if_indextoname(c->loaded[i], dev)) {
			finding(c, NULL, SEV_WARN, "loaded",
				"ifindex %u, loaded earlier, no longer exists; its pin stays until 'xdpfwd unload --all'",
				c->loaded[i]);
			continue;
		}
		check_mode(c, c->loaded[i], dev);
		check_egress(c, c->loaded[i], dev);
	}
	finding(c, NULL, SEV_INFO, "netfilter",
		"xdpfwd runs before netfilter: iptables/nftables rules do not see forwarded traffic; restrict sources with --allow");
}

/* find_rule_named - the index of the rule named @name, or -1. */
static int find_rule_named(const struct xdpfwd_rule *rules, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(rules[i].name, name))
			return i;
	return -1;
}

/* run_checks - every finding: the host's, then those of each rule (only
 * the one named @name, when given). */
static void run_checks(struct check *c, const struct xdpfwd_rule *rules, int n, const char *name)
{
	int i;

	if (!state_exists(c->st)) {
		finding(c, NULL, SEV_ERROR, "loaded", "xdpfwd is not loaded (no state in %s): run 'xdpfwd load IFACE' first",
			c->st->pin_dir);
		return;
	}
	c->n_loaded = loaded_ifindexes(c->st, c->loaded, XDPFWD_MAX_IFACES);
	c->ip_forward = forwarding_enabled();
	check_host(c);
	read_all_socks(c);
	for (i = 0; i < n; i++)
		if (!name || !strcmp(rules[i].name, name))
			check_rule(c, &rules[i]);
}

int do_check(int argc, char **argv)
{
	struct xdpfwd_rule *rules = NULL;
	const char *name = NULL;
	struct check c = {};
	struct state st;
	int err, n = 0;

	if (argc == 2 && !strcmp(argv[0], "--name")) {
		name = argv[1];
		err = check_name(name);
		if (err)
			return err;
	} else if (argc) {
		return errorf(EXIT_USAGE, "usage: xdpfwd check [--name RULE]");
	}
	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	if (state_exists(&st)) {
		n = rules_read(st.map_fd[MAP_RULES], &rules);
		if (n < 0) {
			err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-n));
			goto out;
		}
		if (name && find_rule_named(rules, n, name) < 0) {
			err = errorf(EXIT_USAGE, "no rule named '%s' (see 'xdpfwd list')", name);
			goto out;
		}
	}
	c.st = &st;
	out_open_object(NULL);
	out_open_array("findings");
	run_checks(&c, rules, n, name);
	out_close_array();
	out_u64("errors", "%llu error", c.errors);
	out_text("%s, %d warning%s\n", c.errors == 1 ? "" : "s", c.warnings,
		 c.warnings == 1 ? "" : "s");
	out_close_object();
	err = c.errors ? EXIT_FAIL : EXIT_OK;
out:
	free(c.socks);
	free(rules);
	state_close(&st, false);
	return err;
}
