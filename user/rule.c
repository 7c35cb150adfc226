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

struct rule_entry {
	struct xdpfwd_rule_key key;
	struct xdpfwd_rule rule;
};

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

/* read_rules - every rule, in the order they were given ids.
 * Returns the count (entries in *@out, to free) or -errno. */
static int read_rules(int fd, struct rule_entry **out)
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

	n = read_rules(st->map_fd[MAP_RULES], &rules);
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

/* purge_flows - remove every connection of rule @id, both directions. */
static void purge_flows(int fd, __u32 id)
{
	struct xdpfwd_flow_key key, next, *doomed = NULL;
	struct xdpfwd_flow flow;
	size_t n = 0, cap = 0, i;
	bool more;

	more = !bpf_map_get_next_key(fd, NULL, &next);
	while (more) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		if (bpf_map_lookup_elem(fd, &key, &flow) || flow.rule_id != id)
			continue;
		if (n == cap) {
			struct xdpfwd_flow_key *grown;

			cap = cap ? 2 * cap : 256;
			grown = realloc(doomed, cap * sizeof(*doomed));
			if (!grown)
				break;
			doomed = grown;
		}
		doomed[n++] = key;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &doomed[i]);
	free(doomed);
}

static int usage_add(void)
{
	return errorf(EXIT_USAGE, "usage: xdpfwd add PROTO [EXT_ADDR:]EXT_PORT INT_ADDR:INT_PORT [--name NAME]");
}

int do_add(int argc, char **argv)
{
	struct rule_entry *rules = NULL;
	struct xdpfwd_rule_key key = {};
	struct xdpfwd_rule rule = {};
	__u32 ifindex, nexthop;
	const char *name = NULL;
	char a[INET_ADDRSTRLEN];
	struct state st;
	int err, n, i, id;

	if (argc == 5 && !strcmp(argv[3], "--name"))
		name = argv[4];
	else if (argc != 3)
		return usage_add();
	err = parse_proto(argv[0], &key.proto);
	if (!err)
		err = parse_endpoint(argv[1], "external", true, &key.ext_addr, &key.ext_port);
	if (!err)
		err = parse_endpoint(argv[2], "internal", false, &rule.int_addr, &rule.int_port);
	if (!err && name)
		err = check_name(name);
	if (err)
		return err;
	if (name)
		strcpy(rule.name, name);
	else
		default_name(&key, rule.name);

	err = state_open(&st, STATE_CREATE);
	if (err)
		return err;
	n = read_rules(st.map_fd[MAP_RULES], &rules);
	if (n < 0) {
		err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-n));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!memcmp(&rules[i].key, &key, sizeof(key))) {
			err = errorf(EXIT_USAGE, "a rule for %s %s exists already ('%s'); delete it first",
				     argv[0], argv[1], rules[i].rule.name);
			goto out;
		}
		if (!strcmp(rules[i].rule.name, rule.name)) {
			err = errorf(EXIT_USAGE, "a rule named '%s' exists already; choose another --name",
				     rule.name);
			goto out;
		}
	}
	id = free_rule_id(rules, n);
	if (id < 0) {
		err = errorf(EXIT_FAIL, "the rule table is full (%d rules)", XDPFWD_MAX_RULES);
		goto out;
	}
	rule.id = id;
	err = zero_stats(st.map_fd[MAP_RULE_STATS], rule.id);
	if (!err && bpf_map_update_elem(st.map_fd[MAP_RULES], &key, &rule, BPF_NOEXIST))
		err = -errno;
	if (err) {
		err = errorf(EXIT_FAIL, "cannot add the rule: %s", strerror(-err));
		goto out;
	}
	if (!backend_neighbour(rule.int_addr, &ifindex, &nexthop))
		warnf("no route to %s from here: its packets will be handed to the kernel",
		      addr_str(rule.int_addr, a));
	else if (nl_neigh_manage(ifindex, nexthop))
		warnf("cannot ask the kernel to keep %s resolved; the first packets may take the kernel path",
		      addr_str(nexthop, a));
	if (!iface_loaded_count(&st))
		warnf("no interface is loaded yet: run 'xdpfwd load IFACE' to start forwarding");
	err = iface_refresh_maps(&st);
out:
	free(rules);
	state_close(&st, err);
	return err;
}

static int usage_del(void)
{
	return errorf(EXIT_USAGE, "usage: xdpfwd del PROTO [EXT_ADDR:]EXT_PORT | xdpfwd del --name NAME");
}

int do_del(int argc, char **argv)
{
	struct xdpfwd_rule_key key = {};
	struct rule_entry *rules = NULL;
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
	err = state_open(&st, STATE_CHANGE);
	if (err)
		return err;
	n = read_rules(st.map_fd[MAP_RULES], &rules);
	if (n < 0) {
		err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-n));
		goto out;
	}
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
	if (bpf_map_delete_elem(st.map_fd[MAP_RULES], &rules[found].key)) {
		err = errorf(EXIT_FAIL, "cannot delete the rule: %s", strerror(errno));
		goto out;
	}
	/* New connections stop at the rule; existing ones stop here. */
	purge_flows(st.map_fd[MAP_FLOWS], rules[found].rule.id);
	rules[found] = rules[--n];
	release_neighbour(rules[n].rule.int_addr, rules, n);
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

/* show_rules - the list, with counters when @stats. */
static int show_rules(int argc, bool stats)
{
	int ncpus = libbpf_num_possible_cpus();
	struct xdpfwd_rule_stats *percpu = NULL;
	struct rule_entry *rules = NULL;
	struct state st;
	int err, n = 0, i, c;

	if (argc)
		return errorf(EXIT_USAGE, "usage: xdpfwd %s", stats ? "stats" : "list");
	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	if (state_exists(&st)) {
		n = read_rules(st.map_fd[MAP_RULES], &rules);
		percpu = calloc(ncpus > 0 ? ncpus : 1, sizeof(*percpu));
		if (n < 0 || !percpu) {
			err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(n < 0 ? -n : ENOMEM));
			goto out;
		}
	}
	out_text("%-20s %-5s %-21s    %-21s%s\n", "NAME", "PROTO", "EXTERNAL", "INTERNAL",
		 stats ? "   ORIG_PKTS   ORIG_BYTES  REPLY_PKTS  REPLY_BYTES" : "");
	out_open_array(NULL);
	for (i = 0; i < n; i++) {
		struct xdpfwd_rule_stats sum = {};

		out_open_object(NULL);
		print_rule(&rules[i]);
		if (stats) {
			if (!bpf_map_lookup_elem(st.map_fd[MAP_RULE_STATS], &rules[i].rule.id, percpu))
				for (c = 0; c < ncpus; c++) {
					sum.orig_packets += percpu[c].orig_packets;
					sum.orig_bytes += percpu[c].orig_bytes;
					sum.reply_packets += percpu[c].reply_packets;
					sum.reply_bytes += percpu[c].reply_bytes;
				}
			out_u64("orig_packets", " %11llu", sum.orig_packets);
			out_u64("orig_bytes", " %12llu", sum.orig_bytes);
			out_u64("reply_packets", " %11llu", sum.reply_packets);
			out_u64("reply_bytes", " %12llu", sum.reply_bytes);
		}
		out_text("\n");
		out_close_object();
	}
	out_close_array();
out:
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
