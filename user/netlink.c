// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/pkt_sched.h>
#include "netlink.h"

/* From the kernel's netdev family (include/uapi/linux/netdev.h, 6.3+), which
 * Debian 12's headers predate. */
#define NETDEV_FAMILY_NAME	"netdev"
#define NETDEV_CMD_DEV_GET	1
#define NETDEV_A_DEV_IFINDEX	1
#define NETDEV_A_DEV_XDP_FEATURES 3

/* nl_talk - send @nlh on @bus and feed the replies to @cb: until NLMSG_DONE
 * for a dump, the ACK for a change, the one answer for a plain get.
 * Returns 0 or -errno (the kernel's error for the request, if any). */
static int nl_talk(int bus, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned int portid;
	int ret, err = 0;

	nl = mnl_socket_open(bus);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_seq = time(NULL);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (ret < 0) {
			err = -errno;
			break;
		}
		ret = mnl_cb_run(buf, ret, nlh->nlmsg_seq, portid, cb, data);
		if (ret < 0)
			err = -errno;
		if (ret <= MNL_CB_STOP ||
		    !(nlh->nlmsg_flags & (NLM_F_DUMP | NLM_F_ACK)))
			break;
	}
out:
	mnl_socket_close(nl);
	return err;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct nl_route *rt = data;
	struct nlattr *attr;

	rt->type = rtm->rtm_type;
	mnl_attr_for_each(attr, nlh, sizeof(*rtm)) {
		if (mnl_attr_get_type(attr) == RTA_OIF)
			rt->oif = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == RTA_GATEWAY)
			rt->nexthop = mnl_attr_get_u32(attr);
	}
	return MNL_CB_OK;
}

int nl_route_get(__u32 daddr, struct nl_route *rt)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	mnl_attr_put_u32(nlh, RTA_DST, daddr);
	memset(rt, 0, sizeof(*rt));
	rt->nexthop = daddr;
	return nl_talk(NETLINK_ROUTE, nlh, route_cb, rt);
}

struct addr_walk {
	nl_addr_fn fn;
	void *arg;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_walk *walk = data;
	struct nlattr *attr;

	if (ifa->ifa_family != AF_INET)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*ifa))
		if (mnl_attr_get_type(attr) == IFA_LOCAL)
			walk->fn(ifa->ifa_index, mnl_attr_get_u32(attr), walk->arg);
	return MNL_CB_OK;
}

int nl_addr_dump(nl_addr_fn fn, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct addr_walk walk = { fn, arg };
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	return nl_talk(NETLINK_ROUTE, nlh, addr_cb, &walk);
}

struct neigh_info {
	bool found;
	__u16 state;
	bool managed;
};

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	struct neigh_info *ni = data;
	struct nlattr *attr;

	ni->found = true;
	ni->state = ndm->ndm_state;
	mnl_attr_for_each(attr, nlh, sizeof(*ndm))
		if (mnl_attr_get_type(attr) == NDA_FLAGS_EXT)
			ni->managed = mnl_attr_get_u32(attr) & NTF_EXT_MANAGED;
	return MNL_CB_OK;
}

static struct nlmsghdr *neigh_msg(char *buf, __u16 type, __u16 flags, __u32 ifindex,
				  __u32 addr, __u16 state)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *ndm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_INET;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = state;
	mnl_attr_put_u32(nlh, NDA_DST, addr);
	return nlh;
}

static int neigh_get(__u32 ifindex, __u32 addr, struct neigh_info *ni)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int err;

	memset(ni, 0, sizeof(*ni));
	err = nl_talk(NETLINK_ROUTE, neigh_msg(buf, RTM_GETNEIGH, 0, ifindex, addr, 0),
		      neigh_cb, ni);
	return err == -ENOENT ? 0 : err;
}

int nl_neigh_manage(__u32 ifindex, __u32 addr)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct neigh_info ni;
	struct nlmsghdr *nlh;
	int err;

	err = neigh_get(ifindex, addr, &ni);
	if (err)
		return err;
	if (ni.found && (ni.managed || (ni.state & (NUD_PERMANENT | NUD_NOARP))))
		return 0;
	/* An entry the kernel learned keeps its state; a new one starts
	 * resolving at once. */
	nlh = neigh_msg(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK,
			ifindex, addr, ni.found ? ni.state : NUD_NONE);
	mnl_attr_put_u32(nlh, NDA_FLAGS_EXT, NTF_EXT_MANAGED);
	return nl_talk(NETLINK_ROUTE, nlh, NULL, NULL);
}

int nl_neigh_state(__u32 ifindex, __u32 addr, __u16 *state)
{
	struct neigh_info ni;
	int err;

	err = neigh_get(ifindex, addr, &ni);
	*state = ni.found ? ni.state : NUD_NONE;
	return err;
}

int nl_neigh_unmanage(__u32 ifindex, __u32 addr)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct neigh_info ni;
	int err;

	err = neigh_get(ifindex, addr, &ni);
	if (err || !ni.found || !ni.managed)
		return err;
	err = nl_talk(NETLINK_ROUTE, neigh_msg(buf, RTM_DELNEIGH, NLM_F_ACK, ifindex, addr, 0),
		      NULL, NULL);
	return err == -ENOENT ? 0 : err;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID)
			*(__u16 *)data = mnl_attr_get_u16(attr);
	return MNL_CB_OK;
}

static struct nlmsghdr *genl_msg(char *buf, __u16 type, __u8 cmd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = 1;
	return nlh;
}

static int features_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(attr) == NETDEV_A_DEV_XDP_FEATURES)
			*(__u64 *)data = mnl_attr_get_u64(attr);
	return MNL_CB_OK;
}

int nl_xdp_features(__u32 ifindex, __u64 *features)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	__u16 family = 0;
	int err;

	nlh = genl_msg(buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, NETDEV_FAMILY_NAME);
	err = nl_talk(NETLINK_GENERIC, nlh, family_cb, &family);
	if (err == -ENOENT || (!err && !family))
		return -EOPNOTSUPP;
	if (err)
		return err;
	nlh = genl_msg(buf, family, NETDEV_CMD_DEV_GET);
	mnl_attr_put_u32(nlh, NETDEV_A_DEV_IFINDEX, ifindex);
	*features = 0;
	return nl_talk(NETLINK_GENERIC, nlh, features_cb, features);
}

static int filter_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(*(int *)data)++;
	return MNL_CB_OK;
}

int nl_tc_filter_count(__u32 ifindex, __u32 parent)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct tcmsg *tcm;
	int count = 0, err;

	nlh->nlmsg_type = RTM_GETTFILTER;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = parent;
	err = nl_talk(NETLINK_ROUTE, nlh, filter_cb, &count);
	return err ? err : count;
}

struct qdisc_query {
	__u32 ifindex;
	bool found;
};

static int qdisc_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	struct qdisc_query *q = data;
	struct nlattr *attr;

	if ((__u32)tcm->tcm_ifindex != q->ifindex)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*tcm))
		if (mnl_attr_get_type(attr) == TCA_KIND &&
		    !strcmp(mnl_attr_get_str(attr), "clsact"))
			q->found = true;
	return MNL_CB_OK;
}

int nl_has_clsact(__u32 ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct qdisc_query q = { .ifindex = ifindex };
	struct tcmsg *tcm;
	int err;

	nlh->nlmsg_type = RTM_GETQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	err = nl_talk(NETLINK_ROUTE, nlh, qdisc_cb, &q);
	return err ? err : q.found;
}
