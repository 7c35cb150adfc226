/* SPDX-License-Identifier: GPL-2.0 */
/* The harness of the program-cost bench (tools/bench/prog.sh).
 *
 * BPF_PROG_TEST_RUN with a repeat count runs a program over and over on
 * one buffer, which keeps whatever the last run wrote: after one run of
 * xdpfwd the frame is already translated (new destination, new MACs, TTL
 * one less), so a plain repeat would measure a no-match packet from the
 * second run on. This program writes the frame back from a template before
 * every run, optionally gives it a different client (source address and
 * port) each time, and tail-calls the program under test. Its own cost is
 * measured by tail-calling a program that only returns XDP_PASS, and
 * subtracted.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define FRAME_LEN 60	/* the frame the bench feeds: 64-byte UDP on the wire */
#define SADDR_OFF 26	/* Ethernet 14 + IPv4 source at 12 */
#define SPORT_OFF 34	/* Ethernet 14 + IPv4 header 20 */

enum {
	MODE_FIXED,	/* the same packet every run */
	MODE_CYCLE,	/* client n % clients, n the run's number */
};

/* The frame and how to vary it; user space writes the one entry. */
struct harness_cfg {
	__u8  frame[FRAME_LEN];
	__u32 mode;
	__u32 clients;	/* MODE_CYCLE: distinct clients cycled through */
	__u16 sport_base;	/* client n: port sport_base + n / 256, host order */
	__u16 pad;
	__u32 saddr_net;	/* ... and address saddr_net + n % 256 (network order /24) */
	__u32 pad2;
	__u64 runs;	/* runs so far; the client counter */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct harness_cfg);
} harness_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} harness_target SEC(".maps");

/* vary - give the frame client n of the cycle. */
static __always_inline void vary(__u8 *data, struct harness_cfg *cfg)
{
	__u64 n = cfg->runs++;
	__u32 i = cfg->clients ? n % cfg->clients : 0;
	__u32 saddr = cfg->saddr_net | __builtin_bswap32(i & 0xff);
	__u16 sport = __builtin_bswap16((__u16)(cfg->sport_base + (i >> 8)));

	__builtin_memcpy(data + SADDR_OFF, &saddr, sizeof(saddr));
	__builtin_memcpy(data + SPORT_OFF, &sport, sizeof(sport));
}

SEC("xdp")
int harness(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct harness_cfg *cfg = bpf_map_lookup_elem(&harness_cfg, &zero);

	if (!cfg || data + FRAME_LEN > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->frame, FRAME_LEN);
	if (cfg->mode == MODE_CYCLE)
		vary(data, cfg);
	bpf_tail_call(ctx, &harness_target, 0);
	return XDP_ABORTED;
}

/* The harness's own cost: what the tail-called program adds is nothing. */
SEC("xdp")
int harness_null(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
