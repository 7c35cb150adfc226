/* SPDX-License-Identifier: GPL-2.0 */
/* Address and port rewriting, both directions: a packet takes the tuple its
 * connection entry holds, with both checksums updated incrementally. */
#ifndef XDPFWD_NAT_H
#define XDPFWD_NAT_H

#include "csum.h"
#include "parse.h"

/* l4_csum_inspect - record the form of @p's TCP/UDP checksum field and, for
 * a partial one, the sum of the segment that finishing it will need.
 * A field equal to the folded pseudo header sum is CHECKSUM_PARTIAL unless
 * the whole segment also verifies, which a full checksum of that value does
 * once in 65536 packets; only those few packets, and partial ones, pay for
 * the sum. Done before anything else so the verifier walks the sum's loop
 * on few paths. */
static __always_inline void l4_csum_inspect(struct packet *p, void *end)
{
	__u32 pseudo;

	p->l4_form = CSUM_FULL;
	if (*p->l4_check == 0 && p->key.proto == IPPROTO_UDP) {
		p->l4_form = CSUM_NONE;
		return;
	}
	/* A fragmented datagram was checksummed whole before it was cut. */
	if (p->first_frag)
		return;
	pseudo = pseudo_sum(p->key.saddr, p->key.daddr, p->key.proto, p->l4_len);
	if (*p->l4_check != csum_fold16(pseudo))
		return;
	p->l4_sum = csum_bytes(p->ports, end, p->l4_len);
	if (csum_fold16(csum_add(pseudo, p->l4_sum)) != 0xffff)
		p->l4_form = CSUM_PARTIAL;
}

/* The tuple a packet of a connection leaves with: the first fields of the
 * connection entry of its direction, copied so that it can travel where a
 * map value cannot (a global function's arguments). */
struct nat_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/* flow_tuple - the tuple packets of @flow's direction leave with. */
static __always_inline struct nat_tuple flow_tuple(const struct xdpfwd_flow *flow)
{
	return (struct nat_tuple){
		.saddr = flow->saddr,
		.daddr = flow->daddr,
		.sport = flow->sport,
		.dport = flow->dport,
	};
}

/* out_addrs - the addresses @p leaves with once it has the tuple @to;
 * an ICMP error from a router on the path keeps that router's address (the
 * one that is not the quoted packet's). */
static __always_inline void out_addrs(const struct packet *p, const struct nat_tuple *to,
				      __be32 *saddr, __be32 *daddr)
{
	*saddr = to->saddr;
	*daddr = to->daddr;
	if (!pkt_icmp_err(p))
		return;
	if (p->ip->saddr != p->inner->daddr)
		*saddr = p->ip->saddr;
	if (p->ip->daddr != p->inner->saddr)
		*daddr = p->ip->daddr;
}

/* nat_rewrite - give @p the tuple @to, keeping both checksums right (and
 * the segment sum of a partial one, for csum_finish()). */
static __always_inline void nat_rewrite(struct packet *p, const struct nat_tuple *to)
{
	enum csum_form form = p->l4_form;
	__u32 addr_diff = 0, port_diff = 0;
	__sum16 old = *p->l4_check;

	addr_diff = csum_diff32(addr_diff, p->ip->saddr, to->saddr);
	addr_diff = csum_diff32(addr_diff, p->ip->daddr, to->daddr);
	port_diff = csum_diff16(port_diff, p->ports[0], to->sport);
	port_diff = csum_diff16(port_diff, p->ports[1], to->dport);

	csum_apply(&p->ip->check, addr_diff, CSUM_FULL);
	if (form != CSUM_NONE) {
		/* Ports are covered by a partial sum only once it is finished,
		 * so they change the field only in the full form. */
		if (form == CSUM_FULL)
			addr_diff = csum_add(addr_diff, port_diff);
		csum_apply(p->l4_check, addr_diff, form);
		if (form == CSUM_FULL && p->ip->protocol == IPPROTO_UDP &&
		    *p->l4_check == 0)
			*p->l4_check = 0xffff;	/* RFC 768: 0 means none */
	}
	if (form == CSUM_PARTIAL)
		p->l4_sum = csum_diff16(csum_add(p->l4_sum, port_diff), old, *p->l4_check);
	p->ip->saddr = to->saddr;
	p->ip->daddr = to->daddr;
	p->ports[0] = to->sport;
	p->ports[1] = to->dport;
}

/* nat_rewrite_addrs - give @p, a later fragment, the addresses of @to; its
 * datagram's L4 checksum was updated with the first fragment. */
static __always_inline void nat_rewrite_addrs(struct packet *p, const struct nat_tuple *to)
{
	__u32 diff = 0;

	diff = csum_diff32(diff, p->ip->saddr, to->saddr);
	diff = csum_diff32(diff, p->ip->daddr, to->daddr);
	csum_apply(&p->ip->check, diff, CSUM_FULL);
	p->ip->saddr = to->saddr;
	p->ip->daddr = to->daddr;
}

/* csum_finish - turn a partial L4 checksum into the full one, as the kernel
 * would on transmit; needed when the frame leaves without its skb. The
 * segment was summed by l4_csum_inspect() and kept current since. */
static __always_inline void csum_finish(struct packet *p)
{
	*p->l4_check = ~csum_fold16(p->l4_sum);
	if (p->ip->protocol == IPPROTO_UDP && *p->l4_check == 0)
		*p->l4_check = 0xffff;
}

/* ttl_decrement - what a router does to a packet it forwards. */
static __always_inline void ttl_decrement(struct iphdr *ip)
{
	__u32 diff = csum_diff16(0, *(__u16 *)&ip->ttl, 0);

	ip->ttl--;
	diff = csum_diff16(diff, 0, *(__u16 *)&ip->ttl);
	csum_apply(&ip->check, diff, CSUM_FULL);
}

#endif /* XDPFWD_NAT_H */
