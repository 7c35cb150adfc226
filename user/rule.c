// SPDX-License-Identifier: GPL-2.0
/* Rules: add, replace, del, list, stats. A rule lives in three maps: rules
 * (by id), rule_ports (each external port -> id) and allow (its source
 * CIDRs). Every argument is checked before any state is touched, and a
 * change that fails half-way is undone, so a refused command changes
 * nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "netlink.h"
#include "output.h"

static int by_id(const void *a, const void *b)
{
	const struct xdpfwd_rule *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

int rules_read(int fd, struct xdpfwd_rule **out)
{
	struct xdpfwd_rule *v = calloc(XDPFWD_MAX_RULES, sizeof(*v));
	__u32 key, next;
	int n = 0;
	bool more;

	if (!v)
		return -ENOMEM;
	more = !bpf_map_get_next_key(fd, NULL, &next);
	while (more && n < XDPFWD_MAX_RULES) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		if (!bpf_map_lookup_elem(fd, &key, &v[n]))
			n++;
	}
	qsort(v, n, sizeof(*v), by_id);
	*out = v;
	return n;
}

__u16 rule_backend_port(const struct xdpfwd_rule *r)
{
	return r->int_port ? r->int_port : r->ext_port;
}

int allow_read(int fd, __u32 id, struct allow_cidr *out)
{
	struct xdpfwd_allow_key key, next;
	int n = 0;
	bool more;

	more = !bpf_map_get_next_key(fd, NULL, &next);
	while (more && n < XDPFWD_MAX_ALLOW_RULE) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		if (key.rule_id == id)
			out[n++] = (struct allow_cidr){ key.addr, key.prefixlen - 32 };
	}
	return n;
}

static struct xdpfwd_allow_key allow_key(__u32 id, const struct allow_cidr *c)
{
	return (struct xdpfwd_allow_key){ .prefixlen = 32 + c->len, .rule_id = id, .addr = c->addr };
}

static bool cidr_in(const struct allow_cidr *c, const struct allow_cidr *list, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (list[i].addr == c->addr && list[i].len == c->len)
			return true;
	return false;
}

int allow_apply(int fd, __u32 id, const struct allow_cidr *want, int n_want,
		const struct allow_cidr *have, int n_have, bool additions)
{
	struct xdpfwd_allow_key key;
	__u32 one = 1;
	int i;

	if (additions) {
		for (i = 0; i < n_want; i++) {
			key = allow_key(id, &want[i]);
			if (!cidr_in(&want[i], have, n_have) &&
			    bpf_map_update_elem(fd, &key, &one, BPF_ANY))
				return -errno;
		}
		return 0;
	}
	for (i = 0; i < n_have; i++) {
		key = allow_key(id, &have[i]);
		if (!cidr_in(&have[i], want, n_want))
			bpf_map_delete_elem(fd, &key);
	}
	return 0;
}

__u8 rule_set_live(const struct state *st)
{
	struct xdpfwd_config cfg = {};
	__u32 zero = 0;

	bpf_map_lookup_elem(st->map_fd[MAP_CONFIG], &zero, &cfg);
	return cfg.rule_set & 1;
}

int ports_set(int fd, const struct xdpfwd_rule *r, __u8 set, bool on)
{
	struct xdpfwd_rule_key key = { .ext_addr = r->ext_addr, .proto = r->proto, .set = set };
	int i, err = 0;

	for (i = 0; i < r->nports && !err; i++) {
		key.ext_port = htons(ntohs(r->ext_port) + i);
		if (!on)
			bpf_map_delete_elem(fd, &key);
		else if (bpf_map_update_elem(fd, &key, &r->id, BPF_NOEXIST))
			err = -errno;
	}
	if (err)
		for (i--; i-- > 0;) {
			key.ext_port = htons(ntohs(r->ext_port) + i);
			bpf_map_delete_elem(fd, &key);
		}
	return err;
}

bool backend_neighbour(__u32 addr, __u32 *ifindex, __u32 *nexthop)
{
	struct nl_route rt;

	if (nl_route_get(addr, &rt) || rt.type != RTN_UNICAST || !rt.oif)
		return false;
	*ifindex = rt.oif;
	*nexthop = rt.nexthop;
	return true;
}

/* release_neighbour - stop keeping @addr's next hop resolved unless another
 * of @rules (@n of them) still uses it. */
static void release_neighbour(__u32 addr, const struct xdpfwd_rule *rules, int n)
{
	__u32 ifindex, nexthop, other_if, other_hop;
	int i;

	if (!backend_neighbour(addr, &ifindex, &nexthop))
		return;
	for (i = 0; i < n; i++)
		if (backend_neighbour(rules[i].int_addr, &other_if, &other_hop) &&
		    other_if == ifindex && other_hop == nexthop)
			return;
	nl_neigh_unmanage(ifindex, nexthop);
}

void rules_release_neighbours(struct state *st)
{
	struct xdpfwd_rule *rules;
	int n, i;

	n = rules_read(st->map_fd[MAP_RULES], &rules);
	if (n < 0)
		return;
	for (i = 0; i < n; i++)
		release_neighbour(rules[i].int_addr, rules + i + 1, n - i - 1);
	free(rules);
}

/* free_rule_id - the lowest id no rule holds, or -1. */
static int free_rule_id(const struct xdpfwd_rule *rules, int n)
{
	static bool used[XDPFWD_MAX_RULES];
	int i;

	memset(used, 0, sizeof(used));
	for (i = 0; i < n; i++)
		if (rules[i].id < XDPFWD_MAX_RULES)
			used[rules[i].id] = true;
	for (i = 0; i < XDPFWD_MAX_RULES; i++)
		if (!used[i])
			return i;
	return -1;
}

static int zero_stats(int fd, __u32 id)
{
	int ncpus = libbpf_num_possible_cpus();
	struct xdpfwd_rule_stats *zero;
	int err;

	if (ncpus < 0)
		return ncpus;
	zero = calloc(ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	err = bpf_map_update_elem(fd, &id, zero, BPF_ANY) ? -errno : 0;
	free(zero);
	return err;
}

void manage_neighbour(__u32 addr)
{
	__u32 ifindex, nexthop;
	char a[INET_ADDRSTRLEN];
	struct nl_route rt;

	if (backend_neighbour(addr, &ifindex, &nexthop)) {
		if (nl_neigh_manage(ifindex, nexthop))
			warnf("cannot ask the kernel to keep %s resolved; the first packets may take the kernel path",
			      addr_str(nexthop, a));
	} else if (nl_route_get(addr, &rt) || rt.type != RTN_LOCAL) {
		warnf("no route to %s from here: its packets will be handed to the kernel",
		      addr_str(addr, a));
	}
}

bool rules_overlap(const struct xdpfwd_rule *a, const struct xdpfwd_rule *b)
{
	__u32 a0 = ntohs(a->ext_port), b0 = ntohs(b->ext_port);

	return a->proto == b->proto && a->ext_addr == b->ext_addr &&
	       a0 < b0 + b->nports && b0 < a0 + a->nports;
}

static bool same_ports(const struct xdpfwd_rule *a, const struct xdpfwd_rule *b)
{
	return a->proto == b->proto && a->ext_addr == b->ext_addr &&
	       a->ext_port == b->ext_port && a->nports == b->nports;
}

const char *ext_str(const struct xdpfwd_rule *r, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN], ports[16];

	format_ports(ports, sizeof(ports), r->ext_port, r->nports);
	if (r->ext_addr)
		snprintf(buf, len, "%s:%s", addr_str(r->ext_addr, a), ports);
	else
		snprintf(buf, len, "%s", ports);
	return buf;
}

/* find_rule - the index in @rules of the rule with @r's exact external
 * ports, or -1 after an error saying what the user may have meant. */
static int find_rule(const struct xdpfwd_rule *rules, int n, const struct xdpfwd_rule *r,
		     const char *hint)
{
	char want[48], have[48];
	int i;

	for (i = 0; i < n; i++)
		if (same_ports(&rules[i], r))
			return i;
	ext_str(r, want, sizeof(want));
	for (i = 0; i < n; i++)
		if (rules_overlap(&rules[i], r)) {
			errorf(EXIT_USAGE, "no rule for %s %s, but rule '%s' (%s %s) covers it: name the whole range, or use --name %s",
			       proto_str(r->proto), want, rules[i].name, proto_str(r->proto),
			       ext_str(&rules[i], have, sizeof(have)), rules[i].name);
			return -1;
		}
	errorf(EXIT_USAGE, "no rule for %s %s %s", proto_str(r->proto), want, hint);
	return -1;
}

/* name_taken - whether a rule other than @rules[@except] is named @name. */
static bool name_taken(const struct xdpfwd_rule *rules, int n, int except, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (i != except && !strcmp(rules[i].name, name))
			return true;
	return false;
}

/* open_rules - open the state for a change (@how) and read its rules into
 * *@rules (*@n of them, to free). Returns EXIT_OK, or an exit code after the
 * error with the state closed again. */
static int open_rules(struct state *st, enum state_open how, struct xdpfwd_rule **rules, int *n)
{
	int err = state_open(st, how);

	if (err)
		return err;
	*n = rules_read(st->map_fd[MAP_RULES], rules);
	if (*n >= 0)
		return EXIT_OK;
	err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-*n));
	state_close(st, true);
	return err;
}

void warn_snat_addr(const struct state *st, const struct xdpfwd_rule *r)
{
	char a[INET_ADDRSTRLEN];

	if ((r->flags & XDPFWD_RULE_F_SNAT) && !(r->flags & XDPFWD_RULE_F_SNAT_AUTO) &&
	    !bpf_map_lookup_elem(st->map_fd[MAP_LOCAL_ADDRS], &r->snat_addr, &(__u32){ 0 }))
		warnf("%s is not an address of this host: the backend's replies to it must still be routed here",
		      addr_str(r->snat_addr, a));
}

/* advise_rule - what the user should know about a rule just made. */
static void advise_rule(const struct state *st, const struct xdpfwd_rule *r)
{
	manage_neighbour(r->int_addr);
	warn_snat_addr(st, r);
	if (!iface_loaded_count(st))
		warnf("no interface is loaded yet: run 'xdpfwd load IFACE' to start forwarding");
}

/* add_rule - enter @spec's rule, complete with its id, into the maps: the
 * allowlist and the rule before its ports, so a packet that finds a port
 * finds the rest. Returns 0 or -errno, with nothing entered. */
static int add_rule(struct state *st, const struct rule_spec *spec)
{
	const struct xdpfwd_rule *r = &spec->rule;
	int err;

	err = zero_stats(st->map_fd[MAP_RULE_STATS], r->id);
	if (!err)
		err = allow_apply(st->map_fd[MAP_ALLOW], r->id, spec->allow, spec->n_allow,
				  NULL, 0, true);
	if (!err && bpf_map_update_elem(st->map_fd[MAP_RULES], &r->id, r, BPF_NOEXIST))
		err = -errno;
	if (!err)
		err = ports_set(st->map_fd[MAP_RULE_PORTS], r, rule_set_live(st), true);
	if (err) {
		bpf_map_delete_elem(st->map_fd[MAP_RULES], &r->id);
		allow_apply(st->map_fd[MAP_ALLOW], r->id, NULL, 0, spec->allow, spec->n_allow,
			    false);
	}
	return err;
}

int do_add(int argc, char **argv)
{
	struct xdpfwd_rule *rules = NULL, *r;
	char have[48];
	struct rule_spec spec;
	struct state st;
	int err, n, i, id;

	err = parse_rule_spec(argc, argv, "add", &spec);
	if (err)
		return err;
	r = &spec.rule;
	err = open_rules(&st, STATE_CREATE, &rules, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		if (rules_overlap(&rules[i], r))
			break;
	if (i < n) {
		err = errorf(EXIT_USAGE, "%s %s overlaps rule '%s' (%s %s): delete it first, change its backend with 'xdpfwd replace', or choose other ports",
			     argv[0], argv[1], rules[i].name, proto_str(r->proto),
			     ext_str(&rules[i], have, sizeof(have)));
		goto out;
	}
	if (name_taken(rules, n, -1, r->name)) {
		err = errorf(EXIT_USAGE, "a rule named '%s' exists already; choose another --name",
			     r->name);
		goto out;
	}
	id = free_rule_id(rules, n);
	if (id < 0) {
		err = errorf(EXIT_FAIL, "the rule table is full (%d rules)", XDPFWD_MAX_RULES);
		goto out;
	}
	r->id = id;
	/* Connections of an earlier rule with this id carry an older gen. */
	err = bpf_map_lookup_elem(st.map_fd[MAP_RULE_GENS], &r->id, &r->gen) ? -errno : 0;
	if (!err)
		err = add_rule(&st, &spec);
	if (err == -E2BIG || err == -ENOSPC || err == -ENOMEM) {
		err = errorf(EXIT_FAIL, "cannot add the rule: the rule tables are full (at most %d external ports and %d allowlist CIDRs in all)",
			     XDPFWD_MAX_RULE_PORTS, XDPFWD_MAX_ALLOW);
		goto out;
	} else if (err) {
		err = errorf(EXIT_FAIL, "cannot add the rule: %s", strerror(-err));
		goto out;
	}
	advise_rule(&st, r);
	err = iface_refresh_maps(&st);
out:
	free(rules);
	state_close(&st, err);
	return err;
}

/* do_replace - give an existing rule a new backend, SNAT and allowlist (and
 * name, when given). The rule keeps its id and generation, so its
 * connections keep their backend until they end; only new connections see
 * the new rule. */
int do_replace(int argc, char **argv)
{
	struct allow_cidr have[XDPFWD_MAX_ALLOW_RULE];
	struct xdpfwd_rule *rules = NULL, *r, old;
	__u64 *per_rule = NULL, total;
	struct rule_spec spec;
	int err, n, i, n_have;
	struct state st;

	err = parse_rule_spec(argc, argv, "replace", &spec);
	if (err)
		return err;
	r = &spec.rule;
	err = open_rules(&st, STATE_CHANGE, &rules, &n);
	if (err)
		return err;
	i = find_rule(rules, n, r, "to replace (see 'xdpfwd list'; 'xdpfwd add' makes one)");
	if (i < 0) {
		err = EXIT_USAGE;
		goto out;
	}
	if (spec.named && name_taken(rules, n, i, r->name)) {
		err = errorf(EXIT_USAGE, "a rule named '%s' exists already; choose another --name", r->name);
		goto out;
	}
	old = rules[i];
	r->id = old.id;
	r->gen = old.gen;
	if (!spec.named)
		memcpy(r->name, old.name, sizeof(r->name));
	n_have = allow_read(st.map_fd[MAP_ALLOW], r->id, have);
	err = n_have < 0 ? n_have : 0;
	/* Widen the allowlist, swap the rule, then narrow the allowlist:
	 * no source the old and the new rule both admit is refused. */
	if (!err)
		err = allow_apply(st.map_fd[MAP_ALLOW], r->id, spec.allow, spec.n_allow, have,
				  n_have, true);
	if (!err && bpf_map_update_elem(st.map_fd[MAP_RULES], &r->id, r, BPF_EXIST))
		err = -errno;
	if (err) {
		allow_apply(st.map_fd[MAP_ALLOW], r->id, have, n_have, spec.allow, spec.n_allow,
			    false);
		err = errorf(EXIT_FAIL, "cannot replace the rule: %s", strerror(-err));
		goto out;
	}
	allow_apply(st.map_fd[MAP_ALLOW], r->id, spec.allow, spec.n_allow, have, n_have, false);
	rules[i] = *r;
	advise_rule(&st, r);
	/* Existing connections still go to the old backend: keep its next hop
	 * resolved while any are left. */
	per_rule = calloc(XDPFWD_MAX_RULES, sizeof(*per_rule));
	if (per_rule && !ct_count_valid(&st, &total, per_rule) && !per_rule[old.id])
		release_neighbour(old.int_addr, rules, n);
out:
	free(per_rule);
	free(rules);
	state_close(&st, err);
	return err;
}

static int usage_del(void)
{
	return errorf(EXIT_USAGE, "usage: xdpfwd del PROTO [EXT_ADDR:]PORT[-PORT] | xdpfwd del --name NAME");
}

/* end_connections - make every connection of rule @id dead to the datapath
 * at once (a new generation), then remove their entries. */
static void end_connections(struct state *st, __u32 id)
{
	int fd = st->map_fd[MAP_RULE_GENS];
	__u64 removed;
	__u32 gen;
	int err;

	err = bpf_map_lookup_elem(fd, &id, &gen);
	if (!err) {
		gen++;
		err = bpf_map_update_elem(fd, &id, &gen, BPF_ANY);
	}
	if (err)
		warnf("cannot end the rule's connections at once (%s); they end as they are removed",
		      strerror(-err));
	err = ct_purge(st, id, &removed);
	if (err)
		warnf("cannot remove all the rule's connections (%s); the datapath drops them as it meets them",
		      strerror(-err));
}

/* find_named - the index in @rules of the rule named @name, or -1 after the
 * error. */
static int find_named(const struct xdpfwd_rule *rules, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(rules[i].name, name))
			return i;
	errorf(EXIT_USAGE, "no rule named '%s' (see 'xdpfwd list')", name);
	return -1;
}

int do_del(int argc, char **argv)
{
	struct allow_cidr have[XDPFWD_MAX_ALLOW_RULE];
	struct xdpfwd_rule *rules = NULL, want = {}, gone;
	const char *name = NULL;
	int err, n, i, n_have;
	struct state st;

	if (argc == 2 && !strcmp(argv[0], "--name")) {
		name = argv[1];
		err = check_name(name);
	} else if (argc == 2) {
		err = parse_proto(argv[0], &want.proto);
		if (!err)
			err = parse_ext(argv[1], want.proto, &want.ext_addr, &want.ext_port,
					&want.nports);
	} else {
		return usage_del();
	}
	if (err)
		return err;
	err = open_rules(&st, STATE_CHANGE, &rules, &n);
	if (err)
		return err;
	i = name ? find_named(rules, n, name) : find_rule(rules, n, &want, "(see 'xdpfwd list')");
	if (i < 0) {
		err = EXIT_USAGE;
		goto out;
	}
	gone = rules[i];
	/* No new connection once the ports are gone; the rest can wait. */
	ports_set(st.map_fd[MAP_RULE_PORTS], &gone, rule_set_live(&st), false);
	end_connections(&st, gone.id);
	bpf_map_delete_elem(st.map_fd[MAP_RULES], &gone.id);
	n_have = allow_read(st.map_fd[MAP_ALLOW], gone.id, have);
	if (n_have > 0)
		allow_apply(st.map_fd[MAP_ALLOW], gone.id, NULL, 0, have, n_have, false);
	rules[i] = rules[--n];
	release_neighbour(gone.int_addr, rules, n);
out:
	free(rules);
	state_close(&st, err);
	return err;
}

/* print_rule - one rule's ports and backend, as list and stats show it. */
static void print_rule(const struct xdpfwd_rule *r)
{
	char ext[48], in[48], ports[16], a[INET_ADDRSTRLEN];
	__u16 int_port = rule_backend_port(r);

	ext_str(r, ext, sizeof(ext));
	format_ports(ports, sizeof(ports), int_port, r->nports);
	snprintf(in, sizeof(in), "%s:%s", addr_str(r->int_addr, a), ports);
	out_string("name", "%-20s ", r->name);
	out_string("proto", "%-5s ", proto_str(r->proto));
	if (r->ext_addr)
		out_string("ext_addr", NULL, addr_str(r->ext_addr, a));
	else
		out_null("ext_addr", NULL, NULL);
	out_u64("ext_port", NULL, ntohs(r->ext_port));
	out_u64("ext_port_end", NULL, ntohs(r->ext_port) + r->nports - 1);
	out_string("int_addr", NULL, addr_str(r->int_addr, a));
	out_u64("int_port", NULL, ntohs(int_port));
	out_u64("int_port_end", NULL, ntohs(int_port) + r->nports - 1);
	out_text("%-21s -> %-21s", ext, in);
}

/* print_options - a rule's SNAT and allowlist, last on its line. */
static void print_options(const struct state *st, const struct xdpfwd_rule *r)
{
	struct allow_cidr allow[XDPFWD_MAX_ALLOW_RULE];
	char a[INET_ADDRSTRLEN], cidr[24];
	int n_allow = 0, i;

	if (!(r->flags & XDPFWD_RULE_F_SNAT))
		out_null("snat", NULL, NULL);
	else if (r->flags & XDPFWD_RULE_F_SNAT_AUTO)
		out_string("snat", " snat %s", "auto");
	else
		out_string("snat", " snat %s", addr_str(r->snat_addr, a));
	if (r->flags & XDPFWD_RULE_F_ALLOW)
		n_allow = allow_read(st->map_fd[MAP_ALLOW], r->id, allow);
	out_text("%s", n_allow > 0 ? " allow " : "");
	out_open_array("allow");
	for (i = 0; i < n_allow; i++) {
		snprintf(cidr, sizeof(cidr), "%s/%u", addr_str(allow[i].addr, a), allow[i].len);
		out_string(NULL, i ? ",%s" : "%s", cidr);
	}
	out_close_array();
}

int rule_stats_read(const struct state *st, __u32 id, struct xdpfwd_rule_stats *sum)
{
	int ncpus = libbpf_num_possible_cpus();
	struct xdpfwd_rule_stats *percpu;
	int c, err;

	memset(sum, 0, sizeof(*sum));
	if (ncpus < 0)
		return ncpus;
	percpu = calloc(ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	err = bpf_map_lookup_elem(st->map_fd[MAP_RULE_STATS], &id, percpu) ? -errno : 0;
	for (c = 0; !err && c < ncpus; c++) {
		sum->orig_packets += percpu[c].orig_packets;
		sum->orig_bytes += percpu[c].orig_bytes;
		sum->reply_packets += percpu[c].reply_packets;
		sum->reply_bytes += percpu[c].reply_bytes;
		sum->denied_packets += percpu[c].denied_packets;
	}
	free(percpu);
	return err;
}

/* print_counters - a rule's live connections and its traffic (zero when
 * unreadable). */
static void print_counters(const struct state *st, __u32 id, __u64 flows)
{
	struct xdpfwd_rule_stats sum;

	rule_stats_read(st, id, &sum);
	out_u64("flows", " %7llu", flows);
	out_u64("orig_packets", " %11llu", sum.orig_packets);
	out_u64("orig_bytes", " %12llu", sum.orig_bytes);
	out_u64("reply_packets", " %11llu", sum.reply_packets);
	out_u64("reply_bytes", " %12llu", sum.reply_bytes);
	out_u64("denied_packets", " %11llu", sum.denied_packets);
}

/* show_rules - the list; with @stats, each rule's connections and
 * counters, then the reason counters. */
static int show_rules(int argc, bool stats)
{
	struct xdpfwd_rule *rules = NULL;
	__u64 *flows = NULL, total;
	struct state st;
	int err, n = 0, i;

	if (argc)
		return errorf(EXIT_USAGE, "usage: xdpfwd %s", stats ? "stats" : "list");
	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	flows = calloc(XDPFWD_MAX_RULES, sizeof(*flows));
	if (!flows) {
		err = errorf(EXIT_FAIL, "out of memory");
		goto out;
	}
	if (state_exists(&st)) {
		n = rules_read(st.map_fd[MAP_RULES], &rules);
		if (n < 0) {
			err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-n));
			goto out;
		}
		if (stats && ct_count_valid(&st, &total, flows))
			warnf("cannot read the connection tables: connection counts are incomplete");
	}
	out_text("%-20s %-5s %-21s    %-21s%s OPTIONS\n", "NAME", "PROTO", "EXTERNAL", "INTERNAL",
		 stats ? "   FLOWS   ORIG_PKTS   ORIG_BYTES  REPLY_PKTS  REPLY_BYTES  DENIED_PKTS" : "");
	if (stats)
		out_open_object(NULL);
	out_open_array(stats ? "rules" : NULL);
	for (i = 0; i < n; i++) {
		out_open_object(NULL);
		print_rule(&rules[i]);
		if (stats)
			print_counters(&st, rules[i].id,
				       rules[i].id < XDPFWD_MAX_RULES ? flows[rules[i].id] : 0);
		print_options(&st, &rules[i]);
		out_text("\n");
		out_close_object();
	}
	out_close_array();
	if (stats) {
		out_text("\n");
		print_reasons(&st);
		out_close_object();
	}
out:
	free(flows);
	free(rules);
	state_close(&st, false);
	return err;
}

int do_list(int argc, char **argv)
{
	(void)argv;
	return show_rules(argc, false);
}

int do_stats(int argc, char **argv)
{
	if (argc)
		return stats_watch(argc, argv);
	return show_rules(0, true);
}
