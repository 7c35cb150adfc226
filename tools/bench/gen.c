// SPDX-License-Identifier: GPL-2.0
/*
 * gen: the pps bench's in-kernel packet generator (tools/bench/pps.sh).
 *
 *   gen IFNAME DMAC SMAC SADDR DADDR SPORT DPORT FLOWS PACKETS [reply]
 *
 * Runs gen.bpf.c by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, PACKETS
 * times, as if the frames arrived on IFNAME (of the calling network
 * namespace): each becomes a 64-byte UDP packet SADDR:SPORT+(n % FLOWS) ->
 * DADDR:DPORT (with "reply": SADDR:SPORT -> DADDR:DPORT+(n % FLOWS), the
 * answers to such packets) and leaves by XDP_TX, to IFNAME's peer, which
 * must have an XDP program or GRO for a veth to take it. Prints the run's wall time in
 * nanoseconds. Built by `make bench` (never by `make`).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bench.h"
#include "gen.skel.h"

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "gen: %s: %s\n", what, arg);
	exit(1);
}

/* parse_mac - "aa:bb:cc:dd:ee:ff" into @mac, or die. */
static void parse_mac(const char *s, __u8 *mac)
{
	unsigned int b[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		die("not a MAC address", s);
	for (i = 0; i < 6; i++)
		mac[i] = b[i];
}

/* parse_num - a decimal in [min, max], or die. */
static unsigned long parse_num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		die("number out of range", s);
	return v;
}

static __be32 parse_addr(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		die("not an IPv4 address", s);
	return a.s_addr;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* run - PACKETS live frames through the loaded generator; the wall time. */
static __u64 run(int prog_fd, int ifindex, __u32 packets)
{
	unsigned char frame[GEN_FRAME_LEN] = { 0 };
	struct xdp_md ctx = { .data_end = sizeof(frame), .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = sizeof(frame),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = packets,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES,
	);
	__u64 t0 = now_ns();

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		die("BPF_PROG_RUN with live frames", strerror(errno));
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	struct gen_bpf *skel;
	int ifindex;
	__u32 packets;
	__u64 ns;

	if (argc != 10 && !(argc == 11 && !strcmp(argv[10], "reply"))) {
		fprintf(stderr, "usage: gen IFNAME DMAC SMAC SADDR DADDR SPORT DPORT FLOWS PACKETS [reply]\n");
		return 2;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex)
		die("no such interface", argv[1]);
	skel = gen_bpf__open();
	if (!skel)
		die("open the generator", strerror(errno));
	parse_mac(argv[2], (__u8 *)skel->rodata->cfg.dmac);
	parse_mac(argv[3], (__u8 *)skel->rodata->cfg.smac);
	skel->rodata->cfg.saddr = parse_addr(argv[4]);
	skel->rodata->cfg.daddr = parse_addr(argv[5]);
	skel->rodata->cfg.sport = parse_num(argv[6], 1, 65535);
	skel->rodata->cfg.dport = parse_num(argv[7], 1, 65535);
	skel->rodata->cfg.reply = argc == 11;
	skel->rodata->cfg.flows = parse_num(argv[8], 1, 65536 - (skel->rodata->cfg.reply ?
								skel->rodata->cfg.dport :
								skel->rodata->cfg.sport));
	packets = parse_num(argv[9], 1, 1UL << 31);
	if (gen_bpf__load(skel))
		die("load the generator", strerror(errno));
	ns = run(bpf_program__fd(skel->progs.gen), ifindex, packets);
	printf("%llu\n", (unsigned long long)ns);
	gen_bpf__destroy(skel);
	return 0;
}
