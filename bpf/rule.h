/* SPDX-License-Identifier: GPL-2.0 */
/* Rules, consulted for a connection's first packet only: which rule a packet
 * opens a connection through, whether the rule admits its source, and the
 * tuple the connection's packets leave with. */
#ifndef XDPFWD_RULE_H
#define XDPFWD_RULE_H

#include "maps.h"
#include "fib.h"

/* What a new connection's original direction becomes; the source port of a
 * source-NATed one is chosen when it is entered (ct_create()). */
struct nat_plan {
	__be32 saddr;
	__be32 daddr;
	__be16 dport;
	bool snat;
};

/* rule_match - the rule for a first packet with @key, in the live rule set.
 * A rule without an external address serves only this host's own addresses
 * (any of them, so a LAN client reaches the WAN address too), never traffic
 * passing through. Returns the rule, or NULL when none applies. */
static __always_inline struct xdpfwd_rule *rule_match(const struct xdpfwd_flow_key *key)
{
	struct xdpfwd_rule_key rk = {
		.ext_addr = key->daddr,
		.ext_port = key->dport,
		.proto = key->proto,
	};
	struct xdpfwd_config *cfg;
	__u32 zero = 0, *id;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg)
		rk.set = cfg->rule_set & 1;
	id = bpf_map_lookup_elem(&rule_ports, &rk);

	if (!id) {
		rk.ext_addr = 0;
		id = bpf_map_lookup_elem(&rule_ports, &rk);
		if (!id || !bpf_map_lookup_elem(&local_addrs, &key->daddr))
			return NULL;
	}
	return bpf_map_lookup_elem(&rules, id);
}

/* rule_admits - whether @rule lets @saddr open connections; a refusal is
 * counted on the rule. */
static __always_inline bool rule_admits(const struct xdpfwd_rule *rule, __be32 saddr)
{
	struct xdpfwd_allow_key k = { .prefixlen = 64, .rule_id = rule->id, .addr = saddr };
	struct xdpfwd_rule_stats *st;
	__u32 id = rule->id;

	if (!(rule->flags & XDPFWD_RULE_F_ALLOW) || bpf_map_lookup_elem(&allow, &k))
		return true;
	st = bpf_map_lookup_elem(&rule_stats, &id);
	if (st)
		st->denied_packets++;
	return false;
}

/* backend_port - the port @dport (one of @rule's) maps to: the offset into
 * the range is kept. */
static __always_inline __be16 backend_port(const struct xdpfwd_rule *rule, __be16 dport)
{
	if (!rule->int_port)
		return dport;
	return bpf_htons(bpf_ntohs(rule->int_port) + bpf_ntohs(dport) - bpf_ntohs(rule->ext_port));
}

/* nat_plan - what the connection @key opens through @rule on @ingress becomes.
 * The source is NATed when the rule says so, and always when the backend is
 * reached back out the ingress (hairpin, one-arm): the backend would answer
 * the client directly otherwise. "Auto" and hairpin take the address the
 * route to the backend prefers. Returns 0, else the reason. */
static __always_inline int nat_plan(void *ctx, const struct xdpfwd_flow_key *key,
				    const struct xdpfwd_rule *rule, __u32 ingress,
				    struct nat_plan *plan)
{
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.l4_protocol = key->proto,
		.ipv4_dst = rule->int_addr,
		.ifindex = ingress,
	};
	bool fixed = (rule->flags & (XDPFWD_RULE_F_SNAT | XDPFWD_RULE_F_SNAT_AUTO)) ==
		     XDPFWD_RULE_F_SNAT;
	int rc;

	plan->daddr = rule->int_addr;
	plan->dport = backend_port(rule, key->dport);
	plan->saddr = fixed ? rule->snat_addr : key->saddr;
	plan->snat = fixed;
	if (fixed)
		return 0;
	rc = fib_lookup_fwd(ctx, &fib, BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (!(rule->flags & XDPFWD_RULE_F_SNAT) &&
	    (rc != BPF_FIB_LKUP_RET_SUCCESS || fib.ifindex != ingress))
		return 0;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDPFWD_R_DROP_SNAT_NO_ADDR;
	plan->saddr = fib.ipv4_src;
	plan->snat = true;
	return 0;
}

#endif /* XDPFWD_RULE_H */
