/* SPDX-License-Identifier: GPL-2.0 */
/* IP fragments. Only a datagram's first fragment carries the ports that pick
 * its connection; it leaves a note under the datagram's identity (addresses,
 * protocol, IP ID) so the later fragments, in whatever order they come, take
 * the same translation. A fragment that comes before its first one has no
 * note and goes to the kernel untouched. */
#ifndef XDPFWD_FRAG_H
#define XDPFWD_FRAG_H

#include "maps.h"
#include "parse.h"

#define FRAG_TIMEOUT_NS (XDPFWD_FRAG_TIMEOUT * 1000000000ULL)

static __always_inline void frag_key(struct xdpfwd_frag_key *k, const struct iphdr *ip)
{
	*k = (struct xdpfwd_frag_key){
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.id = ip->id,
		.proto = ip->protocol,
	};
}

/* frag_remember - note the connection of @p, a first fragment, for the
 * fragments that follow it. */
static __always_inline void frag_remember(const struct packet *p, __u64 now)
{
	struct xdpfwd_frag f = { .flow = p->key, .seen_ns = now };
	struct xdpfwd_frag_key k;

	frag_key(&k, p->ip);
	bpf_map_update_elem(&frags, &k, &f, BPF_ANY);
}

/* frag_resolve - give @p, a later fragment, the flow key its first fragment
 * had. Returns 0, or XDPFWD_R_PASS_FRAG_UNMATCHED when none was noted. */
static __always_inline int frag_resolve(struct packet *p, __u64 now)
{
	struct xdpfwd_frag_key k;
	struct xdpfwd_frag *f;

	frag_key(&k, p->ip);
	f = bpf_map_lookup_elem(&frags, &k);
	if (!f || now - f->seen_ns > FRAG_TIMEOUT_NS)
		return XDPFWD_R_PASS_FRAG_UNMATCHED;
	p->key = f->flow;
	return 0;
}

#endif /* XDPFWD_FRAG_H */
