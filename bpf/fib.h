/* SPDX-License-Identifier: GPL-2.0 */
/* Route lookups, from XDP and TC alike. */
#ifndef XDPFWD_FIB_H
#define XDPFWD_FIB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#define LOOPBACK_IFINDEX 1

/* fib_lookup_fwd - bpf_fib_lookup() of @fib (its ifindex the ingress) with
 * @flags, for a packet we forward whatever the ingress's forwarding sysctl
 * says. Returns the helper's result. */
static __always_inline int fib_lookup_fwd(void *ctx, struct bpf_fib_lookup *fib, __u32 flags)
{
	int rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), flags);

	if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED) {
		/* Kernel forwarding is off on the ingress, yet we forward:
		 * route as from loopback, whose forwarding the control plane
		 * turns on (the kernel forwards nothing that arrives on lo).
		 * The failed try costs only the device check. */
		fib->ifindex = LOOPBACK_IFINDEX;
		rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), flags);
	}
	return rc;
}

#endif /* XDPFWD_FIB_H */
