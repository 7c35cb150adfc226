// SPDX-License-Identifier: GPL-2.0
/* xdpfwd datapath: parse -> match (connection, else rule) -> route ->
 * translate -> emit, with one exit that records why each packet ended as it
 * did. Routing comes before translating so that a packet left to the kernel
 * can be handed over in the form the kernel can use.
 *
 * Two XDP entry points share the code: in native mode a redirected frame
 * leaves its skb behind, so a partial checksum must be finished here; in
 * generic mode the skb travels on and the kernel finishes it. The TC egress
 * program translates replies the kernel forwards out of a loaded interface.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "parse.h"
#include "conntrack.h"
#include "nat.h"
#include "forward.h"

char LICENSE[] SEC("license") = "GPL";

/* count_reason - the single place a packet's outcome is recorded. */
static __always_inline void count_reason(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&reasons, &reason);

	if (n)
		(*n)++;
}

static __always_inline int xdpfwd(struct xdp_md *ctx, bool native)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	enum csum_form form = CSUM_NONE;
	struct xdpfwd_flow *flow = NULL;
	struct bpf_fib_lookup fib;
	struct packet p = {};
	int verdict = XDP_PASS;
	int reason;

	reason = parse_packet(data, end, end - data, &p);
	if (reason)
		goto out;
	flow = ct_lookup(&p.key, ctx->ingress_ifindex, &reason);
	if (!flow) {
		if (reason == XDPFWD_R_DROP_CT_FULL)
			verdict = XDP_DROP;
		goto out;
	}
	verdict = route(ctx, &p, flow, &fib, &reason);
	if (verdict == XDP_DROP)
		goto out;
	/* What the kernel finishes must reach it translated when it goes to
	 * the backend (else it would be delivered to a local socket), but as
	 * sent when it is a reply: its new source is this host's own address,
	 * which the kernel drops as martian on arrival. TC egress translates
	 * (and counts) such a reply on its way out. */
	if (verdict == XDP_PASS && flow->dir == XDPFWD_DIR_REPLY)
		goto out;
	form = nat_rewrite(&p, end, flow);
	if (verdict != XDP_PASS)
		emit(&p, end, &fib, form, native);
	ct_count(flow, 1, bpf_ntohs(p.ip->tot_len));
out:
	count_reason(reason);
	return verdict;
}

SEC("xdp")
int xdpfwd_native(struct xdp_md *ctx)
{
	return xdpfwd(ctx, true);
}

SEC("xdp")
int xdpfwd_generic(struct xdp_md *ctx)
{
	return xdpfwd(ctx, false);
}

#define TC_PULL_LEN 128	/* Ethernet, IPv4 with options, the L4 ports and checksum */

/* tc_rewrite - give the skb the tuple of @to through the skb helpers, which
 * keep CHECKSUM_PARTIAL and GSO packets right. @p holds the old tuple and
 * pointers taken before any helper call (they are invalid after it). */
static __always_inline void tc_rewrite(struct __sk_buff *skb, const struct packet *p,
				       void *data, const struct xdpfwd_flow *to)
{
	__u32 ip_off = (void *)p->ip - data;
	__u32 l4_off = (void *)p->ports - data;
	__u32 check_off = (void *)p->l4_check - data;
	__u64 l4_flags = p->key.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	bpf_l4_csum_replace(skb, check_off, p->key.saddr, to->saddr,
			    l4_flags | BPF_F_PSEUDO_HDR | 4);
	bpf_l4_csum_replace(skb, check_off, p->key.daddr, to->daddr,
			    l4_flags | BPF_F_PSEUDO_HDR | 4);
	bpf_l4_csum_replace(skb, check_off, p->key.sport, to->sport, l4_flags | 2);
	bpf_l4_csum_replace(skb, check_off, p->key.dport, to->dport, l4_flags | 2);
	bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check),
			    p->key.saddr, to->saddr, 4);
	bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check),
			    p->key.daddr, to->daddr, 4);
	bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr),
			    &to->saddr, 8, 0);
	bpf_skb_store_bytes(skb, l4_off, &to->sport, 4, 0);
}

SEC("tc")
int xdpfwd_tc_egress(struct __sk_buff *skb)
{
	struct xdpfwd_flow *flow;
	struct packet p = {};
	void *data, *end;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (parse_packet(data, end, skb->len, &p))
		return TC_ACT_OK;
	flow = bpf_map_lookup_elem(&flows, &p.key);
	if (!flow)
		return TC_ACT_OK;
	ct_count(flow, skb->gso_segs ? skb->gso_segs : 1, skb->len - sizeof(struct ethhdr));
	tc_rewrite(skb, &p, data, flow);
	count_reason(XDPFWD_R_TC_XLATE);
	return TC_ACT_OK;
}
