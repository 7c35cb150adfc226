// SPDX-License-Identifier: GPL-2.0
/* Packet generator for the pps bench: run by BPF_PROG_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES on a veth, it turns each frame into a 64-byte
 * (60 + FCS) Ethernet/IPv4/UDP packet and sends it out with XDP_TX.
 *
 * Live frames come back from the page pool holding whatever the path wrote
 * into them (a DNAT'd address, new MACs, a lowered TTL), so every header byte
 * is written again on every run: a frame must never inherit a forwarder's
 * rewrite. The flow (UDP source port) cycles over cfg.flows by a counter.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bench.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct gen_cfg cfg;
__u32 seq;

/* ip_csum - the IPv4 header checksum of @ip (its check field zero). */
static __always_inline __u16 ip_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 flow;
	int i;

	if ((void *)(udp + 1) > end || data + GEN_FRAME_LEN > end)
		return XDP_ABORTED;
	flow = cfg.flows > 1 ? seq++ % cfg.flows : 0;

	/* Byte by byte: memcpy would cast away the volatile, and clang would
	 * then fold the addresses to the object's zeros. */
#pragma unroll
	for (i = 0; i < ETH_ALEN; i++) {
		eth->h_dest[i] = cfg.dmac[i];
		eth->h_source[i] = cfg.smac[i];
	}
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(GEN_FRAME_LEN - sizeof(*eth));
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = cfg.saddr;
	ip->daddr = cfg.daddr;
	ip->check = ip_csum(ip);

	udp->source = bpf_htons(cfg.sport + (cfg.reply ? 0 : flow));
	udp->dest = bpf_htons(cfg.dport + (cfg.reply ? flow : 0));
	udp->len = bpf_htons(GEN_FRAME_LEN - sizeof(*eth) - sizeof(*ip));
	udp->check = 0;		/* none: IPv4 allows it, and no forwarder must fix it */
	return XDP_TX;
}
