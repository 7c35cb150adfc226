// SPDX-License-Identifier: GPL-2.0
/* The pps bench's ceiling: the least a forwarder can do, write the next hop's
 * Ethernet addresses (bare_conf) and redirect through a devmap (its entry 0,
 * the egress interface). No parsing, no lookup of rules, routes or flows. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "bench.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bare_tx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bare_cfg);
} bare_conf SEC(".maps");

SEC("xdp")
int bare(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct bare_cfg *cfg;
	__u32 zero = 0;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	cfg = bpf_map_lookup_elem(&bare_conf, &zero);
	if (!cfg)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, cfg->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->smac, ETH_ALEN);
	return bpf_redirect_map(&bare_tx, 0, 0);
}
