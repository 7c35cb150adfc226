// SPDX-License-Identifier: GPL-2.0
/* The pinned state: one bpffs folder holding maps, programs and XDP links, so
 * the CLI keeps nothing between invocations and the forward outlives it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "output.h"
#include "xdpfwd.skel.h"

static const char *const map_names[MAP_COUNT] = {
	[MAP_RULES] = "rules",
	[MAP_RULE_PORTS] = "rule_ports",
	[MAP_ALLOW] = "allow",
	[MAP_RULE_STATS] = "rule_stats",
	[MAP_RULE_GENS] = "rule_gens",
	[MAP_FLOWS] = "flows",
	[MAP_FLOWS_NEW] = "flows_new",
	[MAP_FRAGS] = "frags",
	[MAP_CONFIG] = "config",
	[MAP_LOCAL_ADDRS] = "local_addrs",
	[MAP_TX_PORTS] = "tx_ports",
	[MAP_REASONS] = "reasons",
};

static const char *const prog_pins[] = { "prog_native", "prog_generic", "prog_tc",
					  "prog_tc_ingress" };
#define N_PROGS (sizeof(prog_pins) / sizeof(prog_pins[0]))

void state_path(const struct state *st, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", st->pin_dir, name);
}

bool state_exists(const struct state *st)
{
	return st->map_fd[MAP_RULES] >= 0;
}

/* permission_hint - what to tell a user whose call the kernel refused. */
static const char *permission_hint(int err)
{
	return err == EPERM || err == EACCES ? " (xdpfwd needs root: run it with sudo)" : "";
}

/* may_change - whether this process may load programs and attach them:
 * CAP_SYS_ADMIN, or CAP_BPF with CAP_NET_ADMIN. */
static bool may_change(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	__u64 eff;

	if (syscall(SYS_capget, &hdr, data))
		return geteuid() == 0;
	eff = data[0].effective | (__u64)data[1].effective << 32;
	return (eff & (1ULL << CAP_SYS_ADMIN)) ||
	       ((eff & (1ULL << CAP_BPF)) && (eff & (1ULL << CAP_NET_ADMIN)));
}

/* ensure_bpffs - make sure the pin folder's parent is a mounted bpffs,
 * mounting /sys/fs/bpf when a fresh machine has not. */
static int ensure_bpffs(const char *pin_dir)
{
	char parent[PATH_MAX];
	struct statfs sfs;
	char *slash;

	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return errorf(EXIT_USAGE, "pin folder '%s' must be inside a bpffs mount, e.g. /sys/fs/bpf/xdpfwd",
			      pin_dir);
	*slash = '\0';
	if (statfs(parent, &sfs))
		return errorf(EXIT_FAIL, "cannot use '%s': %s", parent, strerror(errno));
	if (sfs.f_type == BPF_FS_MAGIC)
		return EXIT_OK;
	if (strcmp(parent, "/sys/fs/bpf"))
		return errorf(EXIT_USAGE, "'%s' is not a bpffs mount; choose a pin folder under /sys/fs/bpf",
			      parent);
	if (mount("bpf", parent, "bpf", 0, "mode=0700"))
		return errorf(EXIT_FAIL, "cannot mount bpffs on %s: %s%s", parent,
			      strerror(errno), permission_hint(errno));
	return EXIT_OK;
}

/* pin_replacing - pin object @fd as @name in the state, replacing what was
 * pinned there. */
static int pin_replacing(struct state *st, const char *name, int fd)
{
	char path[PATH_MAX];

	state_path(st, path, sizeof(path), name);
	if (unlink(path) && errno != ENOENT)
		return errorf(EXIT_FAIL, "cannot replace %s: %s", path, strerror(errno));
	if (bpf_obj_pin(fd, path))
		return errorf(EXIT_FAIL, "cannot pin %s: %s", path, strerror(errno));
	return EXIT_OK;
}

/* keep_maps - have @obj use the state's open maps, except the flow tables,
 * which it makes anew and leaves unpinned. By fd, not by pin: libbpf 1.1
 * refuses to reuse a pinned devmap (the kernel adds a flag to it). */
static int keep_maps(struct state *st, struct bpf_object *obj)
{
	struct bpf_map *map;
	int err, i;

	bpf_object__for_each_map(map, obj) {
		err = bpf_map__set_pin_path(map, NULL);
		for (i = 0; i < MAP_COUNT && !err; i++)
			if (i != MAP_FLOWS && i != MAP_FLOWS_NEW &&
			    !strcmp(bpf_map__name(map), map_names[i]))
				err = bpf_map__reuse_fd(map, st->map_fd[i]);
		if (err)
			return err;
	}
	return 0;
}

/* load_objects - load the embedded BPF object with flow tables for
 * @max_flows connections, pinning its maps and programs in the new state.
 * With @new_tables, the state exists: the object takes its maps but for the
 * flow tables, which are made anew and replace the pinned ones only once
 * the programs have loaded, so that a refusal leaves the state as it was. */
static int load_objects(struct state *st, __u32 max_flows, bool new_tables)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = st->pin_dir);
	struct bpf_program *progs[N_PROGS];
	struct bpf_map *tables[2];
	struct xdpfwd_bpf *skel;
	int err, i;

	skel = xdpfwd_bpf__open_opts(&opts);
	if (!skel)
		return errorf(EXIT_FAIL, "cannot open the embedded BPF object: %s", strerror(errno));
	tables[0] = skel->maps.flows;
	tables[1] = skel->maps.flows_new;
	err = bpf_map__set_max_entries(tables[0], 2 * max_flows);
	if (!err)
		err = bpf_map__set_max_entries(tables[1], 2 * XDPFWD_NEW_FLOWS(max_flows));
	if (!err && new_tables)
		err = keep_maps(st, skel->obj);
	if (!err)
		err = xdpfwd_bpf__load(skel);
	if (err) {
		xdpfwd_bpf__destroy(skel);
		return errorf(EXIT_FAIL, "the kernel refused the BPF programs: %s%s (the verifier log, if any, is above)",
			      strerror(-err), permission_hint(-err));
	}
	for (i = 0; i < 2 && !err && new_tables; i++)
		err = pin_replacing(st, bpf_map__name(tables[i]), bpf_map__fd(tables[i]));
	progs[0] = skel->progs.xdpfwd_native;
	progs[1] = skel->progs.xdpfwd_generic;
	progs[2] = skel->progs.xdpfwd_tc_egress;
	progs[3] = skel->progs.xdpfwd_tc_ingress;
	for (i = 0; i < (int)N_PROGS && !err; i++)
		err = pin_replacing(st, prog_pins[i], bpf_program__fd(progs[i]));
	xdpfwd_bpf__destroy(skel);
	return err;
}

/* snat_port_range - the source ports SNAT may use: the larger stretch of
 * unprivileged ports outside the kernel's ephemeral range, so a connection
 * of this host's own never shares a 4-tuple with a NATed one. */
static void snat_port_range(struct xdpfwd_config *cfg)
{
	unsigned int lo = 32768, hi = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2 || lo > hi || hi > 65535)
			lo = 32768, hi = 60999;
		fclose(f);
	}
	if (lo < 1024 + 1024 && hi > 65535 - 1024) {
		/* No room outside it: share it. */
		cfg->snat_port_min = XDPFWD_SNAT_PORT_MIN;
		cfg->snat_port_max = XDPFWD_SNAT_PORT_MAX;
	} else if (lo - 1024 >= 65535 - hi) {
		cfg->snat_port_min = 1024;
		cfg->snat_port_max = lo - 1;
	} else {
		cfg->snat_port_min = hi + 1;
		cfg->snat_port_max = 65535;
	}
}

/* write_default_config - the timeouts and SNAT ports a new state starts
 * with. */
static int write_default_config(struct state *st)
{
	struct xdpfwd_config cfg = { .timeout = XDPFWD_CT_DEFAULT_TIMEOUTS };
	__u32 zero = 0;

	snat_port_range(&cfg);
	if (bpf_map_update_elem(st->map_fd[MAP_CONFIG], &zero, &cfg, BPF_ANY))
		return errorf(EXIT_FAIL, "cannot write the connection timeouts: %s", strerror(errno));
	return EXIT_OK;
}

static int open_maps(struct state *st)
{
	char path[PATH_MAX];
	int i;

	for (i = 0; i < MAP_COUNT; i++) {
		state_path(st, path, sizeof(path), map_names[i]);
		st->map_fd[i] = bpf_obj_get(path);
		if (st->map_fd[i] < 0)
			return errorf(EXIT_FAIL, "state in %s is incomplete (%s: %s); run 'xdpfwd unload --all' and load again",
				      st->pin_dir, map_names[i], strerror(errno));
	}
	return EXIT_OK;
}

int state_prog_fd(const struct state *st, const char *pin_name)
{
	char path[PATH_MAX];

	state_path(st, path, sizeof(path), pin_name);
	return bpf_obj_get(path);
}

int state_open(struct state *st, enum state_open how)
{
	return state_open_sized(st, how, XDPFWD_DEFAULT_MAX_FLOWS);
}

int state_open_sized(struct state *st, enum state_open how, __u32 max_flows)
{
	char path[PATH_MAX];
	int err, i;

	st->pin_dir = opt_pin_dir;
	st->lock_fd = -1;
	st->created = false;
	for (i = 0; i < MAP_COUNT; i++)
		st->map_fd[i] = -1;

	if (how != STATE_READ && !may_change())
		return errorf(EXIT_FAIL, "changing the forward needs root (CAP_BPF and CAP_NET_ADMIN): run it with sudo");
	err = ensure_bpffs(st->pin_dir);
	if (err)
		return err;
	if (how == STATE_CREATE && mkdir(st->pin_dir, 0700) && errno != EEXIST)
		return errorf(EXIT_FAIL, "cannot create %s: %s%s", st->pin_dir, strerror(errno),
			      permission_hint(errno));
	st->lock_fd = open(st->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->lock_fd < 0) {
		if (errno == ENOENT && how == STATE_READ)
			return EXIT_OK;
		if (errno == ENOENT)
			return errorf(EXIT_USAGE, "xdpfwd is not loaded (no %s); run 'xdpfwd load IFACE' first",
				      st->pin_dir);
		return errorf(EXIT_FAIL, "cannot open %s: %s%s", st->pin_dir, strerror(errno),
			      permission_hint(errno));
	}
	if (flock(st->lock_fd, how == STATE_READ ? LOCK_SH : LOCK_EX))
		return errorf(EXIT_FAIL, "cannot lock %s: %s", st->pin_dir, strerror(errno));

	state_path(st, path, sizeof(path), prog_pins[0]);
	if (access(path, F_OK)) {
		if (how != STATE_CREATE) {
			if (how == STATE_READ)
				return EXIT_OK;
			return errorf(EXIT_USAGE, "xdpfwd is not loaded; run 'xdpfwd load IFACE' first");
		}
		err = load_objects(st, max_flows, false);
		if (err) {
			state_destroy(st);
			return err;
		}
		st->created = true;
	}
	err = open_maps(st);
	if (!err && st->created)
		err = write_default_config(st);
	if (err && st->created)
		state_destroy(st);
	return err;
}

/* close_maps - so that open_maps can open the pins afresh. */
static void close_maps(struct state *st)
{
	int i;

	for (i = 0; i < MAP_COUNT; i++) {
		if (st->map_fd[i] >= 0)
			close(st->map_fd[i]);
		st->map_fd[i] = -1;
	}
}

int state_resize(struct state *st, __u32 max_flows)
{
	int err = load_objects(st, max_flows, true);

	close_maps(st);
	return err ? err : open_maps(st);
}

/* map_memlock - the memory the kernel charges for map @fd (fdinfo). */
static __u64 map_memlock(int fd)
{
	unsigned long long bytes = 0;
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &bytes) == 1)
			break;
	fclose(f);
	return bytes;
}

/* map_max_entries - the size of map @fd, or 0. */
static __u32 map_max_entries(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

int state_flow_capacity(const struct state *st, struct flow_capacity *cap)
{
	int fd = st->map_fd[MAP_FLOWS], fd_new = st->map_fd[MAP_FLOWS_NEW];

	cap->max_flows = map_max_entries(fd) / 2;
	cap->max_new_flows = map_max_entries(fd_new) / 2;
	cap->bytes = map_memlock(fd) + map_memlock(fd_new);
	return cap->max_flows && cap->max_new_flows ? 0 : -EIO;
}

void state_close(struct state *st, bool failed)
{
	if (failed && st->created)
		state_destroy(st);
	close_maps(st);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	st->lock_fd = -1;
}

int state_destroy(struct state *st)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int err = 0;

	dir = opendir(st->pin_dir);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		state_path(st, path, sizeof(path), de->d_name);
		if (unlink(path))
			err = -errno;
	}
	closedir(dir);
	if (rmdir(st->pin_dir))
		err = -errno;
	return err;
}
