/* SPDX-License-Identifier: GPL-2.0 */
/* Header parsing. Every step checks bounds before it reads; the result is a
 * struct packet with pointers into the frame and the flow key it belongs to. */
#ifndef XDPFWD_PARSE_H
#define XDPFWD_PARSE_H

#include <stdbool.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "xdpfwd.h"

#define IP_MF		0x2000
#define IP_OFFSET	0x1fff

struct packet {
	struct ethhdr *eth;
	struct iphdr *ip;
	__be16 *ports;		/* source, destination */
	__sum16 *l4_check;
	__u32 l4_len;		/* L4 header + payload, from the IP total length */
	struct xdpfwd_flow_key key;
};

/* parse_ipv4 - fill @p from the IPv4 header at @ip; @ip_len bytes of the
 * frame (linear or not) start there, of which [@ip, @end) can be read.
 * Returns 0 for a TCP/UDP packet we may translate, else the PASS reason. */
static __always_inline int parse_ipv4(struct iphdr *ip, void *end, __u32 ip_len,
				      struct packet *p)
{
	__u32 hlen, tot_len;
	void *l4;

	if ((void *)(ip + 1) > end)
		return XDPFWD_R_PASS_MALFORMED;
	hlen = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || hlen < sizeof(*ip) || tot_len < hlen ||
	    tot_len > ip_len)
		return XDPFWD_R_PASS_MALFORMED;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDPFWD_R_PASS_NO_MATCH;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return XDPFWD_R_PASS_FRAGMENT;

	l4 = (void *)ip + hlen;
	p->l4_len = tot_len - hlen;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end || th->doff * 4 < sizeof(*th) ||
		    th->doff * 4 > p->l4_len)
			return XDPFWD_R_PASS_MALFORMED;
		p->l4_check = &th->check;
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || bpf_ntohs(uh->len) < sizeof(*uh) ||
		    bpf_ntohs(uh->len) > p->l4_len)
			return XDPFWD_R_PASS_MALFORMED;
		p->l4_check = &uh->check;
	}
	p->ip = ip;
	p->ports = l4;
	p->key.saddr = ip->saddr;
	p->key.daddr = ip->daddr;
	p->key.sport = p->ports[0];
	p->key.dport = p->ports[1];
	p->key.proto = ip->protocol;
	return 0;
}

/* parse_packet - Ethernet, then IPv4 with TCP or UDP, in a frame of
 * @frame_len bytes whose first [@data, @end) can be read.
 * Returns 0 when @p is filled in, else the PASS reason. */
static __always_inline int parse_packet(void *data, void *end, __u32 frame_len,
					struct packet *p)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end || frame_len < sizeof(*eth))
		return XDPFWD_R_PASS_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDPFWD_R_PASS_NOT_IP;
	p->eth = eth;
	return parse_ipv4((void *)(eth + 1), end, frame_len - sizeof(*eth), p);
}

#endif /* XDPFWD_PARSE_H */
