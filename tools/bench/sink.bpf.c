// SPDX-License-Identifier: GPL-2.0
/* The pps bench's sink: drops every frame at XDP and counts it, at SINK_GOOD
 * when it is IPv4 UDP to sink_cfg's address and port (what the forwarder must
 * make of the generator's packet), else at SINK_OTHER. Per-CPU counters, summed
 * by the reader; one copy of the program (and so of the maps) per interface. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bench.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SINK_NCOUNT);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_cfg);
} sink_conf SEC(".maps");

/* expected - whether the frame is the forwarded packet sink_conf describes. */
static __always_inline int expected(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct sink_cfg *cfg;
	__u32 zero = 0;

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	cfg = bpf_map_lookup_elem(&sink_conf, &zero);
	return cfg && ip->daddr == cfg->daddr && udp->dest == cfg->dport;
}

SEC("xdp")
int sink(struct xdp_md *ctx)
{
	__u32 idx = expected((void *)(long)ctx->data, (void *)(long)ctx->data_end) ?
		    SINK_GOOD : SINK_OTHER;
	__u64 *n = bpf_map_lookup_elem(&sink_count, &idx);

	if (n)
		(*n)++;
	return XDP_DROP;
}
