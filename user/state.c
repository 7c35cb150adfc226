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
#include <bpf/btf.h>
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
	[MAP_EXPRESS] = "express_cache",
};

static const char *const prog_pins[PROG_COUNT] = {
	[PROG_NATIVE] = "prog_native",
	[PROG_GENERIC] = "prog_generic",
	[PROG_TC] = "prog_tc",
	[PROG_TC_INGRESS] = "prog_tc_ingress",
};

#define META_PIN	"meta"
#define BTF_MAX_DEPTH	16	/* nesting of a map's key or value type */

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

/* pin_fd - pin object @fd as @name in the state in place of what was pinned
 * there, at once: pinned beside it, then renamed over it, so that no reader
 * and no crash ever finds the name missing. 0 or -errno. */
static int pin_fd(const struct state *st, const char *name, int fd)
{
	char path[PATH_MAX], tmp[PATH_MAX], tmp_name[NAME_MAX];
	int err = 0;

	/* No dot: bpffs refuses names with one. */
	snprintf(tmp_name, sizeof(tmp_name), "tmp_%s", name);
	state_path(st, path, sizeof(path), name);
	state_path(st, tmp, sizeof(tmp), tmp_name);
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
	}
	return err;
}

/* pinned_map - the map pinned as @name in the state: an fd, or -errno
 * (-ENOENT: none is). */
static int pinned_map(const struct state *st, const char *name)
{
	char path[PATH_MAX];
	int fd;

	state_path(st, path, sizeof(path), name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

/* is_flow_table - whether @map is a flow table, whose size is the state's
 * own (load --max-flows), not part of the layout. */
static bool is_flow_table(const struct bpf_map *map)
{
	return !strcmp(bpf_map__name(map), map_names[MAP_FLOWS]) ||
	       !strcmp(bpf_map__name(map), map_names[MAP_FLOWS_NEW]);
}

/* state_map - whether @map is one of the state's, pinned by name as its
 * definition says, rather than the object's own data or scratch space. Only
 * until keep_maps takes the pin paths away. */
static bool state_map(const struct bpf_map *map)
{
	return !bpf_map__is_internal(map) && bpf_map__pin_path(map);
}

/* keep_maps - have @obj use the maps pinned under its state maps' names,
 * the flow tables only with @keep_flows; it makes the others when it loads.
 * By fd, not by pin: libbpf 1.1 refuses to reuse a pinned devmap (the
 * kernel adds a flag to it). A kept map takes the pinned one's size (the
 * flow tables'). *@state gets a bit for each state map, by its position. */
static int keep_maps(struct state *st, struct bpf_object *obj, bool keep_flows, __u64 *state)
{
	struct bpf_map *map;
	int fd, err, i;

	*state = 0;
	for (i = 0, map = bpf_object__next_map(obj, NULL); map;
	     i++, map = bpf_object__next_map(obj, map)) {
		if (i == 64)
			return -E2BIG;
		if (!state_map(map))
			continue;
		*state |= 1ULL << i;
		err = bpf_map__set_pin_path(map, NULL);
		if (err)
			return err;
		if (!keep_flows && is_flow_table(map))
			continue;
		fd = pinned_map(st, bpf_map__name(map));
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			return fd;
		err = bpf_map__reuse_fd(map, fd);
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

/* pin_made_maps - pin the state maps (@state, as keep_maps found them) @obj
 * made rather than kept, in place of any pinned under their names. 0 or
 * -errno. */
static int pin_made_maps(struct state *st, struct bpf_object *obj, __u64 state)
{
	struct bpf_map_info pinned, made;
	struct bpf_map *map;
	int fd, err, i;
	bool kept;

	for (i = 0, map = bpf_object__next_map(obj, NULL); map;
	     i++, map = bpf_object__next_map(obj, map)) {
		if (!(state & (1ULL << i)))
			continue;
		fd = pinned_map(st, bpf_map__name(map));
		kept = fd >= 0 && !map_info(fd, &pinned) && !map_info(bpf_map__fd(map), &made) &&
		       pinned.id == made.id;
		if (fd >= 0)
			close(fd);
		err = kept ? 0 : pin_fd(st, bpf_map__name(map), bpf_map__fd(map));
		if (err)
			return err;
	}
	return 0;
}

static void progs_init(struct state_progs *progs)
{
	int i;

	for (i = 0; i < PROG_COUNT; i++)
		progs->fd[i] = -1;
}

void state_progs_close(struct state_progs *progs)
{
	int i;

	for (i = 0; i < PROG_COUNT; i++)
		if (progs->fd[i] >= 0)
			close(progs->fd[i]);
	progs_init(progs);
}

/* take_progs - fds of @skel's programs of its own, to outlive it. */
static int take_progs(struct xdpfwd_bpf *skel, struct state_progs *progs)
{
	const struct bpf_program *p[PROG_COUNT] = {
		[PROG_NATIVE] = skel->progs.xdpfwd_native,
		[PROG_GENERIC] = skel->progs.xdpfwd_generic,
		[PROG_TC] = skel->progs.xdpfwd_tc_egress,
		[PROG_TC_INGRESS] = skel->progs.xdpfwd_tc_ingress,
	};
	int i, err;

	for (i = 0; i < PROG_COUNT; i++) {
		progs->fd[i] = fcntl(bpf_program__fd(p[i]), F_DUPFD_CLOEXEC, 0);
		if (progs->fd[i] < 0) {
			err = -errno;
			state_progs_close(progs);
			return err;
		}
	}
	return 0;
}

/* load_objects - load this binary's BPF object on the state's maps (see
 * keep_maps), flow tables it makes sized for @max_flows connections. The
 * maps it made are pinned only once the programs have loaded, so that a
 * refusal leaves the state as it was. The programs go to @progs, unpinned.
 * Returns EXIT_OK or an exit code after printing the error. */
static int load_objects(struct state *st, __u32 max_flows, bool keep_flows,
			struct state_progs *progs)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = st->pin_dir);
	struct xdpfwd_bpf *skel;
	__u64 state;
	int err;

	progs_init(progs);
	skel = xdpfwd_bpf__open_opts(&opts);
	if (!skel)
		return errorf(EXIT_FAIL, "cannot open the embedded BPF object: %s", strerror(errno));
	err = bpf_map__set_max_entries(skel->maps.flows, 2 * max_flows);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.flows_new, 2 * XDPFWD_NEW_FLOWS(max_flows));
	if (!err)
		err = keep_maps(st, skel->obj, keep_flows, &state);
	if (!err)
		err = xdpfwd_bpf__load(skel);
	if (err) {
		xdpfwd_bpf__destroy(skel);
		return errorf(EXIT_FAIL, "the kernel refused the BPF programs: %s%s (the verifier log, if any, is above)",
			      strerror(-err), permission_hint(-err));
	}
	err = pin_made_maps(st, skel->obj, state);
	if (!err)
		err = take_progs(skel, progs);
	xdpfwd_bpf__destroy(skel);
	if (err)
		return errorf(EXIT_FAIL, "cannot pin the maps in %s: %s", st->pin_dir, strerror(-err));
	return EXIT_OK;
}

int state_progs_pinned(const struct state *st, struct state_progs *progs)
{
	int i, err;

	progs_init(progs);
	for (i = 0; i < PROG_COUNT; i++) {
		progs->fd[i] = state_prog_fd(st, prog_pins[i]);
		if (progs->fd[i] < 0) {
			err = -errno;
			state_progs_close(progs);
			return err;
		}
	}
	return 0;
}

int state_progs_pin(struct state *st, const struct state_progs *progs)
{
	int i, err = 0;

	for (i = 0; i < PROG_COUNT && !err; i++)
		err = pin_fd(st, prog_pins[i], progs->fd[i]);
	return err;
}

__u64 state_build(void)
{
	const unsigned char *p;
	__u64 h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	size_t n, i;

	p = xdpfwd_bpf__elf_bytes(&n);
	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* meta_fd - the pinned record of what loaded the programs; with @make, made
 * (or made anew when of another layout) and pinned. An fd or -errno. */
static int meta_fd(const struct state *st, bool make)
{
	struct bpf_map_info info;
	int fd = pinned_map(st, META_PIN), err;

	if (fd >= 0 && !map_info(fd, &info) && info.type == BPF_MAP_TYPE_ARRAY &&
	    info.key_size == sizeof(__u32) && info.value_size == sizeof(struct xdpfwd_meta))
		return fd;
	if (fd >= 0) {
		close(fd);
		fd = -EPROTO;
	}
	if (!make)
		return fd;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdpfwd_meta", sizeof(__u32),
			    sizeof(struct xdpfwd_meta), 1, NULL);
	if (fd < 0)
		return fd;
	err = pin_fd(st, META_PIN, fd);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int state_running(const struct state *st, struct xdpfwd_meta *meta)
{
	__u32 zero = 0;
	int fd = meta_fd(st, false), err;

	if (fd < 0)
		return fd;
	err = bpf_map_lookup_elem(fd, &zero, meta) ? -errno : 0;
	close(fd);
	if (!err && !meta->build)
		err = -ENOENT;	/* made, never written */
	meta->version[sizeof(meta->version) - 1] = '\0';
	return err;
}

int state_record_build(struct state *st)
{
	struct xdpfwd_meta meta = { .build = state_build() };
	__u32 zero = 0;
	int fd, err;

	snprintf(meta.version, sizeof(meta.version), "%s", XDPFWD_VERSION);
	fd = meta_fd(st, true);
	err = fd < 0 ? fd : 0;
	if (!err && bpf_map_update_elem(fd, &zero, &meta, BPF_ANY))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		return errorf(EXIT_FAIL, "cannot record the programs' version in %s: %s",
			      st->pin_dir, strerror(-err));
	return EXIT_OK;
}

/* install - load this binary's programs (see load_objects), new flow tables
 * for @max_flows connections, and pin them as the state's with the record of
 * their build. For a state no interface runs: attachments are not moved. */
static int install(struct state *st, __u32 max_flows)
{
	struct state_progs progs;
	int err = load_objects(st, max_flows, false, &progs);

	if (!err)
		err = state_progs_pin(st, &progs);
	if (err < 0)
		err = errorf(EXIT_FAIL, "cannot pin the programs in %s: %s", st->pin_dir,
			     strerror(-err));
	if (!err)
		err = state_record_build(st);
	state_progs_close(&progs);
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

/* open_maps - the state's maps; with @partial, one not pinned (a map new to
 * this version, which load makes) is left at -1. */
static int open_maps(struct state *st, bool partial)
{
	int i, fd;

	for (i = 0; i < MAP_COUNT; i++) {
		fd = pinned_map(st, map_names[i]);
		st->map_fd[i] = fd < 0 ? -1 : fd;
		if (fd >= 0 || (partial && fd == -ENOENT))
			continue;
		if (fd == -ENOENT)
			return errorf(EXIT_FAIL, "the state in %s has no map %s (it may be of an older version): run 'xdpfwd load IFACE' to complete it",
				      st->pin_dir, map_names[i]);
		return errorf(EXIT_FAIL, "cannot open map %s in %s: %s%s", map_names[i],
			      st->pin_dir, strerror(-fd), permission_hint(-fd));
	}
	return EXIT_OK;
}

/* The kernel's BTF of the pinned maps, one object at a time: they mostly
 * share one. */
struct btf_cache {
	__u32 id;
	struct btf *btf;
};

static const struct btf *kernel_btf(struct btf_cache *c, __u32 id)
{
	if (c->id != id) {
		btf__free(c->btf);
		c->btf = btf__load_from_kernel_by_id(id);
		c->id = c->btf ? id : 0;
	}
	return c->btf;
}

static bool btf_same(const struct btf *ba, __u32 a, const struct btf *bb, __u32 b, int depth);

/* btf_members_same - the members of struct or union @ta and @tb (of equal
 * vlen): names, offsets and types. */
static bool btf_members_same(const struct btf *ba, const struct btf_type *ta,
			     const struct btf *bb, const struct btf_type *tb, int depth)
{
	const struct btf_member *ma = btf_members(ta), *mb = btf_members(tb);
	int i;

	for (i = 0; i < btf_vlen(ta); i++)
		if (ma[i].offset != mb[i].offset ||
		    strcmp(btf__name_by_offset(ba, ma[i].name_off), btf__name_by_offset(bb, mb[i].name_off)) ||
		    !btf_same(ba, ma[i].type, bb, mb[i].type, depth + 1))
			return false;
	return true;
}

/* btf_enum_same - the values of enum @ta and @tb (of equal vlen). */
static bool btf_enum_same(const struct btf *ba, const struct btf_type *ta,
			  const struct btf *bb, const struct btf_type *tb)
{
	const struct btf_enum *ea = btf_enum(ta), *eb = btf_enum(tb);
	int i;

	for (i = 0; i < btf_vlen(ta); i++)
		if (ea[i].val != eb[i].val ||
		    strcmp(btf__name_by_offset(ba, ea[i].name_off), btf__name_by_offset(bb, eb[i].name_off)))
			return false;
	return true;
}

/* btf_same - whether type @a of @ba and type @b of @bb are laid out alike:
 * the same kinds, names, sizes, and members at the same offsets all the way
 * down, so that a field moved, renamed or retyped is a change even when the
 * size stays. */
static bool btf_same(const struct btf *ba, __u32 a, const struct btf *bb, __u32 b, int depth)
{
	const struct btf_type *ta = btf__type_by_id(ba, a), *tb = btf__type_by_id(bb, b);

	if (!ta || !tb || depth > BTF_MAX_DEPTH || ta->info != tb->info ||
	    strcmp(btf__name_by_offset(ba, ta->name_off), btf__name_by_offset(bb, tb->name_off)))
		return false;
	switch (btf_kind(ta)) {
	case BTF_KIND_INT:	/* followed by its encoding, offset and bits */
		return ta->size == tb->size && *(const __u32 *)(ta + 1) == *(const __u32 *)(tb + 1);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return ta->size == tb->size && btf_members_same(ba, ta, bb, tb, depth);
	case BTF_KIND_ENUM:
		return ta->size == tb->size && btf_enum_same(ba, ta, bb, tb);
	case BTF_KIND_ARRAY:
		return btf_array(ta)->nelems == btf_array(tb)->nelems &&
		       btf_same(ba, btf_array(ta)->type, bb, btf_array(tb)->type, depth + 1);
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_CONST:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_RESTRICT:
		return btf_same(ba, ta->type, bb, tb->type, depth + 1);
	default:
		return ta->size == tb->size;
	}
}

/* btf_diff - whether the key or value of pinned map @info is laid out
 * otherwise than @map's in @obj_btf, said into @buf. A map made without BTF,
 * either side, is judged by its sizes alone. */
static bool btf_diff(const struct bpf_map_info *info, const struct bpf_map *map,
		     const struct btf *obj_btf, struct btf_cache *kc, char *buf, size_t len)
{
	const __u32 ids[2][2] = {
		{ info->btf_key_type_id, bpf_map__btf_key_type_id(map) },
		{ info->btf_value_type_id, bpf_map__btf_value_type_id(map) },
	};
	static const char *const what[2] = { "key", "value" };
	const struct btf_type *t;
	const struct btf *kb;
	int i;

	kb = info->btf_id && obj_btf ? kernel_btf(kc, info->btf_id) : NULL;
	for (i = 0; kb && i < 2; i++) {
		if (!ids[i][0] || !ids[i][1] || btf_same(kb, ids[i][0], obj_btf, ids[i][1], 0))
			continue;
		t = btf__type_by_id(obj_btf, ids[i][1]);
		snprintf(buf, len, "%s type %s%s changed", what[i],
			 btf_is_struct(t) ? "struct " : btf_is_union(t) ? "union " : "",
			 btf__name_by_offset(obj_btf, t->name_off));
		return true;
	}
	return false;
}

/* map_flags - pinned map @info's flags as its definition gave them: the
 * kernel forces BPF_F_RDONLY_PROG on devmaps (libbpf's check drops it too). */
static __u32 map_flags(const struct bpf_map_info *info)
{
	if (info->type == BPF_MAP_TYPE_DEVMAP || info->type == BPF_MAP_TYPE_DEVMAP_HASH)
		return info->map_flags & ~BPF_F_RDONLY_PROG;
	return info->map_flags;
}

/* size_diff - the first size or flag in which pinned map @info differs
 * from @map, said into @buf as "value size 72 -> 80". */
static bool size_diff(const struct bpf_map_info *info, const struct bpf_map *map,
		      char *buf, size_t len)
{
	const struct { const char *what; __u32 was, now; } f[] = {
		{ "key size", info->key_size, bpf_map__key_size(map) },
		{ "value size", info->value_size, bpf_map__value_size(map) },
		{ "max entries", info->max_entries,
		  is_flow_table(map) ? info->max_entries : bpf_map__max_entries(map) },
		{ "flags", map_flags(info), bpf_map__map_flags(map) },
	};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].was == f[i].now)
			continue;
		snprintf(buf, len, "%s %u -> %u", f[i].what, f[i].was, f[i].now);
		return true;
	}
	return false;
}

static const char *map_type_str(enum bpf_map_type type)
{
	const char *s = libbpf_bpf_map_type_str(type);

	return s ? s : "unknown";
}

/* map_diff - how the map pinned under @map's name differs from @map as this
 * binary defines it, said into @buf as "map flows: value size 72 -> 80";
 * left alone when alike or not pinned. 0 or -errno. */
static int map_diff(const struct state *st, const struct bpf_map *map, const struct btf *obj_btf,
		    struct btf_cache *kc, char *buf, size_t len)
{
	const char *name = bpf_map__name(map);
	struct bpf_map_info info;
	char what[96] = "";
	int fd, err;

	fd = pinned_map(st, name);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	err = map_info(fd, &info);
	close(fd);
	if (err)
		return err;
	if (info.type != bpf_map__type(map))
		snprintf(what, sizeof(what), "type %s -> %s", map_type_str(info.type),
			 map_type_str(bpf_map__type(map)));
	else if (!size_diff(&info, map, what, sizeof(what)))
		btf_diff(&info, map, obj_btf, kc, what, sizeof(what));
	if (what[0])
		snprintf(buf, len, "map %s: %s", name, what);
	return 0;
}

/* check_layouts - put into st->foreign the first map pinned in the state
 * that this binary lays out otherwise, so that no command reads or writes a
 * map through the wrong layout. Returns EXIT_OK or an exit code. */
static int check_layouts(struct state *st)
{
	struct btf_cache kc = {};
	struct xdpfwd_bpf *skel;
	struct bpf_map *map;
	int err = 0;

	st->foreign[0] = '\0';
	skel = xdpfwd_bpf__open();
	if (!skel)
		return errorf(EXIT_FAIL, "cannot open the embedded BPF object: %s", strerror(errno));
	bpf_object__for_each_map(map, skel->obj)
		if (!err && !st->foreign[0] && state_map(map))
			err = map_diff(st, map, bpf_object__btf(skel->obj), &kc, st->foreign,
				       sizeof(st->foreign));
	btf__free(kc.btf);
	xdpfwd_bpf__destroy(skel);
	if (err)
		return errorf(EXIT_FAIL, "cannot read the maps in %s: %s%s", st->pin_dir,
			      strerror(-err), permission_hint(-err));
	return EXIT_OK;
}

/* running_str - what loaded the state's programs, for a message. */
static const char *running_str(const struct state *st, char *buf, size_t len)
{
	struct xdpfwd_meta meta;

	if (state_running(st, &meta))
		return "of an unrecorded version";
	snprintf(buf, len, "of xdpfwd %s, build %016llx", meta.version,
		 (unsigned long long)meta.build);
	return buf;
}

/* refuse_foreign - the error for a state this binary lays out otherwise. */
static int refuse_foreign(const struct state *st)
{
	char run[64];

	return errorf(EXIT_FAIL, "%s: this version (xdpfwd %s, build %016llx) cannot take over the running state (%s); run 'xdpfwd unload --all' to start afresh (connections and rules are lost: save the rules first with the xdpfwd that made the state, 'xdpfwd save > FILE', to 'xdpfwd apply FILE' after the new load)",
		      st->foreign, XDPFWD_VERSION, (unsigned long long)state_build(),
		      running_str(st, run, sizeof(run)));
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

static bool reading(enum state_open how)
{
	return how == STATE_READ || how == STATE_READ_ANY;
}

int state_open_sized(struct state *st, enum state_open how, __u32 max_flows)
{
	char path[PATH_MAX];
	int err, i;

	st->pin_dir = opt_pin_dir;
	st->lock_fd = -1;
	st->created = false;
	st->foreign[0] = '\0';
	for (i = 0; i < MAP_COUNT; i++)
		st->map_fd[i] = -1;

	if (!reading(how) && !may_change())
		return errorf(EXIT_FAIL, "changing the forward needs root (CAP_BPF and CAP_NET_ADMIN): run it with sudo");
	err = ensure_bpffs(st->pin_dir);
	if (err)
		return err;
	if (how == STATE_CREATE && mkdir(st->pin_dir, 0700) && errno != EEXIST)
		return errorf(EXIT_FAIL, "cannot create %s: %s%s", st->pin_dir, strerror(errno),
			      permission_hint(errno));
	st->lock_fd = open(st->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->lock_fd < 0) {
		if (errno == ENOENT && reading(how))
			return EXIT_OK;
		if (errno == ENOENT)
			return errorf(EXIT_USAGE, "xdpfwd is not loaded (no %s); run 'xdpfwd load IFACE' first",
				      st->pin_dir);
		return errorf(EXIT_FAIL, "cannot open %s: %s%s", st->pin_dir, strerror(errno),
			      permission_hint(errno));
	}
	if (flock(st->lock_fd, reading(how) ? LOCK_SH : LOCK_EX))
		return errorf(EXIT_FAIL, "cannot lock %s: %s", st->pin_dir, strerror(errno));
	err = check_layouts(st);
	if (err)
		return err;
	if (st->foreign[0])
		return how == STATE_READ_ANY ? EXIT_OK : refuse_foreign(st);

	state_path(st, path, sizeof(path), prog_pins[PROG_NATIVE]);
	if (access(path, F_OK)) {
		if (how != STATE_CREATE) {
			if (reading(how))
				return EXIT_OK;
			return errorf(EXIT_USAGE, "xdpfwd is not loaded; run 'xdpfwd load IFACE' first");
		}
		err = install(st, max_flows);
		if (err) {
			state_destroy(st);
			return err;
		}
		st->created = true;
	}
	err = open_maps(st, how == STATE_CREATE);
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
	int err = install(st, max_flows);

	close_maps(st);
	return err ? err : open_maps(st, false);
}

int state_progs_load(struct state *st, struct state_progs *progs)
{
	int err = load_objects(st, XDPFWD_DEFAULT_MAX_FLOWS, true, progs);

	close_maps(st);
	return err ? err : open_maps(st, false);
}

bool state_current(const struct state *st)
{
	struct xdpfwd_meta meta;
	int i;

	for (i = 0; i < MAP_COUNT; i++)
		if (st->map_fd[i] < 0)
			return false;
	return !state_running(st, &meta) && meta.build == state_build() &&
	       !strcmp(meta.version, XDPFWD_VERSION);
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
