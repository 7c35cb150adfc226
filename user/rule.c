// SPDX-License-Identifier: GPL-2.0
/* Rules: add, del, list, stats. Every argument is checked before any state
 * is touched, so a refused command changes nothing. */
#include <arpa/inet.h>
#include <ctype.h>
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

const char *addr_str(__u32 addr, char *buf)
{
	return inet_ntop(AF_INET, &addr, buf, INET_ADDRSTRLEN);
}

const char *proto_str(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

static int by_id(const void *a, const void *b)
{
	const struct rule_entry *x = a, *y = b;

	return (x->rule.id > y->rule.id) - (x->rule.id < y->rule.id);
}

int rules_read(int fd, struct rule_entry **out)
{
	struct rule_entry *v = calloc(XDPFWD_MAX_RULES, sizeof(*v));
	struct xdpfwd_rule_key key, next;
	int n = 0;
	bool more;

	if (!v)
		return -ENOMEM;
	more = !bpf_map_get_next_key(fd, NULL, &next);
	while (more && n < XDPFWD_MAX_RULES) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		if (bpf_map_lookup_elem(fd, &key, &v[n].rule))
			continue;
		v[n++].key = key;
	}
	qsort(v, n, sizeof(*v), by_id);
	*out = v;
	return n;
}

static int parse_proto(const char *s, __u8 *proto)
{
	if (!strcmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else
		return errorf(EXIT_USAGE, "unknown protocol '%s': use tcp or udp", s);
	return EXIT_OK;
}

/* parse_port - a decimal port 1-65535, stored in network order. */
static int parse_port(const char *s, __u16 *port)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return errorf(EXIT_USAGE, "invalid port '%s': give a number from 1 to 65535", s);
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v < 1 || v > 65535)
		return errorf(EXIT_USAGE, "invalid port '%s': give a number from 1 to 65535", s);
	*port = htons(v);
	return EXIT_OK;
}

/* parse_addr - a unicast IPv4 address a forward can use, network order. */
static int parse_addr(const char *s, const char *what, __u32 *addr)
{
	__u32 host;

	if (inet_pton(AF_INET, s, addr) != 1)
		return errorf(EXIT_USAGE, "invalid %s address '%s': give an IPv4 address such as 192.0.2.10",
			      what, s);
	host = ntohl(*addr);
	if (!host || host == 0xffffffff || (host >> 28) == 0xe || (host >> 24) == 127)
		return errorf(EXIT_USAGE, "%s address %s cannot be forwarded: give a unicast, non-loopback address",
			      what, s);
	return EXIT_OK;
}

/* parse_endpoint - "[ADDR:]PORT"; the address is required unless
 * @addr_optional, and is 0 when absent. */
static int parse_endpoint(const char *arg, const char *what, bool addr_optional,
			  __u32 *addr, __u16 *port)
{
	char buf[64];
	char *colon;
	int err;

	if (strlen(arg) >= sizeof(buf))
		return errorf(EXIT_USAGE, "invalid %s '%s'", what, arg);
	strcpy(buf, arg);
	colon = strrchr(buf, ':');
	*addr = 0;
	if (!colon && !addr_optional)
		return errorf(EXIT_USAGE, "invalid %s '%s': give ADDRESS:PORT, e.g. 192.0.2.10:80", what, arg);
	if (colon) {
		*colon = '\0';
		err = parse_addr(buf, what, addr);
		if (err)
			return err;
	}
	return parse_port(colon ? colon + 1 : buf, port);
}

static int check_name(const char *name)
{
	const char *c;

	if (!*name || strlen(name) >= XDPFWD_NAME_LEN)
		return errorf(EXIT_USAGE, "invalid rule name '%s': use 1 to %d characters", name,
			      XDPFWD_NAME_LEN - 1);
	for (c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-_.", *c))
			return errorf(EXIT_USAGE, "invalid rule name '%s': use letters, digits, '-', '_' and '.'",
				      name);
	return EXIT_OK;
}

static void default_name(const struct xdpfwd_rule_key *key, char *name)
{
	char a[INET_ADDRSTRLEN];

	if (key->ext_addr)
		snprintf(name, XDPFWD_NAME_LEN, "%s-%s-%u", proto_str(key->proto),
			 addr_str(key->ext_addr, a), ntohs(key->ext_port));
	else
		snprintf(name, XDPFWD_NAME_LEN, "%s-%u", proto_str(key->proto), ntohs(key->ext_port));
}

/* backend_neighbour - the interface and next hop that reach @addr, if the
 * kernel forwards to it (not a local address). Returns true when found. */
static bool backend_neighbour(__u32 addr, __u32 *ifindex, __u32 *nexthop)
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
static void release_neighbour(__u32 addr, const struct rule_entry *rules, int n)
{
	__u32 ifindex, nexthop, other_if, other_hop;
	int i;

	if (!backend_neighbour(addr, &ifindex, &nexthop))
		return;
	for (i = 0; i < n; i++)
		if (backend_neighbour(rules[i].rule.int_addr, &other_if, &other_hop) &&
		    other_if == ifindex && other_hop == nexthop)
			return;
	nl_neigh_unmanage(ifindex, nexthop);
}

void rules_release_neighbours(struct state *st)
{
	struct rule_entry *rules;
	int n, i;

	n = rules_read(st->map_fd[MAP_RULES], &rules);
	if (n < 0)
		return;
	for (i = 0; i < n; i++)
		release_neighbour(rules[i].rule.int_addr, rules + i + 1, n - i - 1);
	free(rules);
}

/* free_rule_id - the lowest id no rule holds, or -1. */
static int free_rule_id(const struct rule_entry *rules, int n)
{
	static bool used[XDPFWD_MAX_RULES];
	int i;

	memset(used, 0, sizeof(used));
	for (i = 0; i < n; i++)
		if (rules[i].rule.id < XDPFWD_MAX_RULES)
			used[rules[i].rule.id] = true;
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

/* manage_neighbour - have the kernel keep @addr's next hop resolved, so the
 * datapath finds it; tell the user when it cannot. */
static void manage_neighbour(__u32 addr)
{
	__u32 ifindex, nexthop;
	char a[INET_ADDRSTRLEN];

	if (!backend_neighbour(addr, &ifindex, &nexthop))
		warnf("no route to %s from here: its packets will be handed to the kernel",
		      addr_str(addr, a));
	else if (nl_neigh_manage(ifindex, nexthop))
		warnf("cannot ask the kernel to keep %s resolved; the first packets may take the kernel path",
		      addr_str(nexthop, a));
}

/* parse_rule - "PROTO [EXT_ADDR:]EXT_PORT INT_ADDR:INT_PORT [--name NAME]",
 * as add and replace take it. *@name is NULL without --name. */
static int parse_rule(int argc, char **argv, const char *cmd, struct xdpfwd_rule_key *key,
		      struct xdpfwd_rule *rule, const char **name)
{
	int err;

	*name = NULL;
	if (argc == 5 && !strcmp(argv[3], "--name"))
		*name = argv[4];
	else if (argc != 3)
		return errorf(EXIT_USAGE, "usage: xdpfwd %s PROTO [EXT_ADDR:]EXT_PORT INT_ADDR:INT_PORT [--name NAME]",
			      cmd);
	err = parse_proto(argv[0], &key->proto);
	if (!err)
		err = parse_endpoint(argv[1], "external", true, &key->ext_addr, &key->ext_port);
	if (!err)
		err = parse_endpoint(argv[2], "internal", false, &rule->int_addr, &rule->int_port);
	if (!err && *name)
		err = check_name(*name);
	return err;
}

/* find_rule - the index in @rules of the rule for @key, or -1. */
static int find_rule(const struct rule_entry *rules, int n, const struct xdpfwd_rule_key *key)
{
	int i;

	for (i = 0; i < n; i++)
		if (!memcmp(&rules[i].key, key, sizeof(*key)))
			return i;
	return -1;
}

/* name_taken - whether a rule other than @rules[@except] is named @name. */
static bool name_taken(const struct rule_entry *rules, int n, int except, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (i != except && !strcmp(rules[i].rule.name, name))
			return true;
	return false;
}

/* open_rules - open the state for a change (@how) and read its rules into
 * *@rules (*@n of them, to free). Returns EXIT_OK, or an exit code after the
 * error with the state closed again. */
static int open_rules(struct state *st, enum state_open how, struct rule_entry **rules, int *n)
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

int do_add(int argc, char **argv)
{
	struct rule_entry *rules = NULL;
	struct xdpfwd_rule_key key = {};
	struct xdpfwd_rule rule = {};
	const char *name;
	struct state st;
	int err, n, i, id;

	err = parse_rule(argc, argv, "add", &key, &rule, &name);
	if (err)
		return err;
	if (name)
		strcpy(rule.name, name);
	else
		default_name(&key, rule.name);

	err = open_rules(&st, STATE_CREATE, &rules, &n);
	if (err)
		return err;
	i = find_rule(rules, n, &key);
	if (i >= 0) {
		err = errorf(EXIT_USAGE, "a rule for %s %s exists already ('%s'); delete it first, or change its backend with 'xdpfwd replace'",
			     argv[0], argv[1], rules[i].rule.name);
		goto out;
	}
	if (name_taken(rules, n, -1, rule.name)) {
		err = errorf(EXIT_USAGE, "a rule named '%s' exists already; choose another --name",
			     rule.name);
		goto out;
	}
	id = free_rule_id(rules, n);
	if (id < 0) {
		err = errorf(EXIT_FAIL, "the rule table is full (%d rules)", XDPFWD_MAX_RULES);
		goto out;
	}
	rule.id = id;
	/* Connections of an earlier rule with this id carry an older gen. */
	err = bpf_map_lookup_elem(st.map_fd[MAP_RULE_GENS], &rule.id, &rule.gen) ? -errno : 0;
	if (!err)
		err = zero_stats(st.map_fd[MAP_RULE_STATS], rule.id);
	if (!err && bpf_map_update_elem(st.map_fd[MAP_RULES], &key, &rule, BPF_NOEXIST))
		err = -errno;
	if (err) {
		err = errorf(EXIT_FAIL, "cannot add the rule: %s", strerror(-err));
		goto out;
	}
	manage_neighbour(rule.int_addr);
	if (!iface_loaded_count(&st))
		warnf("no interface is loaded yet: run 'xdpfwd load IFACE' to start forwarding");
	err = iface_refresh_maps(&st);
out:
	free(rules);
	state_close(&st, err);
	return err;
}

/* do_replace - point an existing rule at a new backend. The rule keeps its
 * id and generation, so its connections keep their backend until they end;
 * only new connections go to the new one. */
int do_replace(int argc, char **argv)
{
	struct rule_entry *rules = NULL;
	struct xdpfwd_rule_key key = {};
	struct xdpfwd_rule rule = {}, old;
	__u64 *per_rule = NULL, total;
	const char *name;
	struct state st;
	int err, n, i;

	err = parse_rule(argc, argv, "replace", &key, &rule, &name);
	if (err)
		return err;
	err = open_rules(&st, STATE_CHANGE, &rules, &n);
	if (err)
		return err;
	i = find_rule(rules, n, &key);
	if (i < 0) {
		err = errorf(EXIT_USAGE, "no rule for %s %s to replace (see 'xdpfwd list'; 'xdpfwd add' makes one)",
			     argv[0], argv[1]);
		goto out;
	}
	if (name && name_taken(rules, n, i, name)) {
		err = errorf(EXIT_USAGE, "a rule named '%s' exists already; choose another --name", name);
		goto out;
	}
	old = rules[i].rule;
	rules[i].rule.int_addr = rule.int_addr;
	rules[i].rule.int_port = rule.int_port;
	if (name)
		snprintf(rules[i].rule.name, sizeof(rules[i].rule.name), "%s", name);
	if (bpf_map_update_elem(st.map_fd[MAP_RULES], &key, &rules[i].rule, BPF_EXIST)) {
		err = errorf(EXIT_FAIL, "cannot replace the rule: %s", strerror(errno));
		goto out;
	}
	manage_neighbour(rule.int_addr);
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
	return errorf(EXIT_USAGE, "usage: xdpfwd del PROTO [EXT_ADDR:]EXT_PORT | xdpfwd del --name NAME");
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

int do_del(int argc, char **argv)
{
	struct xdpfwd_rule_key key = {};
	struct rule_entry *rules = NULL, gone;
	const char *name = NULL;
	int err, n, i, found = -1;
	struct state st;

	if (argc == 2 && !strcmp(argv[0], "--name")) {
		name = argv[1];
		err = check_name(name);
	} else if (argc == 2) {
		err = parse_proto(argv[0], &key.proto);
		if (!err)
			err = parse_endpoint(argv[1], "external", true, &key.ext_addr, &key.ext_port);
	} else {
		return usage_del();
	}
	if (err)
		return err;
	err = open_rules(&st, STATE_CHANGE, &rules, &n);
	if (err)
		return err;
	for (i = 0; i < n && found < 0; i++)
		if (name ? !strcmp(rules[i].rule.name, name) :
			   !memcmp(&rules[i].key, &key, sizeof(key)))
			found = i;
	if (found < 0) {
		if (name)
			err = errorf(EXIT_USAGE, "no rule named '%s' (see 'xdpfwd list')", name);
		else
			err = errorf(EXIT_USAGE, "no rule for %s %s (see 'xdpfwd list')", argv[0], argv[1]);
		goto out;
	}
	gone = rules[found];
	if (bpf_map_delete_elem(st.map_fd[MAP_RULES], &gone.key)) {
		err = errorf(EXIT_FAIL, "cannot delete the rule: %s", strerror(errno));
		goto out;
	}
	/* New connections stop at the rule, existing ones here. */
	end_connections(&st, gone.rule.id);
	rules[found] = rules[--n];
	release_neighbour(gone.rule.int_addr, rules, n);
out:
	free(rules);
	state_close(&st, err);
	return err;
}

static void print_rule(const struct rule_entry *r)
{
	char ext[48], in[48], a[INET_ADDRSTRLEN];

	snprintf(ext, sizeof(ext), "%s:%u", r->key.ext_addr ? addr_str(r->key.ext_addr, a) : "*",
		 ntohs(r->key.ext_port));
	snprintf(in, sizeof(in), "%s:%u", addr_str(r->rule.int_addr, a), ntohs(r->rule.int_port));
	out_string("name", "%-20s ", r->rule.name);
	out_string("proto", "%-5s ", proto_str(r->key.proto));
	if (r->key.ext_addr)
		out_string("ext_addr", NULL, addr_str(r->key.ext_addr, a));
	else
		out_null("ext_addr", NULL, NULL);
	out_u64("ext_port", NULL, ntohs(r->key.ext_port));
	out_string("int_addr", NULL, addr_str(r->rule.int_addr, a));
	out_u64("int_port", NULL, ntohs(r->rule.int_port));
	out_text("%-21s -> %-21s", ext, in);
}

/* print_counters - a rule's live connections and its traffic, summed over
 * the CPUs (@percpu is room for their copies). */
static void print_counters(const struct state *st, __u32 id, __u64 flows,
			   struct xdpfwd_rule_stats *percpu)
{
	int ncpus = libbpf_num_possible_cpus();
	struct xdpfwd_rule_stats sum = {};
	int c;

	if (!bpf_map_lookup_elem(st->map_fd[MAP_RULE_STATS], &id, percpu))
		for (c = 0; c < ncpus; c++) {
			sum.orig_packets += percpu[c].orig_packets;
			sum.orig_bytes += percpu[c].orig_bytes;
			sum.reply_packets += percpu[c].reply_packets;
			sum.reply_bytes += percpu[c].reply_bytes;
		}
	out_u64("flows", " %7llu", flows);
	out_u64("orig_packets", " %11llu", sum.orig_packets);
	out_u64("orig_bytes", " %12llu", sum.orig_bytes);
	out_u64("reply_packets", " %11llu", sum.reply_packets);
	out_u64("reply_bytes", " %12llu", sum.reply_bytes);
}

/* show_rules - the list; with @stats, each rule's connections and
 * counters, then the reason counters. */
static int show_rules(int argc, bool stats)
{
	int ncpus = libbpf_num_possible_cpus();
	struct xdpfwd_rule_stats *percpu = NULL;
	struct rule_entry *rules = NULL;
	__u64 *flows = NULL, total;
	struct state st;
	int err, n = 0, i;

	if (argc)
		return errorf(EXIT_USAGE, "usage: xdpfwd %s", stats ? "stats" : "list");
	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	percpu = calloc(ncpus > 0 ? ncpus : 1, sizeof(*percpu));
	flows = calloc(XDPFWD_MAX_RULES, sizeof(*flows));
	if (!percpu || !flows) {
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
	out_text("%-20s %-5s %-21s    %-21s%s\n", "NAME", "PROTO", "EXTERNAL", "INTERNAL",
		 stats ? "   FLOWS   ORIG_PKTS   ORIG_BYTES  REPLY_PKTS  REPLY_BYTES" : "");
	if (stats)
		out_open_object(NULL);
	out_open_array(stats ? "rules" : NULL);
	for (i = 0; i < n; i++) {
		out_open_object(NULL);
		print_rule(&rules[i]);
		if (stats)
			print_counters(&st, rules[i].rule.id,
				       rules[i].rule.id < XDPFWD_MAX_RULES ? flows[rules[i].rule.id] : 0,
				       percpu);
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
	free(percpu);
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
	(void)argv;
	return show_rules(argc, true);
}
