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
	[MAP_RULE_STATS] = "rule_stats",
	[MAP_FLOWS] = "flows",
	[MAP_LOCAL_ADDRS] = "local_addrs",
	[MAP_TX_PORTS] = "tx_ports",
	[MAP_REASONS] = "reasons",
};

static const char *const prog_pins[] = { "prog_native", "prog_generic", "prog_tc" };

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

/* load_objects - load the embedded BPF object, creating and pinning its maps
 * (or reusing pinned ones) and pinning its programs. */
static int load_objects(struct state *st)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = st->pin_dir);
	struct bpf_program *progs[3];
	struct xdpfwd_bpf *skel;
	char path[PATH_MAX];
	int err, i;

	skel = xdpfwd_bpf__open_opts(&opts);
	if (!skel)
		return errorf(EXIT_FAIL, "cannot open the embedded BPF object: %s", strerror(errno));
	err = xdpfwd_bpf__load(skel);
	if (err) {
		xdpfwd_bpf__destroy(skel);
		return errorf(EXIT_FAIL, "the kernel refused the BPF programs: %s%s (the verifier log, if any, is above)",
			      strerror(-err), permission_hint(-err));
	}
	progs[0] = skel->progs.xdpfwd_native;
	progs[1] = skel->progs.xdpfwd_generic;
	progs[2] = skel->progs.xdpfwd_tc_egress;
	for (i = 0; i < 3; i++) {
		state_path(st, path, sizeof(path), prog_pins[i]);
		err = bpf_program__pin(progs[i], path);
		if (err) {
			xdpfwd_bpf__destroy(skel);
			return errorf(EXIT_FAIL, "cannot pin %s: %s", path, strerror(-err));
		}
	}
	xdpfwd_bpf__destroy(skel);
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
		err = load_objects(st);
		if (err) {
			state_destroy(st);
			return err;
		}
		st->created = true;
	}
	return open_maps(st);
}

void state_close(struct state *st, bool failed)
{
	int i;

	if (failed && st->created)
		state_destroy(st);
	for (i = 0; i < MAP_COUNT; i++)
		if (st->map_fd[i] >= 0)
			close(st->map_fd[i]);
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
