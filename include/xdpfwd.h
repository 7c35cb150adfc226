/* SPDX-License-Identifier: GPL-2.0 */
/* Everything the datapath (bpf/) and the control plane (user/) both see.
 * Addresses and ports are kept in network byte order everywhere, as they
 * appear in packets, so the datapath never swaps bytes on the hot path.
 */
#ifndef XDPFWD_H
#define XDPFWD_H

#include <linux/types.h>

#define XDPFWD_VERSION "1.0.0"

/* bpffs layout: maps under maps/, links under links/, one lock file. */
#define XDPFWD_PIN_ROOT "/sys/fs/bpf/xdpfwd"

#define XDPFWD_MAX_RULES	4096
#define XDPFWD_MAX_FLOWS	131072	/* conntrack entries: two a connection */
#define XDPFWD_MAX_IFACES	256
#define XDPFWD_MAX_LOCAL_ADDRS	1024
#define XDPFWD_NAME_LEN		32

/* Rule match: a packet's (protocol, destination address, destination port).
 * ext_addr 0 means "any address of this host on the arriving interface". */
struct xdpfwd_rule_key {
	__u32 ext_addr;
	__u16 ext_port;
	__u8  proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8  pad;
};
_Static_assert(sizeof(struct xdpfwd_rule_key) == 8, "rule key layout");

/* Rule action and identity. The name lives here, not in a map of its own, so
 * that one map update makes a rule complete. */
struct xdpfwd_rule {
	__u32 int_addr;
	__u16 int_port;
	__u16 pad;
	__u32 id;		/* index into the per-rule counters */
	__u32 pad2;
	char  name[XDPFWD_NAME_LEN];
};
_Static_assert(sizeof(struct xdpfwd_rule) == 48, "rule layout");

/* Per-rule counters, one copy per CPU; the CLI sums them. */
struct xdpfwd_rule_stats {
	__u64 orig_packets;	/* client -> backend */
	__u64 orig_bytes;
	__u64 reply_packets;	/* backend -> client */
	__u64 reply_bytes;
};
_Static_assert(sizeof(struct xdpfwd_rule_stats) == 32, "stats layout");

/* A connection-table key: one direction of a connection, as it arrives. */
struct xdpfwd_flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8  proto;
	__u8  pad[3];
};
_Static_assert(sizeof(struct xdpfwd_flow_key) == 16, "flow key layout");

enum xdpfwd_dir {
	XDPFWD_DIR_ORIG  = 0,	/* client -> external address: DNAT */
	XDPFWD_DIR_REPLY = 1,	/* backend -> client: source back to external */
};

/* What a packet of this direction becomes: its whole tuple after NAT. */
struct xdpfwd_flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 rule_id;
	__u8  dir;		/* enum xdpfwd_dir */
	__u8  pad[7];
};
_Static_assert(sizeof(struct xdpfwd_flow) == 24, "flow layout");

/* Local address of an interface, for rules without an external address. */
struct xdpfwd_local_key {
	__u32 ifindex;
	__u32 addr;
};
_Static_assert(sizeof(struct xdpfwd_local_key) == 8, "local key layout");

/* Why a packet ended the way it did; one per-CPU counter each. Forwarding
 * comes first: the datapath's steps return 0 to mean "go on", and no step
 * ends a packet with XDPFWD_R_FWD_REDIRECT, only the last one does. */
enum xdpfwd_reason {
	XDPFWD_R_FWD_REDIRECT,		/* translated, redirected to egress */
	XDPFWD_R_FWD_TX,		/* translated, sent back out ingress */
	XDPFWD_R_PASS_NOT_IP,		/* not IPv4: kernel's business */
	XDPFWD_R_PASS_NO_MATCH,		/* no rule, no connection */
	XDPFWD_R_PASS_MALFORMED,	/* header truncated or inconsistent */
	XDPFWD_R_PASS_FRAGMENT,		/* IP fragment: kernel reassembles */
	XDPFWD_R_PASS_NO_NEIGH,		/* translated, kernel resolves neighbour */
	XDPFWD_R_PASS_SLOW_EGRESS,	/* translated, egress can't take XDP frames */
	XDPFWD_R_PASS_LOCAL,		/* translated, FIB says not forwarded (local) */
	XDPFWD_R_PASS_FIB_OTHER,	/* translated, FIB failed otherwise */
	XDPFWD_R_DROP_TTL,		/* TTL would reach 0 */
	XDPFWD_R_DROP_FIB,		/* FIB says blackhole/unreachable/prohibit */
	XDPFWD_R_DROP_CT_FULL,		/* connection table refused a new entry */
	XDPFWD_R_TC_XLATE,		/* TC egress translated a kernel-forwarded reply */
	XDPFWD_R_MAX,
};

/* Names the CLI prints for each reason, in enum order. */
#define XDPFWD_REASON_NAMES {						\
	"fwd_redirect", "fwd_tx", "pass_not_ip", "pass_no_match",	\
	"pass_malformed", "pass_fragment", "pass_no_neigh",		\
	"pass_slow_egress", "pass_local", "pass_fib_other", "drop_ttl",	\
	"drop_fib", "drop_ct_full", "tc_translated" }

#endif /* XDPFWD_H */
