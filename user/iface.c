// SPDX-License-Identifier: GPL-2.0
/* Interfaces: load, unload, status, and the maps that follow the interfaces
 * (their addresses, and which of them can take XDP-redirected frames). */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "netlink.h"
#include "output.h"

#define TC_HANDLE	0x58444657	/* "XDFW": finds our filter again */
#define TC_PRIO		0x5844
#define LINK_PREFIX	"link_"

static const char *mode_name(enum xdp_mode mode)
{
	return mode == MODE_GENERIC ? "generic" : "native";
}

/* loaded_ifindexes - the interfaces with a pinned link, from the pin names.
 * Returns how many were stored in @out (at most @max). */
int loaded_ifindexes(const struct state *st, __u32 *out, int max)
{
	struct dirent *de;
	DIR *dir;
	int n = 0;

	dir = opendir(st->pin_dir);
	if (!dir)
		return 0;
	while ((de = readdir(dir)) && n < max)
		if (!strncmp(de->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
			out[n++] = strtoul(de->d_name + strlen(LINK_PREFIX), NULL, 10);
	closedir(dir);
	return n;
}

int iface_loaded_count(const struct state *st)
{
	__u32 idx[XDPFWD_MAX_IFACES];

	return loaded_ifindexes(st, idx, XDPFWD_MAX_IFACES);
}

static void link_pin_path(const struct state *st, __u32 ifindex, char *buf, size_t len)
{
	char name[32];

	snprintf(name, sizeof(name), LINK_PREFIX "%u", ifindex);
	state_path(st, buf, len, name);
}

/* xdp_egress_ok - whether @ifindex takes XDP-redirected frames. A veth does
 * only while its peer has GRO or an XDP program; kernels before 6.3 cannot
 * tell, and then every interface is trusted. */
bool xdp_egress_ok(__u32 ifindex)
{
	__u64 features;

	if (nl_xdp_features(ifindex, &features))
		return true;
	return features & XDP_ACT_NDO_XMIT;
}

struct addr_set {
	__u32 addrs[XDPFWD_MAX_LOCAL_ADDRS];
	__u32 ifindexes[XDPFWD_MAX_LOCAL_ADDRS];
	int n;
};

static void collect_addr(__u32 ifindex, __u32 addr, void *arg)
{
	struct addr_set *set = arg;

	/* Nothing arrives from outside for a loopback address. */
	if ((ntohl(addr) >> 24) == 127 || set->n == XDPFWD_MAX_LOCAL_ADDRS)
		return;
	set->addrs[set->n] = addr;
	set->ifindexes[set->n++] = ifindex;
}

static bool addr_in_set(const struct addr_set *set, __u32 addr)
{
	int i;

	for (i = 0; i < set->n; i++)
		if (set->addrs[i] == addr)
			return true;
	return false;
}

/* refresh_local_addrs - local_addrs := this host's addresses now. New
 * entries go in before stale ones leave, so an address that stays never
 * misses a packet. */
static int refresh_local_addrs(struct state *st)
{
	int fd = st->map_fd[MAP_LOCAL_ADDRS];
	__u32 key, next, stale[64];
	struct addr_set *set;
	int i, n_stale, err;
	bool more;

	set = calloc(1, sizeof(*set));
	if (!set)
		return -ENOMEM;
	err = nl_addr_dump(collect_addr, set);
	for (i = 0; !err && i < set->n; i++)
		if (bpf_map_update_elem(fd, &set->addrs[i], &set->ifindexes[i], BPF_ANY))
			err = -errno;
	do {
		n_stale = 0;
		more = !bpf_map_get_next_key(fd, NULL, &next);
		while (!err && more && n_stale < 64) {
			key = next;
			more = !bpf_map_get_next_key(fd, &key, &next);
			if (!addr_in_set(set, key))
				stale[n_stale++] = key;
		}
		for (i = 0; i < n_stale; i++)
			bpf_map_delete_elem(fd, &stale[i]);
	} while (!err && n_stale == 64);
	free(set);
	return err;
}

/* refresh_tx_ports - tx_ports := the interfaces that take XDP frames now. */
static int refresh_tx_ports(struct state *st)
{
	int fd = st->map_fd[MAP_TX_PORTS];
	struct if_nameindex *ifs, *it;
	__u32 key, next, stale[XDPFWD_MAX_IFACES];
	int n_stale = 0, i, err = 0;
	bool more;

	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (it = ifs; it->if_index; it++) {
		struct bpf_devmap_val val = { .ifindex = it->if_index };

		key = it->if_index;
		if (!strcmp(it->if_name, "lo") || !xdp_egress_ok(key)) {
			bpf_map_delete_elem(fd, &key);
			continue;
		}
		if (bpf_map_update_elem(fd, &key, &val, BPF_ANY))
			err = -errno;
	}
	more = !bpf_map_get_next_key(fd, NULL, &next);
	while (more && n_stale < XDPFWD_MAX_IFACES) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		for (it = ifs; it->if_index && it->if_index != key; it++)
			;
		if (!it->if_index)
			stale[n_stale++] = key;
	}
	for (i = 0; i < n_stale; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	if_freenameindex(ifs);
	return err;
}

/* sysctl_ipv4_conf - read (@set < 0) or write net.ipv4.conf.@dev.@key.
 * Returns the value read, 0 after a write, or -errno. */
static int sysctl_ipv4_conf(const char *dev, const char *key, int set)
{
	char path[128];
	int val = -EIO;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s", dev, key);
	f = fopen(path, set < 0 ? "r" : "w");
	if (!f)
		return -errno;
	if (set >= 0)
		val = fprintf(f, "%d\n", set) > 0 ? 0 : -EIO;
	else if (fscanf(f, "%d", &val) != 1)
		val = -EIO;
	if (fclose(f) && set >= 0)
		val = -errno;
	return val;
}

/* refresh_fib_via_lo - the datapath's route lookup needs forwarding on the
 * device it names. Where kernel forwarding is off on a loaded interface it
 * names lo instead, so lo gets forwarding on: nothing arrives on lo to be
 * forwarded, so the kernel still forwards nothing. Once no loaded interface
 * needs that, lo goes back to the "all" setting, as the kernel would set it. */
static int refresh_fib_via_lo(const __u32 *loaded, int n)
{
	char name[IF_NAMESIZE];
	int i, want;

	for (i = 0; i < n; i++)
		if (if_indextoname(loaded[i], name) && sysctl_ipv4_conf(name, "forwarding", -1) == 0)
			break;
	want = i < n ? 1 : sysctl_ipv4_conf("all", "forwarding", -1);
	if (want < 0 || sysctl_ipv4_conf("lo", "forwarding", -1) == want)
		return 0;
	return sysctl_ipv4_conf("lo", "forwarding", want);
}

int iface_refresh_maps(struct state *st)
{
	__u32 loaded[XDPFWD_MAX_IFACES];
	int n = loaded_ifindexes(st, loaded, XDPFWD_MAX_IFACES);
	int err;

	err = refresh_local_addrs(st);
	if (!err)
		err = refresh_tx_ports(st);
	if (!err)
		err = refresh_fib_via_lo(loaded, n);
	if (err)
		return errorf(EXIT_FAIL, "cannot update interface maps: %s", strerror(-err));
	return EXIT_OK;
}

/* Our two TC programs: egress translates replies the kernel forwards, ingress
 * sends what XDP hands over (see xdpfwd_tc_ingress). */
static const struct {
	enum bpf_tc_attach_point point;
	const char *prog_pin;
} tc_progs[] = {
	{ BPF_TC_EGRESS, "prog_tc" },
	{ BPF_TC_INGRESS, "prog_tc_ingress" },
};
#define N_TC_PROGS (sizeof(tc_progs) / sizeof(tc_progs[0]))

static struct bpf_tc_hook tc_hook(__u32 ifindex, enum bpf_tc_attach_point point)
{
	return (struct bpf_tc_hook){ .sz = sizeof(struct bpf_tc_hook),
				     .ifindex = ifindex, .attach_point = point };
}

static int tc_attach(struct state *st, __u32 ifindex)
{
	struct bpf_tc_hook hook = tc_hook(ifindex, BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	size_t i;
	int err;

	/* Create clsact only where it is missing: libbpf reports the kernel's
	 * refusal to create it twice as an error of its own. */
	err = 0;
	if (nl_has_clsact(ifindex) != 1)
		err = bpf_tc_hook_create(&hook);
	if (err == -EEXIST)
		err = 0;
	for (i = 0; i < N_TC_PROGS && !err; i++) {
		hook.attach_point = tc_progs[i].point;
		opts.prog_fd = state_prog_fd(st, tc_progs[i].prog_pin);
		if (opts.prog_fd < 0)
			return -errno;
		opts.prog_id = 0;
		err = bpf_tc_attach(&hook, &opts);
		close(opts.prog_fd);
	}
	return err;
}

/* tc_attached - whether both our TC programs hang off @ifindex. */
static bool tc_attached(__u32 ifindex)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO);
	struct bpf_tc_hook hook;
	size_t i;

	for (i = 0; i < N_TC_PROGS; i++) {
		hook = tc_hook(ifindex, tc_progs[i].point);
		if (bpf_tc_query(&hook, &opts))
			return false;
		opts.prog_id = 0;
	}
	return true;
}

/* tc_detach - remove our filter, and the clsact qdisc once nothing else
 * hangs off it, so an unload leaves the interface as it found it. */
static void tc_detach(__u32 ifindex)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO);
	struct bpf_tc_hook hook;
	size_t i;

	if (nl_has_clsact(ifindex) != 1)
		return;
	for (i = 0; i < N_TC_PROGS; i++) {
		hook = tc_hook(ifindex, tc_progs[i].point);
		bpf_tc_detach(&hook, &opts);
	}
	if (nl_tc_filter_count(ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)) == 0 &&
	    nl_tc_filter_count(ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)) == 0) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
}

/* xdp_attach - attach the program for @mode to @ifindex through a pinned
 * bpf_link. MODE_AUTO takes native and falls back to generic where the
 * driver has no XDP. Returns 0 or -errno; *@used is the mode in effect. */
static int xdp_attach(struct state *st, __u32 ifindex, const char *ifname,
		      enum xdp_mode mode, enum xdp_mode *used)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	char path[PATH_MAX];
	int prog_fd, link_fd, err;

	*used = mode == MODE_GENERIC ? MODE_GENERIC : MODE_NATIVE;
	prog_fd = state_prog_fd(st, *used == MODE_GENERIC ? "prog_generic" : "prog_native");
	if (prog_fd < 0)
		return -errno;
	opts.flags = *used == MODE_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	link_fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	close(prog_fd);
	if (link_fd < 0 && mode == MODE_AUTO && (errno == EOPNOTSUPP || errno == EINVAL)) {
		warnf("%s has no native XDP in its driver; using generic mode (slower)", ifname);
		return xdp_attach(st, ifindex, ifname, MODE_GENERIC, used);
	}
	if (link_fd < 0)
		return -errno;
	link_pin_path(st, ifindex, path, sizeof(path));
	err = bpf_obj_pin(link_fd, path) ? -errno : 0;
	close(link_fd);
	return err;
}

/* attached_mode - the mode our link on @ifindex runs in. */
enum xdp_mode attached_mode(__u32 ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return MODE_NATIVE;
	return q.attach_mode == XDP_ATTACHED_SKB ? MODE_GENERIC : MODE_NATIVE;
}

static __u32 attached_prog_id(__u32 ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return 0;
	return q.prog_id ? q.prog_id : (q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id);
}

/* check_one - whether @ifname can be loaded in @mode: free of other XDP
 * programs, or ours in that mode. Changes nothing. */
static int check_one(struct state *st, const char *ifname, __u32 ifindex, enum xdp_mode mode)
{
	char path[PATH_MAX];
	enum xdp_mode used;
	__u32 other;

	link_pin_path(st, ifindex, path, sizeof(path));
	if (!access(path, F_OK)) {
		used = attached_mode(ifindex);
		if (mode != MODE_AUTO && mode != used)
			return errorf(EXIT_USAGE, "%s is loaded in %s mode; run 'xdpfwd unload %s' first to change the mode",
				      ifname, mode_name(used), ifname);
		return EXIT_OK;
	}
	other = attached_prog_id(ifindex);
	if (other)
		return errorf(EXIT_USAGE, "%s already has an XDP program (id %u) that is not xdpfwd's; detach it first ('ip link set dev %s xdp off')",
			      ifname, other, ifname);
	return EXIT_OK;
}

/* load_one - attach to one interface check_one accepted, or keep its
 * attachment. Returns EXIT_OK, or an exit code after printing the error.
 * *@attached is set when this call attached something (for rollback). */
static int load_one(struct state *st, const char *ifname, __u32 ifindex,
		    enum xdp_mode mode, bool *attached)
{
	char path[PATH_MAX];
	enum xdp_mode used;
	int err;

	*attached = false;
	link_pin_path(st, ifindex, path, sizeof(path));
	if (access(path, F_OK)) {
		err = xdp_attach(st, ifindex, ifname, mode, &used);
		if (err)
			return errorf(EXIT_FAIL, "cannot attach XDP to %s in %s mode: %s", ifname,
				      mode_name(mode == MODE_GENERIC ? MODE_GENERIC : MODE_NATIVE),
				      strerror(-err));
		*attached = true;
	}
	err = tc_attach(st, ifindex);
	if (err)
		return errorf(EXIT_FAIL, "cannot attach the TC programs to %s: %s", ifname,
			      strerror(-err));
	return EXIT_OK;
}

/* xdp_relink - move the XDP link of @ifindex onto @progs' program of its
 * mode, in place (bpf_link_update): the interface never runs without a
 * program, and the link stays the same. 0 or -errno. */
static int xdp_relink(struct state *st, __u32 ifindex, const struct state_progs *progs)
{
	enum state_prog which = attached_mode(ifindex) == MODE_GENERIC ? PROG_GENERIC : PROG_NATIVE;
	char path[PATH_MAX];
	int link_fd, err;

	link_pin_path(st, ifindex, path, sizeof(path));
	link_fd = bpf_obj_get(path);
	if (link_fd < 0)
		return -errno;
	err = bpf_link_update(link_fd, progs->fd[which], NULL);
	close(link_fd);
	return err;
}

/* move_progs - pin @progs as the state's programs and move every loaded
 * interface onto them: XDP links updated, TC filters replaced. Both swap
 * the program under packets in flight, and every map stays, so connections
 * go on. 0 or -errno. */
static int move_progs(struct state *st, const struct state_progs *progs)
{
	__u32 loaded[XDPFWD_MAX_IFACES];
	int n = loaded_ifindexes(st, loaded, XDPFWD_MAX_IFACES);
	char name[IF_NAMESIZE];
	int i, err;

	err = state_progs_pin(st, progs);
	for (i = 0; i < n && !err; i++) {
		/* A link whose interface is gone runs nothing. */
		if (!if_indextoname(loaded[i], name))
			continue;
		err = xdp_relink(st, loaded[i], progs);
		if (!err)
			err = tc_attach(st, loaded[i]);
	}
	return err;
}

/* upgrade - have the state run this binary's programs when it runs another
 * build's: loaded on the same maps, then swapped in on every interface, so
 * rules, counters and connections carry on. On failure the old programs go
 * back where they were. The state's layouts were checked when it opened. */
static int upgrade(struct state *st)
{
	struct state_progs old, new;
	int err;

	if (state_current(st))
		return EXIT_OK;
	err = state_progs_pinned(st, &old);
	if (err)
		return errorf(EXIT_FAIL, "cannot open the running programs in %s: %s", st->pin_dir,
			      strerror(-err));
	err = state_progs_load(st, &new);
	if (!err) {
		err = move_progs(st, &new);
		if (err) {
			move_progs(st, &old);
			err = errorf(EXIT_FAIL, "cannot move the interfaces to this version's programs: %s (the running ones are kept)",
				     strerror(-err));
		}
	}
	if (!err)
		err = state_record_build(st);
	state_progs_close(&old);
	state_progs_close(&new);
	return err;
}

static void unload_one(struct state *st, __u32 ifindex)
{
	char path[PATH_MAX];

	tc_detach(ifindex);
	link_pin_path(st, ifindex, path, sizeof(path));
	unlink(path);
}

/* parse_ifaces - interface names to indexes; every name must exist. */
static int parse_ifaces(int argc, char **argv, __u32 *ifindexes)
{
	int i;

	for (i = 0; i < argc; i++) {
		ifindexes[i] = if_nametoindex(argv[i]);
		if (!ifindexes[i])
			return errorf(EXIT_USAGE, "no interface '%s' in this network namespace (see 'ip link')",
				      argv[i]);
		if (!strcmp(argv[i], "lo"))
			return errorf(EXIT_USAGE, "cannot load on the loopback interface");
	}
	return EXIT_OK;
}

int forwarding_enabled(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r");
	int on = -1;

	if (f) {
		if (fscanf(f, "%d", &on) != 1)
			on = -1;
		fclose(f);
	}
	return on;
}

/* advise_egress - tell the user about interfaces XDP cannot send to. */
static void advise_egress(const __u32 *ifindexes, int n)
{
	char name[IF_NAMESIZE];
	int i;

	for (i = 0; i < n; i++) {
		if (xdp_egress_ok(ifindexes[i]) || !if_indextoname(ifindexes[i], name))
			continue;
		warnf("%s cannot take XDP-redirected frames (a veth whose peer has neither GRO nor an XDP program); packets to it take the kernel path%s. For the fast path run 'ethtool -K PEER gro on' on its peer",
		      name, forwarding_enabled() == 1 ? "" :
		      ", which needs net.ipv4.ip_forward=1 (it is off: they will be dropped)");
	}
}

static int usage_load(void)
{
	return errorf(EXIT_USAGE, "usage: xdpfwd load IFACE... [--mode native|generic] [--max-flows N]");
}

static int parse_max_flows(const char *s, __u32 *max_flows)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v < XDPFWD_MIN_FLOWS || v > XDPFWD_MAX_FLOWS)
		return errorf(EXIT_USAGE, "invalid --max-flows '%s': give a number of connections from %d to %d",
			      s, XDPFWD_MIN_FLOWS, XDPFWD_MAX_FLOWS);
	*max_flows = v;
	return EXIT_OK;
}

/* parse_load - load's arguments: interface names into @names (@n of them),
 * the mode, and --max-flows (0 when not given). */
static int parse_load(int argc, char **argv, char **names, int *n, enum xdp_mode *mode,
		      __u32 *max_flows)
{
	int i, err;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			i++;
			if (!strcmp(argv[i], "native"))
				*mode = MODE_NATIVE;
			else if (!strcmp(argv[i], "generic"))
				*mode = MODE_GENERIC;
			else
				return errorf(EXIT_USAGE, "unknown mode '%s': use native or generic", argv[i]);
		} else if (!strcmp(argv[i], "--max-flows") && i + 1 < argc) {
			err = parse_max_flows(argv[++i], max_flows);
			if (err)
				return err;
		} else if (argv[i][0] == '-' || *n == XDPFWD_MAX_IFACES) {
			return usage_load();
		} else {
			names[(*n)++] = argv[i];
		}
	}
	return *n ? EXIT_OK : usage_load();
}

/* fit_flow_table - resize the flow tables to @max_flows connections (0: keep
 * them) when no interface is loaded, keeping the rules; refuse otherwise. */
static int fit_flow_table(struct state *st, __u32 max_flows)
{
	__u32 loaded[XDPFWD_MAX_IFACES];
	char names[256] = "", name[IF_NAMESIZE];
	struct flow_capacity cap;
	int n, i;

	if (!max_flows || st->created)
		return EXIT_OK;
	if (state_flow_capacity(st, &cap))
		return errorf(EXIT_FAIL, "cannot read the size of the connection table in %s", st->pin_dir);
	if (cap.max_flows == max_flows)
		return EXIT_OK;
	n = loaded_ifindexes(st, loaded, XDPFWD_MAX_IFACES);
	if (!n)
		return state_resize(st, max_flows);
	for (i = 0; i < n; i++)
		if (if_indextoname(loaded[i], name) && strlen(names) + strlen(name) + 2 < sizeof(names))
			strcat(strcat(names, " "), name);
	return errorf(EXIT_USAGE, "the connection table holds %u connections and cannot be resized while interfaces are loaded: run 'xdpfwd unload%s' first (rules are kept), then load again with --max-flows %u ('xdpfwd unload --all' also works but removes the rules)",
		      cap.max_flows, names, max_flows);
}

int do_load(int argc, char **argv)
{
	__u32 ifindexes[XDPFWD_MAX_IFACES];
	bool attached[XDPFWD_MAX_IFACES] = {};
	enum xdp_mode mode = MODE_AUTO;
	__u32 max_flows = 0;
	int n = 0, i, err;
	struct state st;
	char **names;

	names = calloc(argc + 1, sizeof(*names));
	if (!names)
		return errorf(EXIT_FAIL, "out of memory");
	err = parse_load(argc, argv, names, &n, &mode, &max_flows);
	if (!err)
		err = parse_ifaces(n, names, ifindexes);
	if (!err)
		err = state_open_sized(&st, STATE_CREATE,
				       max_flows ? max_flows : XDPFWD_DEFAULT_MAX_FLOWS);
	if (err) {
		free(names);
		return err;
	}
	for (i = 0; i < n && !err; i++)
		err = check_one(&st, names[i], ifindexes[i], mode);
	if (!err)
		err = fit_flow_table(&st, max_flows);
	if (!err)
		err = upgrade(&st);
	for (i = 0; i < n && !err; i++)
		err = load_one(&st, names[i], ifindexes[i], mode, &attached[i]);
	if (err) {
		for (i = 0; i < n; i++)
			if (attached[i])
				unload_one(&st, ifindexes[i]);
	} else {
		err = iface_refresh_maps(&st);
		advise_egress(ifindexes, n);
	}
	state_close(&st, err);
	free(names);
	return err;
}

int do_unload(int argc, char **argv)
{
	__u32 ifindexes[XDPFWD_MAX_IFACES];
	char path[PATH_MAX];
	struct state st;
	int i, n, err;

	if (argc == 1 && !strcmp(argv[0], "--all")) {
		/* Also a state of other layouts: this is the way out of one. */
		err = state_open(&st, STATE_READ_ANY);
		if (err || st.lock_fd < 0) {
			state_close(&st, false);
			return err;
		}
		if (flock(st.lock_fd, LOCK_EX)) {
			state_close(&st, false);
			return errorf(EXIT_FAIL, "cannot lock %s: %s", st.pin_dir, strerror(errno));
		}
		if (state_exists(&st))
			rules_release_neighbours(&st);
		n = loaded_ifindexes(&st, ifindexes, XDPFWD_MAX_IFACES);
		for (i = 0; i < n; i++)
			tc_detach(ifindexes[i]);
		err = state_destroy(&st);
		state_close(&st, false);
		refresh_fib_via_lo(NULL, 0);
		if (err)
			return errorf(EXIT_FAIL, "cannot remove %s: %s", opt_pin_dir, strerror(-err));
		return EXIT_OK;
	}
	if (!argc || argc > XDPFWD_MAX_IFACES)
		return errorf(EXIT_USAGE, "usage: xdpfwd unload IFACE... | xdpfwd unload --all");
	for (i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return errorf(EXIT_USAGE, "usage: xdpfwd unload IFACE... | xdpfwd unload --all");
	err = parse_ifaces(argc, argv, ifindexes);
	if (!err)
		err = state_open(&st, STATE_CHANGE);
	if (err)
		return err;
	for (i = 0; i < argc; i++) {
		link_pin_path(&st, ifindexes[i], path, sizeof(path));
		if (access(path, F_OK)) {
			state_close(&st, false);
			return errorf(EXIT_USAGE, "%s is not loaded by xdpfwd (see 'xdpfwd status')", argv[i]);
		}
	}
	for (i = 0; i < argc; i++)
		unload_one(&st, ifindexes[i]);
	err = iface_refresh_maps(&st);
	state_close(&st, err);
	return err;
}

static __u64 count_rules(int fd)
{
	__u32 key, next;
	__u64 n = 0;
	bool more;

	more = !bpf_map_get_next_key(fd, NULL, &next);
	while (more) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		n++;
	}
	return n;
}

int reasons_read(const struct state *st, __u64 *sums)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *vals;
	__u32 r;
	int c;

	memset(sums, 0, XDPFWD_R_MAX * sizeof(*sums));
	if (ncpus < 0)
		return ncpus;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (r = 0; r < XDPFWD_R_MAX; r++)
		if (!bpf_map_lookup_elem(st->map_fd[MAP_REASONS], &r, vals))
			for (c = 0; c < ncpus; c++)
				sums[r] += vals[c];
	free(vals);
	return 0;
}

void print_reasons(const struct state *st)
{
	static const char *const names[XDPFWD_R_MAX] = XDPFWD_REASON_NAMES;
	__u64 sums[XDPFWD_R_MAX];
	__u32 r;

	reasons_read(st, sums);
	out_open_object("reasons");
	out_text("packets by outcome:\n");
	for (r = 0; r < XDPFWD_R_MAX; r++) {
		out_text("  %-20s", names[r]);
		out_u64(names[r], "%llu\n", sums[r]);
	}
	out_close_object();
}

/* print_flows - the live connections, and what the tables can hold. */
static void print_flows(const struct state *st)
{
	struct flow_capacity cap = {};
	__u64 flows = 0;

	if (ct_count_valid(st, &flows, NULL))
		warnf("cannot read the connection tables: the count is incomplete");
	state_flow_capacity(st, &cap);
	out_u64("flows", ", connections: %llu", flows);
	out_u64("max_flows", " (room for %llu", cap.max_flows);
	out_u64("max_new_flows", " + %llu unanswered", cap.max_new_flows);
	out_u64("flow_table_bytes", NULL, cap.bytes);
	out_text(", %.1f MiB)\n", cap.bytes / 1048576.0);
}

/* link_id - the kernel's id of our XDP link on @ifindex, or 0. */
static __u32 link_id(const struct state *st, __u32 ifindex)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	link_pin_path(st, ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

/* print_programs - what loaded the running programs, beside this binary
 * (of build @own): the two differ until 'load' upgrades them, or when this
 * binary cannot use the state (its reason follows). */
static void print_programs(const struct state *st, const char *own)
{
	struct xdpfwd_meta meta;
	bool known = !state_running(st, &meta);
	char run[20] = "";

	if (known) {
		snprintf(run, sizeof(run), "%016llx", (unsigned long long)meta.build);
		out_string("running_version", "programs: xdpfwd %s", meta.version);
		out_string("program_build", ", build %s", run);
	} else {
		out_null("running_version", "programs: %s", "of an unrecorded version");
		out_null("program_build", NULL, NULL);
	}
	if (known && !strcmp(run, own) && !strcmp(meta.version, XDPFWD_VERSION))
		out_text(" (this binary's)\n");
	else
		out_text(" (this binary: xdpfwd %s, build %s%s)\n", XDPFWD_VERSION, own,
			 st->foreign[0] ? ", which cannot take them over" :
			 "; 'xdpfwd load IFACE' upgrades them");
	if (st->foreign[0])
		out_string("incompatible", "this xdpfwd cannot use the state: %s; 'xdpfwd unload --all' starts afresh\n",
			   st->foreign);
	else
		out_null("incompatible", NULL, NULL);
}

static void print_iface(const struct state *st, __u32 ifindex)
{
	char name[IF_NAMESIZE];
	bool exists = if_indextoname(ifindex, name);

	out_open_object(NULL);
	out_string("ifname", "  %-16s", exists ? name : "(gone)");
	out_u64("ifindex", " ifindex %-4llu", ifindex);
	out_string("mode", " %-8s", exists ? mode_name(attached_mode(ifindex)) : "none");
	out_u64("prog_id", " prog %-6llu", exists ? attached_prog_id(ifindex) : 0);
	out_u64("link_id", NULL, link_id(st, ifindex));
	out_bool("tc", " tc %-4s", exists && tc_attached(ifindex));
	out_bool("xdp_egress", " xdp-egress %s\n", exists && xdp_egress_ok(ifindex));
	out_close_object();
}

int do_status(int argc, char **argv)
{
	__u32 ifindexes[XDPFWD_MAX_IFACES];
	struct state st;
	char build[20];
	int i, n, err;
	bool loaded;

	(void)argv;
	if (argc)
		return errorf(EXIT_USAGE, "usage: xdpfwd status");
	snprintf(build, sizeof(build), "%016llx", (unsigned long long)state_build());
	err = state_open(&st, STATE_READ_ANY);
	if (err)
		return err;
	loaded = state_exists(&st) || st.foreign[0];
	out_open_object(NULL);
	out_string("version", "xdpfwd %s", XDPFWD_VERSION);
	out_string("build", " (build %s)", build);
	out_string("pin_dir", ", state in %s\n", st.pin_dir);
	out_bool("loaded", NULL, loaded);
	if (!loaded) {
		out_text("not loaded: run 'xdpfwd load IFACE'\n");
		out_null("running_version", NULL, NULL);
		out_null("program_build", NULL, NULL);
		out_null("incompatible", NULL, NULL);
		out_open_array("interfaces");
		out_close_array();
		out_u64("rules", NULL, 0);
		out_u64("flows", NULL, 0);
		out_u64("max_flows", NULL, 0);
		out_u64("max_new_flows", NULL, 0);
		out_u64("flow_table_bytes", NULL, 0);
		out_close_object();
		state_close(&st, false);
		return EXIT_OK;
	}
	print_programs(&st, build);
	n = loaded_ifindexes(&st, ifindexes, XDPFWD_MAX_IFACES);
	out_text("interfaces:%s\n", n ? "" : " none (run 'xdpfwd load IFACE')");
	out_open_array("interfaces");
	for (i = 0; i < n; i++)
		print_iface(&st, ifindexes[i]);
	out_close_array();
	/* The maps of a state of other layouts stay closed. */
	if (!st.foreign[0]) {
		out_u64("rules", "rules: %llu", count_rules(st.map_fd[MAP_RULES]));
		print_flows(&st);
		print_reasons(&st);
	}
	out_close_object();
	state_close(&st, false);
	return EXIT_OK;
}
