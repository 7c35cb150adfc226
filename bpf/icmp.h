/* SPDX-License-Identifier: GPL-2.0 */
/* ICMP errors, both kinds a router deals in: those that quote a packet of a
 * translated connection are translated themselves, outer and quoted headers
 * alike, so path-MTU discovery and "port unreachable" work through the
 * forward; and those a router owes a sender (time exceeded, fragmentation
 * needed) are built here from the packet that caused them. */
#ifndef XDPFWD_ICMP_H
#define XDPFWD_ICMP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "nat.h"

/* The quoted packet: its IP header and the first 8 bytes of its payload
 * (RFC 792), which hold the ports (and TCP's sequence number) a sender needs
 * to find the connection. RFC 1812 allows more; summing more would cost a
 * loop the verifier has to walk on every path here. */
#define ICMP_QUOTE_L4 8
#define ICMP_ERR_TOS 0xc0	/* internetwork control, as Linux sends errors */

/* icmp_xlate_quoted - give the packet quoted in @p the tuple of @to reversed
 * (it travelled the other way), with its IP and, when quoted, L4 checksum.
 * Returns the change to the ICMP checksum, as an RFC 1624 sum. */
static __always_inline __u32 icmp_xlate_quoted(struct packet *p, const struct nat_tuple *to)
{
	struct iphdr *in = p->inner;
	__be16 *ports = p->inner_ports;
	__u32 addr_diff = 0, port_diff = 0, diff;
	__sum16 old;

	addr_diff = csum_diff32(addr_diff, in->saddr, to->daddr);
	addr_diff = csum_diff32(addr_diff, in->daddr, to->saddr);
	port_diff = csum_diff16(port_diff, ports[0], to->dport);
	port_diff = csum_diff16(port_diff, ports[1], to->sport);
	diff = csum_add(addr_diff, port_diff);

	old = in->check;
	csum_apply(&in->check, addr_diff, CSUM_FULL);
	diff = csum_diff16(diff, old, in->check);
	if (p->inner_check && !(in->protocol == IPPROTO_UDP && *p->inner_check == 0)) {
		old = *p->inner_check;
		csum_apply(p->inner_check, csum_add(addr_diff, port_diff), CSUM_FULL);
		if (in->protocol == IPPROTO_UDP && *p->inner_check == 0)
			*p->inner_check = 0xffff;
		diff = csum_diff16(diff, old, *p->inner_check);
	}
	in->saddr = to->daddr;
	in->daddr = to->saddr;
	ports[0] = to->dport;
	ports[1] = to->sport;
	return diff;
}

/* icmp_xlate - translate the ICMP error @p by the tuple @to of the
 * connection entry found for its key: the quoted packet, and the outer
 * addresses that were the connection's (an error from a router on the path
 * keeps that router's). */
static __always_inline void icmp_xlate(struct packet *p, const struct nat_tuple *to)
{
	__be32 saddr, daddr;
	__u32 diff = 0;

	out_addrs(p, to, &saddr, &daddr);
	csum_apply(&p->icmp->checksum, icmp_xlate_quoted(p, to), CSUM_FULL);
	diff = csum_diff32(diff, p->ip->saddr, saddr);
	diff = csum_diff32(diff, p->ip->daddr, daddr);
	csum_apply(&p->ip->check, diff, CSUM_FULL);
	p->ip->saddr = saddr;
	p->ip->daddr = daddr;
}

struct icmp_err {
	__u8 type;
	__u8 code;
	__u16 mtu;		/* next-hop MTU, for fragmentation needed */
};

/* icmp_answer - turn the frame of @ctx, an IPv4 packet parse_packet() took,
 * into the ICMP error @err sent back to its source from its destination.
 * A global function, verified once on its own rather than on every path
 * that leads here.
 * NOTE: invalidates every pointer into the frame.
 * Returns 0, or -1 when there was no room to build it. */
__attribute__((noinline)) int icmp_answer(struct xdp_md *ctx, const struct icmp_err *err)
{
	const int grow = sizeof(struct iphdr) + sizeof(struct icmphdr);
	unsigned char smac[ETH_ALEN], dmac[ETH_ALEN];
	__u32 quote, l4_len, hlen;
	struct icmphdr *icmp;
	__be32 saddr, daddr;
	struct ethhdr *eth;
	struct iphdr *ip;
	void *data, *end;
	int len;

	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if (!err || (void *)(ip + 1) > end)
		return -1;
	hlen = ip->ihl * 4;
	l4_len = bpf_ntohs(ip->tot_len) - hlen;
	quote = hlen + (l4_len < ICMP_QUOTE_L4 ? l4_len : ICMP_QUOTE_L4);
	saddr = ip->saddr;
	daddr = ip->daddr;
	__builtin_memcpy(smac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(dmac, eth->h_dest, ETH_ALEN);
	len = end - data;
	if (bpf_xdp_adjust_head(ctx, -grow))
		return -1;
	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(*eth) + quote) - len))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > end)
		return -1;	/* cannot happen: the frame just grew */

	__builtin_memcpy(eth->h_dest, smac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	*ip = (struct iphdr){
		.version = 4,
		.ihl = 5,
		.tos = ICMP_ERR_TOS,
		.tot_len = bpf_htons(grow + quote),
		.ttl = 64,
		.protocol = IPPROTO_ICMP,
		.saddr = daddr,
		.daddr = saddr,
	};
	ip->check = ~csum_fold16(bpf_csum_diff(NULL, 0, (void *)ip, sizeof(*ip), 0));
	*icmp = (struct icmphdr){ .type = err->type, .code = err->code };
	icmp->un.frag.mtu = bpf_htons(err->mtu);
	icmp->checksum = ~csum_fold16(csum_bytes(icmp, end, sizeof(*icmp) + quote));
	return 0;
}

#endif /* XDPFWD_ICMP_H */
