/* SPDX-License-Identifier: GPL-2.0 */
/* Address and port rewriting, both directions: a packet takes the tuple its
 * connection entry holds, with both checksums updated incrementally. */
#ifndef XDPFWD_NAT_H
#define XDPFWD_NAT_H

#include "csum.h"
#include "parse.h"

/* l4_csum_form - the form of the TCP/UDP checksum field of @p.
 * A field equal to the folded pseudo header sum is CHECKSUM_PARTIAL unless
 * the whole segment also verifies, which a full checksum of that value does
 * once in 65536 packets; only those few packets pay for the sum. */
static __always_inline enum csum_form l4_csum_form(const struct packet *p,
						   void *end)
{
	__u32 pseudo;

	if (*p->l4_check == 0 && p->key.proto == IPPROTO_UDP)
		return CSUM_NONE;
	pseudo = pseudo_sum(p->key.saddr, p->key.daddr, p->key.proto, p->l4_len);
	if (*p->l4_check != csum_fold16(pseudo))
		return CSUM_FULL;
	if (csum_fold16(csum_add(pseudo, csum_bytes(p->ports, end, p->l4_len))) == 0xffff)
		return CSUM_FULL;
	return CSUM_PARTIAL;
}

/* nat_rewrite - give @p the tuple of @to, keeping both checksums right.
 * Returns the checksum form the L4 field is left in. */
static __always_inline enum csum_form nat_rewrite(struct packet *p, void *end,
						  const struct xdpfwd_flow *to)
{
	enum csum_form form = l4_csum_form(p, end);
	__u32 addr_diff = 0, port_diff = 0;

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
		if (form == CSUM_FULL && p->key.proto == IPPROTO_UDP &&
		    *p->l4_check == 0)
			*p->l4_check = 0xffff;	/* RFC 768: 0 means none */
	}
	p->ip->saddr = to->saddr;
	p->ip->daddr = to->daddr;
	p->ports[0] = to->sport;
	p->ports[1] = to->dport;
	return form;
}

/* csum_finish - turn a partial L4 checksum into the full one, as the kernel
 * would on transmit; needed when the frame leaves without its skb. */
static __always_inline void csum_finish(struct packet *p, void *end)
{
	__u16 sum = csum_fold16(csum_bytes(p->ports, end, p->l4_len));

	*p->l4_check = ~sum;
	if (p->key.proto == IPPROTO_UDP && *p->l4_check == 0)
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
