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

#define XDPFWD_MAX_RULES	16384	/* live rules and, during an apply, the new ones beside them */
/* External ports all rules together may cover: a range rule holds one entry
 * a port, so that a packet finds its rule in one hash lookup. */
#define XDPFWD_MAX_RULE_PORTS	(1 << 17)
#define XDPFWD_MAX_ALLOW	16384	/* allowlist CIDRs, all rules together */
#define XDPFWD_MAX_ALLOW_RULE	64	/* ... and of one rule */
/* Connections the established table holds unless `load --max-flows` says
 * otherwise; each takes two entries (one a direction). Connections not yet
 * answered wait in a table of their own, a quarter that size, so a flood of
 * them can only evict each other. */
#define XDPFWD_DEFAULT_MAX_FLOWS 65536
#define XDPFWD_MIN_FLOWS	1024
#define XDPFWD_MAX_FLOWS	(1 << 22)
#define XDPFWD_NEW_FLOWS(max)	((max) / 4 > XDPFWD_MIN_FLOWS ? (max) / 4 : XDPFWD_MIN_FLOWS)
#define XDPFWD_MAX_FRAGS	8192	/* datagrams being forwarded in fragments */
#define XDPFWD_FRAG_TIMEOUT	30	/* seconds, as the kernel's ipfrag_time */
#define XDPFWD_MAX_IFACES	256
#define XDPFWD_MAX_LOCAL_ADDRS	1024
#define XDPFWD_NAME_LEN		32

/* Rule match, one entry an external port: a packet's (destination address,
 * destination port, protocol) -> the rule's id. ext_addr 0 means "any
 * address of this host". Entries belong to one of two rule sets, so that a
 * whole new set can be entered beside the live one and take over at once. */
struct xdpfwd_rule_key {
	__u32 ext_addr;
	__u16 ext_port;
	__u8  proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8  set;		/* 0 or 1; xdpfwd_config.rule_set is the live one */
};
_Static_assert(sizeof(struct xdpfwd_rule_key) == 8, "rule key layout");

#define XDPFWD_RULE_F_SNAT	0x01	/* source NAT to snat_addr */
#define XDPFWD_RULE_F_SNAT_AUTO	0x02	/* with F_SNAT: to the egress interface's address */
#define XDPFWD_RULE_F_ALLOW	0x04	/* only sources on the rule's allowlist */

/* A rule, by id. The name lives here, not in a map of its own, so that one
 * map update makes a rule complete. A range of external ports maps onto a
 * range of backend ports of the same length, offset kept. */
struct xdpfwd_rule {
	__u32 ext_addr;		/* 0: any address of this host */
	__u16 ext_port;		/* the first external port */
	__u16 nports;		/* ports in the range, host order; 1 for one port */
	__u32 int_addr;
	__u16 int_port;		/* backend port of ext_port; 0: the external port */
	__u8  proto;
	__u8  flags;		/* XDPFWD_RULE_F_* */
	__u32 snat_addr;	/* with F_SNAT and not F_SNAT_AUTO */
	__u32 id;		/* key of rules, index into rule_stats and rule_gens */
	__u32 gen;		/* rule_gens[id] when the rule was made */
	__u32 pad;
	char  name[XDPFWD_NAME_LEN];
};
_Static_assert(sizeof(struct xdpfwd_rule) == 64, "rule layout");

/* An allowlist entry: a source CIDR one rule admits. An LPM trie key whose
 * first 32 bits (the rule id) always match in full. */
struct xdpfwd_allow_key {
	__u32 prefixlen;	/* 32 + the CIDR's length */
	__u32 rule_id;
	__u32 addr;
};
_Static_assert(sizeof(struct xdpfwd_allow_key) == 12, "allow key layout");

/* Per-rule counters, one copy per CPU; the CLI sums them. */
struct xdpfwd_rule_stats {
	__u64 orig_packets;	/* client -> backend */
	__u64 orig_bytes;
	__u64 reply_packets;	/* backend -> client */
	__u64 reply_bytes;
	__u64 denied_packets;	/* sources the allowlist refused */
};
_Static_assert(sizeof(struct xdpfwd_rule_stats) == 40, "stats layout");

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

/* Connection states. TCP follows netfilter's tracker without sequence
 * windows; UDP is unreplied until the backend answers. */
enum xdpfwd_ct_state {
	XDPFWD_CT_NONE,
	XDPFWD_CT_SYN_SENT,	/* client's SYN seen */
	XDPFWD_CT_SYN_RECV,	/* backend's SYN-ACK seen */
	XDPFWD_CT_ESTABLISHED,	/* handshake done, or picked up mid-stream */
	XDPFWD_CT_FIN_WAIT,	/* one side has sent FIN */
	XDPFWD_CT_LAST_ACK,	/* both have sent FIN; the last ACK is due */
	XDPFWD_CT_TIME_WAIT,	/* closed by FINs */
	XDPFWD_CT_CLOSE,	/* reset */
	XDPFWD_CT_UDP_UNREPLIED,
	XDPFWD_CT_UDP_REPLIED,
	XDPFWD_CT_STATE_MAX,
};

#define XDPFWD_CT_STATE_NAMES {						\
	"none", "syn_sent", "syn_recv", "established", "fin_wait",	\
	"last_ack", "time_wait", "close", "udp_unreplied", "udp_replied" }

/* Idle timeouts in seconds, index enum xdpfwd_ct_state: netfilter's
 * defaults (nf_conntrack_tcp_timeout_*, nf_conntrack_udp_timeout*). */
#define XDPFWD_CT_DEFAULT_TIMEOUTS {					\
	0, 120, 60, 432000, 120, 30, 120, 10, 30, 120 }

/* Flags of a connection, in its original-direction entry. */
#define XDPFWD_CT_F_SEEN_REPLY	0x01	/* the backend has answered */
#define XDPFWD_CT_F_ASSURED	0x02	/* lives in the established table */
#define XDPFWD_CT_F_FIN_ORIG	0x04	/* client sent FIN */
#define XDPFWD_CT_F_FIN_REPLY	0x08	/* backend sent FIN */
#define XDPFWD_CT_F_SNAT	0x10	/* source-NATed: the kernel cannot forward it */

/* Events of a connection already sent, so that two CPUs that see it close
 * at once (the last ACKs of both sides crossing) send one. */
#define XDPFWD_CT_TOLD_CLOSED	0x01

/* A connection-table entry, one a direction. Each holds what a packet of its
 * direction becomes (the whole tuple after NAT) and that direction's
 * counters and last packet; the original-direction entry also holds the
 * connection's state. The reply entry's key is the original entry's tuple
 * reversed, and the other way round, so either finds the other without
 * storing it. */
struct xdpfwd_flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 rule_id;
	__u32 rule_gen;		/* the rule's generation at creation */
	__u8  dir;		/* enum xdpfwd_dir */
	__u8  state;		/* enum xdpfwd_ct_state (original entry) */
	__u8  flags;		/* XDPFWD_CT_F_* (original entry) */
	__u8  told;		/* XDPFWD_CT_TOLD_* (original entry): set by an atomic OR
				 * of the 64-bit word from rule_gen on, never stored */
	__u64 created_ns;	/* CLOCK_MONOTONIC_COARSE (both entries) */
	__u64 seen_ns;		/* this direction's last packet; 0: none yet */
	__u64 packets;		/* this direction's */
	__u64 bytes;		/* IP bytes */
};
_Static_assert(sizeof(struct xdpfwd_flow) == 56, "flow layout");
_Static_assert(__builtin_offsetof(struct xdpfwd_flow, rule_gen) % 8 == 0, "told's word aligned");

/* The express cache: per CPU, a slot for each of XDPFWD_EXPRESS_SLOTS
 * hashes of a flow key, holding one direction of an established connection
 * as its packets need it: the tuple they take, where they go (the next hop
 * the route lookup gave), and what they have done since the slot was last
 * added to the connection's entry. A packet whose key is in its CPU's slot
 * takes no hash lookup, no route lookup and no tracker. The datapath fills
 * a slot from a packet that took the full path, and uses it for a second
 * (stamp); then the next packet takes the full path again, which adds the
 * slot's counts to the entry and looks the route up anew: a route or
 * neighbour change reaches established connections within a second. A
 * state change of the connection empties the slot on its CPU. */
#define XDPFWD_EXPRESS_SLOTS	8192	/* a power of two */
struct xdpfwd_express {
	struct xdpfwd_flow_key key;	/* proto 0: empty */
	__u32 saddr;		/* the tuple packets of the direction take */
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 rule_id;
	__u32 rule_gen;
	__u32 stamp;		/* ns >> 20 when the next hop was resolved; never 0 */
	__u32 ifindex;		/* egress */
	__u16 mtu;		/* the route's MTU: longer packets take the full path */
	__u8  dmac[6];
	__u8  smac[6];
	__u8  dir;		/* enum xdpfwd_dir */
	__u8  pad;
	__u64 packets;		/* not yet in the entry */
	__u64 bytes;
	__u64 seen_ns;		/* the last packet through the slot */
};
_Static_assert(sizeof(struct xdpfwd_express) == 88, "express layout");

/* xdpfwd_express_slot - the first of the two slots (this one and the one
 * next to it, index ^ 1) flow key @k may take in each CPU's express cache:
 * a multiplicative hash, cheap enough for every packet, computed alike by
 * the datapath and by the CLI reading pending counts. */
static inline __u32 xdpfwd_express_slot(const struct xdpfwd_flow_key *k)
{
	__u32 h = k->saddr * 0x9e3779b1u;

	h ^= k->daddr * 0x85ebca77u;
	h ^= ((__u32)k->sport << 16 | k->dport) * 0xc2b2ae3du;
	h ^= k->proto;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h & (XDPFWD_EXPRESS_SLOTS - 1);
}

/* The datagram a fragment belongs to, as it arrives (before NAT). */
struct xdpfwd_frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8  proto;
	__u8  pad;
};
_Static_assert(sizeof(struct xdpfwd_frag_key) == 12, "frag key layout");

/* The connection a fragmented datagram belongs to: the flow key its first
 * fragment had, and when that was seen. */
struct xdpfwd_frag {
	struct xdpfwd_flow_key flow;
	__u64 seen_ns;
};
_Static_assert(sizeof(struct xdpfwd_frag) == 24, "frag layout");

/* What loaded the running programs: the value of the pinned map "meta", one
 * entry, which the CLI makes and writes whenever it pins programs (the
 * datapath never reads it). */
struct xdpfwd_meta {
	char  version[16];	/* XDPFWD_VERSION of the CLI, NUL-terminated */
	__u64 build;		/* hash of the BPF object the programs came from */
};
_Static_assert(sizeof(struct xdpfwd_meta) == 24, "meta layout");

/* What the datapath tells `xdpfwd monitor` through the events ring: the
 * moments a user cannot see otherwise, since tcpdump on the router misses
 * what XDP forwards. Only a connection's start and end and a drop, never
 * an ordinary forwarded packet, so that the fast path pays nothing. */
enum xdpfwd_event_type {
	XDPFWD_EV_NEW = 1,	/* a connection was entered (its first packet) */
	XDPFWD_EV_CLOSED = 2,	/* a TCP connection reached time_wait or close */
	XDPFWD_EV_DROP = 3,	/* a packet ended in XDP_DROP */
};

/* Names the CLI prints for each type, by value. */
#define XDPFWD_EVENT_NAMES { "", "new", "closed", "drop" }

/* The ring's size. While nobody reads it, events beyond this are lost:
 * the datapath's reservation fails, and nothing counts them. */
#define XDPFWD_EVENTS_BYTES	(256 * 1024)

/* One event, a ring record. Fixed-width fields with the padding spelled
 * out, so that the layout is the same to the BPF compiler and to the CLI. */
struct xdpfwd_event {
	__u64 time_ns;		/* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */
	struct xdpfwd_flow_key key;	/* the client's tuple (DROP: the packet's) */
	__u32 rule_id;		/* NEW, CLOSED: the connection's rule */
	__u16 reason;		/* DROP: enum xdpfwd_reason */
	__u8  type;		/* enum xdpfwd_event_type */
	__u8  state;		/* CLOSED: enum xdpfwd_ct_state reached */
	__u32 ifindex;		/* where the packet behind the event arrived */
	__u32 pad;
};
_Static_assert(sizeof(struct xdpfwd_event) == 40, "event layout");

/* SNAT's source ports when the config gives none: below the kernel's default
 * ephemeral range (32768-60999), so as not to take a 4-tuple this host's
 * own connections to a backend may use. */
#define XDPFWD_SNAT_PORT_MIN	1024
#define XDPFWD_SNAT_PORT_MAX	32767

/* Settings the control plane writes once at creation and on request. */
struct xdpfwd_config {
	__u32 timeout[XDPFWD_CT_STATE_MAX];	/* seconds, by state */
	__u16 snat_port_min;	/* source ports SNAT chooses from, host order */
	__u16 snat_port_max;
	__u32 rule_set;		/* the rule set packets are matched against */
};
_Static_assert(sizeof(struct xdpfwd_config) == 48, "config layout");

/* Why a packet ended the way it did; one per-CPU counter each. Forwarding
 * comes first: the datapath's steps return 0 to mean "go on", and no step
 * ends a packet with XDPFWD_R_FWD_REDIRECT, only the last one does. */
enum xdpfwd_reason {
	XDPFWD_R_FWD_REDIRECT,		/* translated, redirected to egress */
	XDPFWD_R_FWD_TX,		/* translated, sent back out ingress */
	XDPFWD_R_ICMP_FRAG_NEEDED,	/* too big with DF: told the client */
	XDPFWD_R_ICMP_TIME_EXCEEDED,	/* TTL ran out: told the client */
	XDPFWD_R_PASS_NOT_IP,		/* not IPv4: kernel's business */
	XDPFWD_R_PASS_NO_MATCH,		/* no rule, no connection */
	XDPFWD_R_PASS_MALFORMED,	/* header truncated or inconsistent */
	XDPFWD_R_PASS_FRAG_UNMATCHED,	/* fragment of no datagram we forward */
	XDPFWD_R_PASS_CT_INVALID,	/* TCP reset of no connection */
	XDPFWD_R_PASS_NO_NEIGH,		/* translated, kernel resolves neighbour */
	XDPFWD_R_PASS_SLOW_EGRESS,	/* translated, egress can't take XDP frames */
	XDPFWD_R_PASS_LOCAL,		/* translated, FIB says not forwarded (local) */
	XDPFWD_R_PASS_TOO_BIG,		/* translated, kernel fragments it */
	XDPFWD_R_PASS_FIB_OTHER,	/* translated, FIB failed otherwise */
	XDPFWD_R_DROP_TTL,		/* TTL would reach 0 */
	XDPFWD_R_DROP_FIB,		/* FIB says blackhole/unreachable/prohibit */
	XDPFWD_R_DROP_CT_FULL,		/* connection table refused a new entry */
	XDPFWD_R_DROP_NO_ROOM,		/* no headroom to build an owed ICMP error */
	XDPFWD_R_DROP_DENIED,		/* source not on the rule's allowlist */
	XDPFWD_R_DROP_SNAT_NO_ADDR,	/* no route to the backend to take an address from */
	XDPFWD_R_DROP_SNAT_NO_PORT,	/* no free source port for SNAT */
	XDPFWD_R_TC_XLATE,		/* TC egress translated a kernel-forwarded packet */
	XDPFWD_R_TC_SENT,		/* TC ingress sent a source-NATed packet XDP could not */
	XDPFWD_R_DROP_TC_UNROUTABLE,	/* ... and could not route it either */
	XDPFWD_R_MAX,
};

/* Names the CLI prints for each reason, in enum order. */
#define XDPFWD_REASON_NAMES {						\
	"fwd_redirect", "fwd_tx", "icmp_frag_needed",			\
	"icmp_time_exceeded", "pass_not_ip", "pass_no_match",		\
	"pass_malformed", "pass_frag_unmatched", "pass_ct_invalid",	\
	"pass_no_neigh", "pass_slow_egress", "pass_local",		\
	"pass_too_big", "pass_fib_other", "drop_ttl", "drop_fib",	\
	"drop_ct_full", "drop_no_room", "drop_denied",			\
	"drop_snat_no_addr", "drop_snat_no_port", "tc_translated",	\
	"tc_sent", "drop_tc_unroutable" }

#endif /* XDPFWD_H */
