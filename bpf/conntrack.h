/* SPDX-License-Identifier: GPL-2.0 */
/* Connection table: one entry a direction, each holding the tuple a packet of
 * that direction becomes. Rules are consulted only for the first packet. */
#ifndef XDPFWD_CONNTRACK_H
#define XDPFWD_CONNTRACK_H

#include "maps.h"
#include "parse.h"

/* rule_match - the rule for a first packet arriving on @ifindex.
 * Returns the rule, or NULL when none applies. */
static __always_inline struct xdpfwd_rule *
rule_match(const struct xdpfwd_flow_key *key, __u32 ifindex)
{
	struct xdpfwd_rule_key rk = {
		.ext_addr = key->daddr,
		.ext_port = key->dport,
		.proto = key->proto,
	};
	struct xdpfwd_local_key lk = { .ifindex = ifindex, .addr = key->daddr };
	struct xdpfwd_rule *rule;

	rule = bpf_map_lookup_elem(&rules, &rk);
	if (rule)
		return rule;
	/* A rule without an external address serves only this host's own
	 * addresses on the arriving interface, never traffic passing through. */
	rk.ext_addr = 0;
	rule = bpf_map_lookup_elem(&rules, &rk);
	if (rule && !bpf_map_lookup_elem(&local_addrs, &lk))
		return NULL;
	return rule;
}

/* ct_create - enter both directions of a new connection through @rule.
 * Returns the original-direction entry, or NULL when the table refused it. */
static __always_inline struct xdpfwd_flow *
ct_create(const struct xdpfwd_flow_key *key, const struct xdpfwd_rule *rule)
{
	struct xdpfwd_flow_key reply_key = {
		.saddr = rule->int_addr,
		.daddr = key->saddr,
		.sport = rule->int_port,
		.dport = key->sport,
		.proto = key->proto,
	};
	struct xdpfwd_flow reply = {
		.saddr = key->daddr,
		.daddr = key->saddr,
		.sport = key->dport,
		.dport = key->sport,
		.rule_id = rule->id,
		.dir = XDPFWD_DIR_REPLY,
	};
	struct xdpfwd_flow orig = {
		.saddr = key->saddr,
		.daddr = rule->int_addr,
		.sport = key->sport,
		.dport = rule->int_port,
		.rule_id = rule->id,
		.dir = XDPFWD_DIR_ORIG,
	};

	/* Reply first: once the original entry is visible, replies must be
	 * translatable. */
	if (bpf_map_update_elem(&flows, &reply_key, &reply, BPF_ANY))
		return NULL;
	if (bpf_map_update_elem(&flows, key, &orig, BPF_ANY))
		return NULL;
	return bpf_map_lookup_elem(&flows, key);
}

/* ct_lookup - the connection entry for @key, created from a rule when the
 * packet opens a new connection. Returns the entry or NULL; *reason is set
 * when the packet is not ours or could not be entered. */
static __always_inline struct xdpfwd_flow *
ct_lookup(const struct xdpfwd_flow_key *key, __u32 ifindex, int *reason)
{
	struct xdpfwd_flow *flow;
	struct xdpfwd_rule *rule;

	flow = bpf_map_lookup_elem(&flows, key);
	if (flow)
		return flow;
	rule = rule_match(key, ifindex);
	if (!rule) {
		*reason = XDPFWD_R_PASS_NO_MATCH;
		return NULL;
	}
	flow = ct_create(key, rule);
	if (!flow)
		*reason = XDPFWD_R_DROP_CT_FULL;
	return flow;
}

/* ct_count - add one packet of @bytes to the rule's counters for its direction. */
static __always_inline void ct_count(const struct xdpfwd_flow *flow, __u64 packets,
				     __u64 bytes)
{
	struct xdpfwd_rule_stats *st;
	__u32 id = flow->rule_id;

	st = bpf_map_lookup_elem(&rule_stats, &id);
	if (!st)
		return;
	if (flow->dir == XDPFWD_DIR_ORIG) {
		st->orig_packets += packets;
		st->orig_bytes += bytes;
	} else {
		st->reply_packets += packets;
		st->reply_bytes += bytes;
	}
}

#endif /* XDPFWD_CONNTRACK_H */
