// SPDX-License-Identifier: GPL-2.0
/* xdpfwd datapath: parse -> express (an established connection's cached
 * slot), else match (connection, else rule) -> route -> translate -> emit,
 * with one exit that records why each packet ended as it did. Routing comes before translating so that a packet left to the kernel
 * can be handed over in the form the kernel can use, and so that a packet a
 * router must refuse is answered as it arrived.
 *
 * Two XDP entry points share the code: in native mode a redirected frame
 * leaves its skb behind, so a partial checksum must be finished here; in
 * generic mode the skb travels on and the kernel finishes it (and a frame may
 * be a GSO aggregate, too big by appearance only, so generic mode never
 * answers "fragmentation needed"). The TC egress program translates replies
 * the kernel forwards out of a loaded interface.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "parse.h"
#include "frag.h"
#include "conntrack.h"
#include "nat.h"
#include "icmp.h"
#include "forward.h"

char LICENSE[] SEC("license") = "GPL";

/* count_reason - the single place a packet's outcome is recorded. */
static __always_inline void count_reason(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&reasons, &reason);

	if (n)
		(*n)++;
}

/* ct_open - a new connection for @p, the first packet of one, arriving on
 * @ingress, through the rule it matches. Returns 0 with @ct filled, else
 * the reason. */
static __always_inline int ct_open(struct xdp_md *ctx, const struct packet *p, __u32 ingress,
				   struct ct *ct)
{
	struct xdpfwd_rule *rule;
	struct nat_plan plan;
	int reason;

	if (!pkt_l4(p))
		return XDPFWD_R_PASS_NO_MATCH;
	rule = rule_match(&p->key);
	if (!rule)
		return XDPFWD_R_PASS_NO_MATCH;
	if (!rule_admits(rule, p->key.saddr))
		return XDPFWD_R_DROP_DENIED;
	reason = nat_plan(ctx, &p->key, rule, ingress, &plan);
	if (!reason)
		reason = ct_create(&p->key, p->tcp_flags, ingress, rule, &plan, ct);
	return reason;
}

/* match - the connection @p belongs to, found or made, with a first
 * fragment noted for the rest of its datagram. Returns 0 or the reason. */
static __always_inline int match(struct xdp_md *ctx, struct packet *p, __u32 ingress,
				 struct ct *ct)
{
	int reason = 0;

	if (pkt_later_frag(p))
		reason = frag_resolve(p, ct->now);
	if (!reason && !ct_lookup(p, ct))
		reason = ct_open(ctx, p, ingress, ct);
	if (!reason && p->first_frag)
		frag_remember(p, ct->now);
	return reason;
}

/* match_drops - whether a packet that matching ended with @reason is
 * dropped: it is ours, but may not or cannot be forwarded. */
static __always_inline bool match_drops(int reason)
{
	return reason == XDPFWD_R_DROP_CT_FULL || reason == XDPFWD_R_DROP_DENIED ||
	       reason == XDPFWD_R_DROP_SNAT_NO_ADDR || reason == XDPFWD_R_DROP_SNAT_NO_PORT;
}

/* icmp_owed - the ICMP error a router owes the sender of @p for @reason, if
 * it is ours to send: never about an ICMP error or a later fragment, only
 * toward clients (the kernel answers backends), only in native mode, and
 * only where the ingress takes XDP frames. Returns true with @err filled. */
static __always_inline bool icmp_owed(const struct packet *p, const struct ct *ct, int reason,
				      const struct bpf_fib_lookup *fib, __u32 ingress,
				      bool native, struct icmp_err *err)
{
	if (!native || !pkt_l4(p) || ct->flow->dir != XDPFWD_DIR_ORIG)
		return false;
	if (reason == XDPFWD_R_DROP_TTL)
		*err = (struct icmp_err){ .type = ICMP_TIME_EXCEEDED, .code = ICMP_EXC_TTL };
	else if (reason == XDPFWD_R_PASS_TOO_BIG && (p->ip->frag_off & bpf_htons(IP_DF)))
		*err = (struct icmp_err){ .type = ICMP_DEST_UNREACH, .code = ICMP_FRAG_NEEDED,
					  .mtu = fib->mtu_result };
	else
		return false;
	return bpf_map_lookup_elem(&tx_ports, &ingress) != NULL;
}

/* translate - give @p the tuple @to, in the way its kind needs. */
static __always_inline void translate(struct packet *p, const struct nat_tuple *to)
{
	if (pkt_l4(p))
		nat_rewrite(p, to);
	else if (pkt_icmp_err(p))
		icmp_xlate(p, to);
	else
		nat_rewrite_addrs(p, to);
}

/* A packet's rewrite, handed to rewrite() as scalars: a global function
 * takes no pointer into the frame or a map. Offsets from the frame's start
 * stand for the pointers of struct packet, 0 for NULL; every field a
 * rewrite touches lies within Ethernet, two IPv4 headers with options, ICMP
 * and a TCP header (162 bytes), so a byte holds each. */
struct rewrite {
	struct nat_tuple to;		/* the tuple the packet takes */
	__u8 dmac[ETH_ALEN];		/* REWRITE_EMIT: the next hop */
	__u8 smac[ETH_ALEN];
	__u32 l4_sum;			/* as in struct packet */
	__u8 l4_form;
	__u8 ports;			/* offsets */
	__u8 l4_check;
	__u8 icmp;
	__u8 inner_ports;
	__u8 inner_check;
	__u8 flags;			/* REWRITE_* */
};

#define REWRITE_EMIT	0x01	/* we send it: emit() */
#define REWRITE_FINISH	0x02	/* ... without its skb: finish a partial checksum */
#define REWRITE_TTL	0x04	/* the kernel sends it as ours: only the TTL */

/* rewrite_pack - @rw, tuple and flags clear, for @p in the frame at @data. */
static __always_inline void rewrite_pack(struct rewrite *rw, const struct packet *p, void *data)
{
	__builtin_memset(rw, 0, sizeof(*rw));
	rw->l4_form = p->l4_form;
	rw->l4_sum = p->l4_sum;
	if (pkt_l4(p)) {
		rw->ports = (void *)p->ports - data;
		rw->l4_check = (void *)p->l4_check - data;
	} else if (pkt_icmp_err(p)) {
		rw->icmp = (void *)p->icmp - data;
		rw->inner_ports = (void *)p->inner_ports - data;
		if (p->inner_check)
			rw->inner_check = (void *)p->inner_check - data;
	}
}

/* frame_at - the @len bytes at @off in the frame of @ctx, or NULL when the
 * frame ends before them. */
static __always_inline void *frame_at(struct xdp_md *ctx, __u8 off, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if (data + off + len > end)
		return NULL;
	return data + off;
}

/* rewrite_unpack - the struct packet @rw was packed from, its pointers
 * checked anew against the frame of @ctx. Returns false when they do not
 * fit it, which cannot happen: the frame has not changed since parsing. */
static __always_inline bool rewrite_unpack(struct xdp_md *ctx, const struct rewrite *rw,
					   struct packet *p)
{
	p->eth = frame_at(ctx, 0, sizeof(*p->eth));
	p->ip = frame_at(ctx, sizeof(*p->eth), sizeof(*p->ip));
	p->l4_form = rw->l4_form;
	p->l4_sum = rw->l4_sum;
	if (!p->eth || !p->ip)
		return false;
	if (rw->ports) {
		p->ports = frame_at(ctx, rw->ports, 2 * sizeof(*p->ports));
		p->l4_check = frame_at(ctx, rw->l4_check, sizeof(*p->l4_check));
		return p->ports && p->l4_check;
	}
	if (rw->icmp) {
		p->icmp = frame_at(ctx, rw->icmp, sizeof(*p->icmp) + sizeof(*p->inner));
		p->inner_ports = frame_at(ctx, rw->inner_ports, 2 * sizeof(*p->inner_ports));
		if (rw->inner_check)
			p->inner_check = frame_at(ctx, rw->inner_check, sizeof(*p->inner_check));
		if (!p->icmp || !p->inner_ports || (rw->inner_check && !p->inner_check))
			return false;
		p->inner = (void *)(p->icmp + 1);
	}
	return true;
}

/* rewrite - translate the frame of @ctx as @rw says, and make it ready to
 * leave. A global function: the verifier checks it once, on its own,
 * rather than on every path of the program that leads here (the kinds of
 * packet, checksum forms, verdicts and connection states multiply them).
 * Returns 0, or -1 when @rw does not fit the frame. */
__attribute__((noinline)) int rewrite(struct xdp_md *ctx, const struct rewrite *rw)
{
	struct packet p = {};

	if (!rw || !rewrite_unpack(ctx, rw, &p))
		return -1;
	translate(&p, &rw->to);
	if (rw->flags & REWRITE_EMIT)
		emit(&p, rw->dmac, rw->smac, rw->flags & REWRITE_FINISH);
	else if (rw->flags & REWRITE_TTL)
		ttl_decrement(p.ip);
	return 0;
}

/* route_mtu - the MTU of the route a packet from @saddr to @daddr that
 * arrived on @ingress takes; @l4 holds its protocol (bits 0-7), TOS (8-15),
 * source and destination ports (16-31, 32-47, as in the packet). A second
 * lookup, made only when a next hop is cached: on success the route lookup
 * does not tell the MTU, only that the packet fits. Returns the MTU, or 0
 * when the route cannot be found. */
__attribute__((noinline)) int route_mtu(struct xdp_md *ctx, __u32 ingress, __u32 saddr,
					__u32 daddr, __u64 l4)
{
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.l4_protocol = l4 & 0xff,
		.tos = (l4 >> 8) & 0xff,
		.sport = (l4 >> 16) & 0xffff,
		.dport = (l4 >> 32) & 0xffff,
		.tot_len = 0xffff,
		.ifindex = ingress,
		.ipv4_src = saddr,
		.ipv4_dst = daddr,
	};
	int rc;

	if (!ctx)
		return 0;
	rc = fib_lookup_fwd(ctx, &fib, BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return fib.mtu_result;
	return rc == BPF_FIB_LKUP_RET_SUCCESS ? 0xffff : 0;
}

/* keep_next_hop - whether @p's connection @ct may keep where @p goes,
 * @fib's result, for the direction's later packets: when its state lets
 * them skip the tracker. Stores the route's MTU in @fib->mtu_result. */
static __always_inline bool keep_next_hop(struct xdp_md *ctx, const struct packet *p,
					  const struct ct *ct, __u32 ingress,
					  const struct nat_tuple *to, struct bpf_fib_lookup *fib)
{
	__u64 l4 = p->key.proto | (__u64)p->ip->tos << 8 | (__u64)to->sport << 16 |
		   (__u64)to->dport << 32;
	int mtu;

	if (!pkt_l4(p) || !ct_express_state(ct->conn->state, ct->conn->flags))
		return false;
	mtu = route_mtu(ctx, ingress, to->saddr, to->daddr, l4);
	fib->mtu_result = mtu;
	return mtu > 0;
}

/* forward - send @p, a packet of the connection @ct that arrived on
 * @ingress, on its way: routed, translated and accounted, or answered with
 * the ICMP error it earned. Returns the XDP verdict; *@reason says why. */
static __always_inline int forward(struct xdp_md *ctx, struct packet *p, struct ct *ct,
				   __u32 ingress, bool native, int *reason)
{
	struct bpf_fib_lookup fib, *sent_by = NULL;
	struct rewrite rw;
	struct icmp_err err;
	int verdict;
	__u32 bytes;
	bool snat;

	rewrite_pack(&rw, p, (void *)(long)ctx->data);
	rw.to = flow_tuple(ct->flow);
	verdict = route(ctx, ingress, p, &rw.to, &fib, reason);
	if (icmp_owed(p, ct, *reason, &fib, ingress, native, &err)) {
		*reason = XDPFWD_R_DROP_NO_ROOM;
		if (icmp_answer(ctx, &err))
			return XDP_DROP;
		*reason = err.type == ICMP_TIME_EXCEEDED ? XDPFWD_R_ICMP_TIME_EXCEEDED :
			  XDPFWD_R_ICMP_FRAG_NEEDED;
		return bpf_redirect_map(&tx_ports, ingress, XDP_DROP);
	}
	if (verdict == XDP_DROP)
		return verdict;
	/* What the kernel finishes must reach it translated when it goes to
	 * the backend (else it would be delivered to a local socket), but as
	 * sent when it is a reply: its new source is this host's own address,
	 * which the kernel drops as martian on arrival. TC egress translates
	 * (and accounts) such a reply on its way out. A source-NATed packet
	 * is this host's own either way: TC ingress sends it (tc_handover()). */
	snat = ct->conn->flags & XDPFWD_CT_F_SNAT;
	if (verdict == XDP_PASS && ct->flow->dir == XDPFWD_DIR_REPLY && !snat)
		return verdict;
	if (verdict == XDP_PASS && snat && p->ip->ttl <= 1) {
		*reason = XDPFWD_R_DROP_TTL;
		return XDP_DROP;
	}
	bytes = bpf_ntohs(p->ip->tot_len);
	if (verdict != XDP_PASS) {
		rw.flags = REWRITE_EMIT | (native ? REWRITE_FINISH : 0);
		__builtin_memcpy(rw.dmac, fib.dmac, ETH_ALEN);
		__builtin_memcpy(rw.smac, fib.smac, ETH_ALEN);
		if (keep_next_hop(ctx, p, ct, ingress, &rw.to, &fib))
			sent_by = &fib;
	} else if (snat) {
		rw.flags = REWRITE_TTL;
	}
	if (rewrite(ctx, &rw)) {
		*reason = XDPFWD_R_PASS_MALFORMED;
		return XDP_PASS;
	}
	ct_account(p, ct, ingress, 1, bytes, sent_by);
	if (verdict == XDP_PASS && snat && tc_handover(ctx)) {
		*reason = XDPFWD_R_DROP_NO_ROOM;
		return XDP_DROP;
	}
	return verdict;
}

/* express - send @p, a packet of an established connection, as its CPU's
 * express slot says (struct xdpfwd_express), past the connection table,
 * the tracker and the route lookup. Anything unusual is left to the full
 * path: a TCP SYN, FIN or RST, a fragment, a slot of another key or a
 * second old, a deleted rule, a TTL about to run out, a packet longer than
 * the route's MTU, an egress gone. Returns the reason it sent the packet
 * for, or -1 when it did not. */
static __always_inline int express(struct xdp_md *ctx, struct packet *p, bool native, __u64 now)
{
	struct xdpfwd_express *slot;
	struct nat_tuple to;
	__u32 id, len, *gen;

	if (!pkt_l4(p) || p->first_frag || (p->tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST)))
		return -1;
	slot = express_find(&p->key);
	if (!slot || !express_fresh(slot, now))
		return -1;
	id = slot->rule_id;
	gen = bpf_map_lookup_elem(&rule_gens, &id);
	if (!gen || *gen != slot->rule_gen)
		return -1;
	len = bpf_ntohs(p->ip->tot_len);
	if (p->ip->ttl <= 1 || len > slot->mtu || !egress_ok(slot->ifindex))
		return -1;
	to = (struct nat_tuple){
		.saddr = slot->saddr,
		.daddr = slot->daddr,
		.sport = slot->sport,
		.dport = slot->dport,
	};
	nat_rewrite(p, &to);
	emit(p, slot->dmac, slot->smac, native);
	slot->packets++;
	slot->bytes += len;
	slot->seen_ns = now;
	rule_count(id, slot->dir & 1, 1, len);
	return slot->ifindex == ctx->ingress_ifindex ? XDPFWD_R_FWD_TX : XDPFWD_R_FWD_REDIRECT;
}

/* deliver - send @p, arrived on @ingress, on its way: by express() when it
 * can, else matched to its connection (made if need be) and forwarded in
 * full. Returns the XDP verdict; *@reason says why. */
static __always_inline int deliver(struct xdp_md *ctx, struct packet *p, __u32 ingress,
				   bool native, int *reason)
{
	struct ct ct = { .now = ct_now() };
	int sent;

	sent = express(ctx, p, native, ct.now);
	if (sent >= 0) {
		*reason = sent;
		return XDP_REDIRECT;
	}
	*reason = match(ctx, p, ingress, &ct);
	if (!*reason)
		return forward(ctx, p, &ct, ingress, native, reason);
	return match_drops(*reason) ? XDP_DROP : XDP_PASS;
}

static __always_inline int xdpfwd(struct xdp_md *ctx, bool native)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 ingress = ctx->ingress_ifindex;
	struct packet p = {};
	int verdict = XDP_PASS;
	int reason;

	reason = parse_packet(data, end, end - data, &p);
	if (!reason && pkt_l4(&p))
		l4_csum_inspect(&p, end);
	if (!reason)
		verdict = deliver(ctx, &p, ingress, native, &reason);
	count_reason(reason);
	if (verdict == XDP_DROP)
		event_emit(XDPFWD_EV_DROP, &p.key, ingress, 0, reason, 0);
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

/* Ethernet, IPv4 with options, and an ICMP error quoting IPv4 with options
 * and a whole TCP header: everything TC reads or writes directly. */
#define TC_PULL_LEN (14 + 60 + 8 + 60 + 20)

/* tc_rewrite - give the skb the tuple @to through the skb helpers, which
 * keep CHECKSUM_PARTIAL and GSO packets right. @p holds the old tuple and
 * pointers taken before any helper call (they are invalid after it). A later
 * fragment has addresses only. */
static __always_inline void tc_rewrite(struct __sk_buff *skb, const struct packet *p,
				       void *data, const struct nat_tuple *to)
{
	__u32 ip_off = (void *)p->ip - data;
	__u32 ip_check = ip_off + offsetof(struct iphdr, check);
	__u64 l4_flags = p->key.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be32 saddr = p->ip->saddr, daddr = p->ip->daddr;

	if (pkt_l4(p)) {
		__u32 l4_off = (void *)p->ports - data;
		__u32 check_off = (void *)p->l4_check - data;

		bpf_l4_csum_replace(skb, check_off, saddr, to->saddr,
				    l4_flags | BPF_F_PSEUDO_HDR | 4);
		bpf_l4_csum_replace(skb, check_off, daddr, to->daddr,
				    l4_flags | BPF_F_PSEUDO_HDR | 4);
		bpf_l4_csum_replace(skb, check_off, p->key.sport, to->sport, l4_flags | 2);
		bpf_l4_csum_replace(skb, check_off, p->key.dport, to->dport, l4_flags | 2);
		bpf_skb_store_bytes(skb, l4_off, &to->sport, 4, 0);
	}
	bpf_l3_csum_replace(skb, ip_check, saddr, to->saddr, 4);
	bpf_l3_csum_replace(skb, ip_check, daddr, to->daddr, 4);
	bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr), &to->saddr, 8, 0);
}

/* xdpfwd_tc_ingress - send what XDP translated and handed over: route it
 * and let the kernel's neighbour code give it its Ethernet header, the way
 * the kernel's own forwarding cannot for a packet from this host's address.
 * The skb path takes what XDP frames cannot: GSO aggregates, an egress
 * without XDP, an unresolved neighbour. */
SEC("tc")
int xdpfwd_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 *meta = (void *)(long)skb->data_meta;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct bpf_redir_neigh nh = { .nh_family = AF_INET };
	struct bpf_fib_lookup fib = { .family = AF_INET };

	if ((void *)(meta + 1) > data || *meta != TC_HANDOVER)
		return TC_ACT_OK;
	if ((void *)(ip + 1) > end)
		return TC_ACT_SHOT;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ingress_ifindex;
	if (fib_lookup_fwd(skb, &fib, BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS) {
		count_reason(XDPFWD_R_DROP_TC_UNROUTABLE);
		return TC_ACT_SHOT;
	}
	nh.ipv4_nh = fib.ipv4_dst;
	count_reason(XDPFWD_R_TC_SENT);
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

SEC("tc")
int xdpfwd_tc_egress(struct __sk_buff *skb)
{
	struct ct ct = { .now = ct_now() };
	struct nat_tuple to;
	struct packet p = {};
	void *data, *end;
	__u64 segs;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (parse_packet(data, end, skb->len, &p))
		return TC_ACT_OK;
	if (pkt_later_frag(&p) && frag_resolve(&p, ct.now))
		return TC_ACT_OK;
	if (!ct_find(&p.key, &ct) || ct.flow->dir != XDPFWD_DIR_REPLY)
		return TC_ACT_OK;
	if (p.first_frag)
		frag_remember(&p, ct.now);
	to = flow_tuple(ct.flow);
	if (pkt_icmp_err(&p))
		icmp_xlate(&p, &to);
	else
		tc_rewrite(skb, &p, data, &to);
	segs = skb->gso_segs ? skb->gso_segs : 1;
	ct_account(&p, &ct, skb->ingress_ifindex, segs, skb->len - sizeof(struct ethhdr), NULL);
	count_reason(XDPFWD_R_TC_XLATE);
	return TC_ACT_OK;
}
