/* SPDX-License-Identifier: GPL-2.0 */
/* Forwarding a translated packet ourselves: FIB lookup, Ethernet rewrite,
 * TTL, then a devmap redirect (back out the ingress too). Whatever we cannot
 * send ourselves goes to the kernel already translated, never to a local
 * socket untranslated. */
#ifndef XDPFWD_FORWARD_H
#define XDPFWD_FORWARD_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "nat.h"
#include "fib.h"

/* fib_reason - the PASS or DROP reason for a FIB result other than success. */
static __always_inline int fib_reason(int rc)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return XDPFWD_R_PASS_NO_NEIGH;
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return XDPFWD_R_PASS_LOCAL;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return XDPFWD_R_PASS_TOO_BIG;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return XDPFWD_R_DROP_FIB;
	default:
		return XDPFWD_R_PASS_FIB_OTHER;
	}
}

/* egress_ok - can @ifindex take frames from XDP? It can when the control
 * plane put it in tx_ports; this also arms the redirect. Frames going back
 * out the ingress take the devmap too, not XDP_TX: a veth hands XDP_TX
 * frames to its peer only once the peer runs an XDP program of its own,
 * while a redirect is flushed to a peer that merely has GRO on. */
static __always_inline bool egress_ok(__u32 ifindex)
{
	return bpf_redirect_map(&tx_ports, ifindex, XDP_PASS) == XDP_REDIRECT;
}

/* route - where the packet that came in on @ingress goes once it has the
 * tuple @to: FIB lookup,
 * TTL and egress checks; arms the redirect. Fills @fib with the next hop
 * (or, when too big, the MTU). Returns the XDP verdict; *reason says why. */
static __always_inline int route(struct xdp_md *ctx, __u32 ingress, const struct packet *p,
				 const struct nat_tuple *to,
				 struct bpf_fib_lookup *fib, int *reason)
{
	bool ports = !pkt_icmp_err(p);
	int rc;

	*fib = (struct bpf_fib_lookup){
		.family = AF_INET,
		.tos = p->ip->tos,
		.l4_protocol = p->ip->protocol,
		.sport = ports ? to->sport : 0,
		.dport = ports ? to->dport : 0,
		.tot_len = bpf_ntohs(p->ip->tot_len),
		.ifindex = ingress,
	};
	out_addrs(p, to, &fib->ipv4_src, &fib->ipv4_dst);
	rc = fib_lookup_fwd(ctx, fib, 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		*reason = fib_reason(rc);
		return *reason == XDPFWD_R_DROP_FIB ? XDP_DROP : XDP_PASS;
	}
	if (p->ip->ttl <= 1) {
		*reason = XDPFWD_R_DROP_TTL;
		return XDP_DROP;
	}
	if (!egress_ok(fib->ifindex)) {
		*reason = XDPFWD_R_PASS_SLOW_EGRESS;
		return XDP_PASS;
	}
	*reason = fib->ifindex == ingress ? XDPFWD_R_FWD_TX : XDPFWD_R_FWD_REDIRECT;
	return XDP_REDIRECT;
}

/* emit - what a router does to a translated packet it sends: TTL, Ethernet
 * addresses of the next hop (@dmac, @smac), and, when the frame leaves
 * without its skb (@finish_csum, native mode), a partial L4 checksum
 * completed. */
static __always_inline void emit(struct packet *p, const __u8 *dmac, const __u8 *smac,
				 bool finish_csum)
{
	ttl_decrement(p->ip);
	__builtin_memcpy(p->eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, smac, ETH_ALEN);
	if (finish_csum && pkt_l4(p) && p->l4_form == CSUM_PARTIAL)
		csum_finish(p);
}

/* TC_HANDOVER - the mark XDP leaves in a frame's metadata for TC ingress. */
#define TC_HANDOVER 0x78646677	/* "xdfw" */

/* tc_handover - mark a translated frame for TC ingress to send: one the
 * kernel would drop, its source being an address of this host. Packet
 * pointers are invalid afterwards. Returns 0, or -1 where the driver keeps
 * no metadata. */
static __always_inline int tc_handover(struct xdp_md *ctx)
{
	__u32 *meta;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return -1;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return -1;
	*meta = TC_HANDOVER;
	return 0;
}

#endif /* XDPFWD_FORWARD_H */
