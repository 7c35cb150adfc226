/* SPDX-License-Identifier: GPL-2.0 */
/* What the pps bench's BPF programs and their loaders share. */
#ifndef XDPFWD_BENCH_H
#define XDPFWD_BENCH_H

#include <linux/types.h>

#define GEN_FRAME_LEN 60	/* 64 bytes on the wire with the FCS */

/* The generator's packet: addresses in network order; ports in host order,
 * the first flow's. Flows (how many it cycles) differ in the source port,
 * or with reply set in the destination port: the answers of a backend. */
struct gen_cfg {
	__u8 dmac[6];
	__u8 smac[6];
	__be32 saddr;
	__be32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 flows;
	__u32 reply;
};

/* The sink counts at SINK_GOOD what is addressed as the forwarder should have
 * addressed it (sink_cfg: daddr, dport; network order), the rest at SINK_OTHER. */
enum { SINK_GOOD, SINK_OTHER, SINK_NCOUNT };

struct sink_cfg {
	__be32 daddr;
	__be16 dport;
	__u16 pad;
};

/* The bare forwarder's new Ethernet addresses. */
struct bare_cfg {
	__u8 dmac[6];
	__u8 smac[6];
};

#endif
