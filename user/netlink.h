/* SPDX-License-Identifier: GPL-2.0 */
/* The kernel facts the control plane needs, over rtnetlink and the netdev
 * generic netlink family (libmnl). All return 0 or -errno. */
#ifndef XDPFWD_NETLINK_H
#define XDPFWD_NETLINK_H

#include <linux/types.h>

struct nl_route {
	__u32 oif;
	__u32 nexthop;		/* gateway, or the destination itself */
	__u8 type;		/* RTN_UNICAST, RTN_LOCAL, ... */
};

/* nl_route_get - how the kernel would route to @daddr (network order). */
int nl_route_get(__u32 daddr, struct nl_route *rt);

typedef void (*nl_addr_fn)(__u32 ifindex, __u32 addr, void *arg);
/* nl_addr_dump - call @fn for every IPv4 address of every interface. */
int nl_addr_dump(nl_addr_fn fn, void *arg);

/* nl_neigh_manage - have the kernel keep @addr on @ifindex resolved
 * (NTF_EXT_MANAGED), unless a permanent entry already exists. */
int nl_neigh_manage(__u32 ifindex, __u32 addr);
/* nl_neigh_unmanage - remove a managed entry for @addr on @ifindex, if any. */
int nl_neigh_unmanage(__u32 ifindex, __u32 addr);
/* nl_neigh_state - the NUD_* state of @addr's entry on @ifindex; NUD_NONE
 * (0) when there is no entry. */
int nl_neigh_state(__u32 ifindex, __u32 addr, __u16 *state);

/* nl_xdp_features - the NETDEV_XDP_ACT_* bits of @ifindex; -EOPNOTSUPP on
 * kernels without the netdev family (before 6.3). */
int nl_xdp_features(__u32 ifindex, __u64 *features);

/* nl_tc_filter_count - how many TC filters hang off @parent (a clsact
 * ingress or egress handle) of @ifindex. Returns the count or -errno. */
int nl_tc_filter_count(__u32 ifindex, __u32 parent);

/* nl_has_clsact - whether @ifindex has a clsact qdisc. Returns 1, 0 or -errno. */
int nl_has_clsact(__u32 ifindex);

#define XDP_ACT_NDO_XMIT 4	/* NETDEV_XDP_ACT_NDO_XMIT: can take redirected frames */

#endif /* XDPFWD_NETLINK_H */
