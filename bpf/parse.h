/* SPDX-License-Identifier: GPL-2.0 */
/* Header parsing. Every step checks bounds before it reads; the result is a
 * struct packet with pointers into the frame and the flow key it belongs to. */
#ifndef XDPFWD_PARSE_H
#define XDPFWD_PARSE_H

#include <stdbool.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/icmp.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "xdpfwd.h"
#include "csum.h"

#define IP_DF		0x4000
#define IP_MF		0x2000
#define IP_OFFSET	0x1fff

#define TCP_FIN		0x01
#define TCP_SYN		0x02
#define TCP_RST		0x04
#define TCP_ACK		0x10

/* A packet is one of three kinds, told apart by the headers it has (see
 * pkt_l4() and friends): TCP or UDP, whole or the first fragment (ports);
 * an ICMP error quoting TCP or UDP (icmp); a later fragment (neither). The
 * pointers say it rather than a field so that the verifier, which tracks
 * each pointer, never sees a kind paired with another kind's headers. */
struct packet {
	struct ethhdr *eth;
	struct iphdr *ip;
	__be16 *ports;		/* source, destination */
	__sum16 *l4_check;
	__u32 l4_len;		/* L4 bytes in this packet, from the IP total length */
	enum csum_form l4_form;	/* see l4_csum_inspect() */
	__u32 l4_sum;		/* the segment's sum, for a partial checksum */
	bool first_frag;	/* the first of several fragments */
	__u8 tcp_flags;
	struct icmphdr *icmp;	/* an ICMP error, */
	struct iphdr *inner;	/* the packet it quotes, */
	__be16 *inner_ports;	/* that packet's ports, */
	__sum16 *inner_check;	/* and its L4 checksum when quoted, else NULL */
	/* The connection-table key: the tuple as it arrives. For an ICMP
	 * error, the quoted packet's tuple reversed (the direction the error
	 * travels); for a later fragment, addresses and protocol only. */
	struct xdpfwd_flow_key key;
};

static __always_inline bool pkt_l4(const struct packet *p)
{
	return p->ports;
}

static __always_inline bool pkt_icmp_err(const struct packet *p)
{
	return p->icmp;
}

static __always_inline bool pkt_later_frag(const struct packet *p)
{
	return !p->ports && !p->icmp;
}

/* parse_l4 - the TCP or UDP header at @l4, of which @len bytes belong to
 * this packet. A first fragment holds only the start of its datagram.
 * Returns 0 with ports and checksum set, else the PASS reason. */
static __always_inline int parse_l4(void *l4, void *end, __u8 proto, __u32 len,
				    struct packet *p)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end || th->doff * 4 < sizeof(*th) ||
		    th->doff * 4 > len)
			return XDPFWD_R_PASS_MALFORMED;
		p->l4_check = &th->check;
		p->tcp_flags = ((__u8 *)th)[13];
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || bpf_ntohs(uh->len) < sizeof(*uh) ||
		    (bpf_ntohs(uh->len) > len && !p->first_frag))
			return XDPFWD_R_PASS_MALFORMED;
		p->l4_check = &uh->check;
	}
	p->ports = l4;
	p->key.sport = p->ports[0];
	p->key.dport = p->ports[1];
	return 0;
}

/* parse_icmp_err - an ICMP error of @len bytes at @icmp, quoting a TCP or
 * UDP packet whose ports it holds. Returns 0, else the PASS reason. */
static __always_inline int parse_icmp_err(struct icmphdr *icmp, void *end, __u32 len,
					  struct packet *p)
{
	struct iphdr *in = (void *)(icmp + 1);
	__be16 *ports;
	__u32 hlen;

	if ((void *)(icmp + 1) > end || len < sizeof(*icmp))
		return XDPFWD_R_PASS_MALFORMED;
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED &&
	    icmp->type != ICMP_PARAMETERPROB)
		return XDPFWD_R_PASS_NO_MATCH;
	if ((void *)(in + 1) > end)
		return XDPFWD_R_PASS_MALFORMED;
	hlen = in->ihl * 4;
	if (in->version != 4 || hlen < sizeof(*in) || hlen + 8 > len - sizeof(*icmp))
		return XDPFWD_R_PASS_MALFORMED;
	if ((in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP) ||
	    in->frag_off & bpf_htons(IP_OFFSET))
		return XDPFWD_R_PASS_NO_MATCH;
	ports = (void *)in + hlen;
	if ((void *)(ports + 4) > end)
		return XDPFWD_R_PASS_MALFORMED;
	p->inner_check = NULL;
	if (in->protocol == IPPROTO_UDP) {
		p->inner_check = (__sum16 *)(ports + 3);
	} else if ((void *)ports + sizeof(struct tcphdr) <= end &&
		   hlen + sizeof(struct tcphdr) <= len - sizeof(*icmp)) {
		p->inner_check = &((struct tcphdr *)ports)->check;
	}
	p->icmp = icmp;
	p->inner = in;
	p->inner_ports = ports;
	p->key.saddr = in->daddr;
	p->key.daddr = in->saddr;
	p->key.sport = ports[1];
	p->key.dport = ports[0];
	p->key.proto = in->protocol;
	return 0;
}

/* parse_ipv4 - fill @p from the IPv4 header at @ip; @ip_len bytes of the
 * frame (linear or not) start there, of which [@ip, @end) can be read.
 * Returns 0 for a packet we may translate, else the PASS reason. */
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
	p->ip = ip;
	p->l4_len = tot_len - hlen;
	l4 = (void *)ip + hlen;
	if (ip->protocol == IPPROTO_ICMP) {
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return XDPFWD_R_PASS_NO_MATCH;
		return parse_icmp_err(l4, end, p->l4_len, p);
	}
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDPFWD_R_PASS_NO_MATCH;
	p->key.saddr = ip->saddr;
	p->key.daddr = ip->daddr;
	p->key.proto = ip->protocol;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return 0;
	p->first_frag = ip->frag_off & bpf_htons(IP_MF);
	return parse_l4(l4, end, ip->protocol, p->l4_len, p);
}

/* parse_packet - Ethernet, then IPv4 with TCP, UDP or an ICMP error, in a
 * frame of @frame_len bytes whose first [@data, @end) can be read.
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
