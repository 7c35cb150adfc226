// SPDX-License-Identifier: GPL-2.0
/* Connections: list, flush, timeouts. The datapath keeps two entries a
 * connection (one a direction) in one of two tables, and leaves dead ones
 * behind until it meets them or the LRU evicts them; what counts as alive is
 * decided here exactly as there (ct_valid). */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "output.h"

#define NSEC_PER_SEC	1000000000ULL
#define WALK_CHUNK	256	/* entries fetched a syscall */

static const char *const state_names[XDPFWD_CT_STATE_MAX] = XDPFWD_CT_STATE_NAMES;
static const __u32 default_timeouts[XDPFWD_CT_STATE_MAX] = XDPFWD_CT_DEFAULT_TIMEOUTS;

/* read_timeouts - the timeouts in effect: the config map's, with the
 * built-in default where it says 0 (or where there is no state yet). */
static int read_timeouts(const struct state *st, __u32 *timeout)
{
	struct xdpfwd_config cfg = {};
	__u32 zero = 0;
	int err = 0, i;

	if (state_exists(st))
		err = bpf_map_lookup_elem(st->map_fd[MAP_CONFIG], &zero, &cfg);
	for (i = 0; i < XDPFWD_CT_STATE_MAX; i++)
		timeout[i] = cfg.timeout[i] ? cfg.timeout[i] : default_timeouts[i];
	return err;
}

int rule_gens_read(int fd, __u32 *gens)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *ids = calloc(XDPFWD_MAX_RULES, sizeof(*ids)), count = XDPFWD_MAX_RULES, token, i;
	int err = ids ? 0 : -ENOMEM;

	if (!err)
		err = bpf_map_lookup_batch(fd, NULL, &token, ids, gens, &count, &opts);
	if (err == -ENOENT)
		err = 0;
	for (i = 0; !err && i < count; i++)
		if (ids[i] != i)
			err = -EIO;
	if (!err && count != XDPFWD_MAX_RULES)
		err = -EIO;
	free(ids);
	return err;
}

int ct_view_read(const struct state *st, struct ct_view *view)
{
	struct timespec ts;
	int err;

	err = read_timeouts(st, view->timeout);
	if (!err)
		err = rule_gens_read(st->map_fd[MAP_RULE_GENS], view->gens);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	view->now_ns = ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
	return err;
}

/* idle_ns - time since the last packet of the connection of @flow and
 * @reply, either direction; a packet the datapath recorded after the view
 * was taken counts as now. */
static __u64 idle_ns(const struct ct_view *view, const struct xdpfwd_flow *flow,
		     const struct xdpfwd_flow *reply)
{
	__u64 seen = flow->seen_ns > reply->seen_ns ? flow->seen_ns : reply->seen_ns;

	return view->now_ns > seen ? view->now_ns - seen : 0;
}

bool ct_valid(const struct ct_view *view, const struct xdpfwd_flow *flow,
	      const struct xdpfwd_flow *reply)
{
	if (flow->dir != XDPFWD_DIR_ORIG || flow->rule_id >= XDPFWD_MAX_RULES ||
	    flow->state >= XDPFWD_CT_STATE_MAX || view->gens[flow->rule_id] != flow->rule_gen)
		return false;
	return idle_ns(view, flow, reply) <= view->timeout[flow->state] * NSEC_PER_SEC;
}

/* reply_key_of - the key of the reply entry of the original entry @flow,
 * itself keyed @key. */
static struct xdpfwd_flow_key reply_key_of(const struct xdpfwd_flow_key *key,
					   const struct xdpfwd_flow *flow)
{
	return (struct xdpfwd_flow_key){
		.saddr = flow->daddr,
		.daddr = flow->saddr,
		.sport = flow->dport,
		.dport = flow->sport,
		.proto = key->proto,
	};
}

/* ct_live - whether the connection of original entry @flow, keyed @key in
 * table @fd, is valid and whole (the LRU can evict one half, and the
 * datapath then makes it anew); fills @reply with its other half. */
static bool ct_live(const struct ct_view *view, int fd, const struct xdpfwd_flow_key *key,
		    const struct xdpfwd_flow *flow, struct xdpfwd_flow *reply)
{
	struct xdpfwd_flow_key reply_key = reply_key_of(key, flow);

	return flow->dir == XDPFWD_DIR_ORIG && !bpf_map_lookup_elem(fd, &reply_key, reply) &&
	       ct_valid(view, flow, reply);
}

typedef void (*ct_fn)(const struct xdpfwd_flow_key *key, const struct xdpfwd_flow *flow,
		      int fd, void *arg);

/* walk_table - call @fn for every entry of flow table @fd. Batches go by
 * hash bucket, so entries the datapath adds or removes meanwhile make no
 * entry seen twice, and @fn may delete what it is given. Returns 0 or -errno. */
static int walk_table(int fd, ct_fn fn, void *arg)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct xdpfwd_flow_key keys[WALK_CHUNK], token;
	struct xdpfwd_flow *vals;
	bool first = true, done = false;
	__u32 count, i;
	int err = 0;

	vals = calloc(WALK_CHUNK, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	while (!done) {
		count = WALK_CHUNK;
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys, vals, &count,
					   &opts);
		if (err && err != -ENOENT)
			break;
		done = err == -ENOENT;
		err = 0;
		first = false;
		for (i = 0; i < count; i++)
			fn(&keys[i], &vals[i], fd, arg);
	}
	free(vals);
	return err;
}

/* walk - walk_table over both tables, the established one first. */
static int walk(const struct state *st, ct_fn fn, void *arg)
{
	int err = walk_table(st->map_fd[MAP_FLOWS], fn, arg);

	return err ? err : walk_table(st->map_fd[MAP_FLOWS_NEW], fn, arg);
}

struct count_arg {
	const struct ct_view *view;
	__u64 total;
	__u64 *per_rule;
};

static void count_one(const struct xdpfwd_flow_key *key, const struct xdpfwd_flow *flow,
		      int fd, void *arg)
{
	struct count_arg *c = arg;
	struct xdpfwd_flow reply;

	if (!ct_live(c->view, fd, key, flow, &reply))
		return;
	c->total++;
	if (c->per_rule)
		c->per_rule[flow->rule_id]++;
}

int ct_count_valid(const struct state *st, __u64 *total, __u64 *per_rule)
{
	struct count_arg c = { .per_rule = per_rule };
	struct ct_view *view;
	int err;

	*total = 0;
	view = calloc(1, sizeof(*view));
	if (!view)
		return -ENOMEM;
	c.view = view;
	err = ct_view_read(st, view);
	if (!err)
		err = walk(st, count_one, &c);
	*total = c.total;
	free(view);
	return err;
}

struct purge_arg {
	const struct ct_view *view;
	long rule_id;	/* negative: every rule */
	bool orphans;	/* second pass: reply entries whose original is gone */
	__u64 removed;	/* live connections removed */
};

/* purge_one - remove a connection through its original entry, both halves at
 * once so the count sees each whole; lone reply entries on the second pass. */
static void purge_one(const struct xdpfwd_flow_key *key, const struct xdpfwd_flow *flow,
		      int fd, void *arg)
{
	struct xdpfwd_flow_key reply_key = reply_key_of(key, flow);
	struct purge_arg *p = arg;
	struct xdpfwd_flow reply;

	if (p->rule_id >= 0 && flow->rule_id != p->rule_id)
		return;
	if (flow->dir != XDPFWD_DIR_ORIG) {
		if (p->orphans)
			bpf_map_delete_elem(fd, key);
		return;
	}
	if (ct_live(p->view, fd, key, flow, &reply))
		p->removed++;
	bpf_map_delete_elem(fd, &reply_key);
	bpf_map_delete_elem(fd, key);
}

/* express_clear - empty every CPU's express cache: a slot would otherwise
 * forward the packets of a connection just removed for up to a second
 * more, instead of leaving them to make it anew. Run after the entries
 * are gone, so that no packet can fill a slot from them again. Returns 0
 * or -errno. */
static int express_clear(const struct state *st)
{
	int ncpus = libbpf_num_possible_cpus(), err = 0;
	struct xdpfwd_express *zero;
	__u32 i;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	zero = calloc(ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	for (i = 0; !err && i < XDPFWD_EXPRESS_SLOTS; i++)
		if (bpf_map_update_elem(st->map_fd[MAP_EXPRESS], &i, zero, BPF_ANY))
			err = -errno;
	free(zero);
	return err;
}

int ct_purge(const struct state *st, long rule_id, __u64 *removed)
{
	struct purge_arg p = { .rule_id = rule_id };
	struct ct_view *view;
	int err, view_err;

	view = calloc(1, sizeof(*view));
	if (!view)
		return -ENOMEM;
	p.view = view;
	/* Without the view, still remove: only the count would be wrong. */
	view_err = ct_view_read(st, view);
	err = walk(st, purge_one, &p);
	p.orphans = true;
	if (!err)
		err = walk(st, purge_one, &p);
	if (!err)
		err = express_clear(st);
	if (!err)
		err = view_err;
	*removed = p.removed;
	free(view);
	return err;
}

/* find_rule_id - the id of the rule named @name; -1 after the error. */
static long find_rule_id(const struct xdpfwd_rule *rules, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(rules[i].name, name))
			return rules[i].id;
	errorf(EXIT_USAGE, "no rule named '%s' (see 'xdpfwd list')", name);
	return -1;
}

/* parse_name_filter - "[--name RULE]": *@name stays NULL without it. */
static int parse_name_filter(int argc, char **argv, const char *sub, const char **name)
{
	if (argc == 2 && !strcmp(argv[0], "--name"))
		*name = argv[1];
	else if (argc)
		return errorf(EXIT_USAGE, "usage: xdpfwd conntrack %s [--name RULE]", sub);
	return EXIT_OK;
}

struct list_arg {
	const struct ct_view *view;
	const char *names[XDPFWD_MAX_RULES];	/* rule names by id */
	long rule_id;				/* negative: every rule */
	int express_fd;				/* the express cache, or -1 */
	struct xdpfwd_express *slots;		/* one slot of every CPU */
	int ncpus;
};

/* add_pending - add to @flow, the entry of @key, what the express cache of
 * any CPU counted for it and has not added to the entry yet. */
static void add_pending(struct list_arg *l, const struct xdpfwd_flow_key *key,
			struct xdpfwd_flow *flow)
{
	__u32 way, slot, cpu;

	for (way = 0; l->slots && way < 2; way++) {
		slot = xdpfwd_express_slot(key) ^ way;
		if (bpf_map_lookup_elem(l->express_fd, &slot, l->slots))
			continue;
		for (cpu = 0; cpu < (__u32)l->ncpus; cpu++) {
			const struct xdpfwd_express *e = &l->slots[cpu];

			if (memcmp(&e->key, key, sizeof(*key)))
				continue;
			flow->packets += e->packets;
			flow->bytes += e->bytes;
			if (e->seen_ns > flow->seen_ns)
				flow->seen_ns = e->seen_ns;
		}
	}
}

static void print_tuple(const char *key, __u32 src, __u16 sport, __u32 dst, __u16 dport)
{
	char a[INET_ADDRSTRLEN], text[64];
	int len;

	len = snprintf(text, sizeof(text), "%s:%u", addr_str(src, a), ntohs(sport));
	snprintf(text + len, sizeof(text) - len, " -> %s:%u", addr_str(dst, a), ntohs(dport));
	out_open_object(key);
	out_string("src", NULL, addr_str(src, a));
	out_u64("sport", NULL, ntohs(sport));
	out_string("dst", NULL, addr_str(dst, a));
	out_u64("dport", NULL, ntohs(dport));
	out_close_object();
	out_text("%-46s ", text);
}

static void list_one(const struct xdpfwd_flow_key *key, const struct xdpfwd_flow *flow,
		     int fd, void *arg)
{
	struct list_arg *l = arg;
	const struct ct_view *v = l->view;
	struct xdpfwd_flow_key reply_key = reply_key_of(key, flow);
	struct xdpfwd_flow orig = *flow, reply;
	__u64 age, idle, timeout;

	if (!ct_live(v, fd, key, flow, &reply) ||
	    (l->rule_id >= 0 && flow->rule_id != l->rule_id))
		return;
	add_pending(l, key, &orig);
	add_pending(l, &reply_key, &reply);
	flow = &orig;
	age = v->now_ns > flow->created_ns ? v->now_ns - flow->created_ns : 0;
	idle = idle_ns(v, flow, &reply);
	timeout = v->timeout[flow->state] * NSEC_PER_SEC;
	out_open_object(NULL);
	out_string("proto", "%-5s ", proto_str(key->proto));
	print_tuple("orig", key->saddr, key->sport, key->daddr, key->dport);
	print_tuple("reply", flow->daddr, flow->dport, flow->saddr, flow->sport);
	out_string("state", "%-13s ", state_names[flow->state]);
	out_bool("assured", "%-7s ", flow->flags & XDPFWD_CT_F_ASSURED);
	out_string("rule", "%-20s ", l->names[flow->rule_id] ? l->names[flow->rule_id] : "?");
	out_u64("age", "%7llu ", age / NSEC_PER_SEC);
	out_u64("idle", "%7llu ", idle / NSEC_PER_SEC);
	out_u64("expires", "%7llu ", (timeout - idle) / NSEC_PER_SEC);
	out_u64("orig_packets", "%10llu ", flow->packets);
	out_u64("orig_bytes", "%12llu ", flow->bytes);
	out_u64("reply_packets", "%10llu ", reply.packets);
	out_u64("reply_bytes", "%12llu\n", reply.bytes);
	out_close_object();
}

/* ct_list - the valid connections, of one rule or all. */
static int ct_list(int argc, char **argv)
{
	struct xdpfwd_rule *rules = NULL;
	const char *name = NULL;
	struct list_arg *l;
	struct ct_view *view;
	struct state st;
	int err, n = 0, i;

	err = parse_name_filter(argc, argv, "list", &name);
	if (err)
		return err;
	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	view = calloc(1, sizeof(*view));
	l = calloc(1, sizeof(*l));
	if (!view || !l) {
		err = errorf(EXIT_FAIL, "out of memory");
		goto out;
	}
	l->view = view;
	l->rule_id = -1;
	l->express_fd = state_exists(&st) ? st.map_fd[MAP_EXPRESS] : -1;
	l->ncpus = libbpf_num_possible_cpus();
	if (l->express_fd >= 0 && l->ncpus > 0)
		l->slots = calloc(l->ncpus, sizeof(*l->slots));
	if (state_exists(&st)) {
		n = rules_read(st.map_fd[MAP_RULES], &rules);
		if (n < 0) {
			err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-n));
			goto out;
		}
	}
	if (name) {
		l->rule_id = find_rule_id(rules, n, name);
		if (l->rule_id < 0) {
			err = EXIT_USAGE;
			goto out;
		}
	}
	for (i = 0; i < n; i++)
		if (rules[i].id < XDPFWD_MAX_RULES)
			l->names[rules[i].id] = rules[i].name;
	out_text("%-5s %-46s %-46s %-13s %-7s %-20s %7s %7s %7s %10s %12s %10s %12s\n", "PROTO",
		 "ORIGINAL", "REPLY", "STATE", "ASSURED", "RULE", "AGE", "IDLE", "EXPIRES",
		 "ORIG_PKTS", "ORIG_BYTES", "REPLY_PKTS", "REPLY_BYTES");
	out_open_array(NULL);
	if (state_exists(&st)) {
		err = ct_view_read(&st, view);
		if (!err)
			err = walk(&st, list_one, l);
	}
	out_close_array();
	if (err)
		err = errorf(EXIT_FAIL, "cannot read the connection tables: %s", strerror(-err));
out:
	free(view);
	if (l)
		free(l->slots);
	free(l);
	free(rules);
	state_close(&st, false);
	return err;
}

/* ct_flush - remove the connections, of one rule or all. */
static int ct_flush(int argc, char **argv)
{
	struct xdpfwd_rule *rules = NULL;
	const char *name = NULL;
	long rule_id = -1;
	__u64 removed;
	struct state st;
	int err, n;

	err = parse_name_filter(argc, argv, "flush", &name);
	if (err)
		return err;
	err = state_open(&st, STATE_CHANGE);
	if (err)
		return err;
	if (name) {
		n = rules_read(st.map_fd[MAP_RULES], &rules);
		if (n < 0)
			err = errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-n));
		else
			rule_id = find_rule_id(rules, n, name);
		if (!err && rule_id < 0)
			err = EXIT_USAGE;
	}
	if (!err)
		err = ct_purge(&st, rule_id, &removed);
	if (err < 0)
		err = errorf(EXIT_FAIL, "cannot clear the connection tables: %s", strerror(-err));
	if (!err) {
		out_open_object(NULL);
		out_u64("removed", "%llu connections removed\n", removed);
		out_close_object();
	}
	free(rules);
	state_close(&st, false);
	return err;
}

/* parse_state - a state by name; "none" is no state a connection waits in. */
static int parse_state(const char *s, int *state)
{
	int i;

	for (i = XDPFWD_CT_NONE + 1; i < XDPFWD_CT_STATE_MAX; i++)
		if (!strcmp(s, state_names[i])) {
			*state = i;
			return EXIT_OK;
		}
	return errorf(EXIT_USAGE, "unknown connection state '%s': see 'xdpfwd conntrack timeout' for the states",
		      s);
}

static int parse_seconds(const char *s, __u32 *seconds)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v < 1 || v > INT_MAX)
		return errorf(EXIT_USAGE, "invalid timeout '%s': give seconds from 1 to %d", s, INT_MAX);
	*seconds = v;
	return EXIT_OK;
}

/* show_timeouts - the timeout of every state a connection can be in. */
static int show_timeouts(void)
{
	__u32 timeout[XDPFWD_CT_STATE_MAX];
	struct state st;
	int err, i;

	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	err = read_timeouts(&st, timeout);
	if (err)
		err = errorf(EXIT_FAIL, "cannot read the timeouts: %s", strerror(-err));
	if (!err) {
		out_text("%-14s %10s\n", "STATE", "TIMEOUT(s)");
		out_open_object(NULL);
		for (i = XDPFWD_CT_NONE + 1; i < XDPFWD_CT_STATE_MAX; i++) {
			out_text("%-14s ", state_names[i]);
			out_u64(state_names[i], "%10llu\n", timeout[i]);
		}
		out_close_object();
	}
	state_close(&st, false);
	return err;
}

/* ct_timeout - show the timeouts, or set one. Setting before any load
 * creates the state, as add does, so it holds from the first packet. */
static int ct_timeout(int argc, char **argv)
{
	struct xdpfwd_config cfg;
	__u32 seconds = 0, zero = 0;
	struct state st;
	int err, state = 0;

	if (!argc)
		return show_timeouts();
	if (argc != 2)
		return errorf(EXIT_USAGE, "usage: xdpfwd conntrack timeout [STATE SECONDS]");
	err = parse_state(argv[0], &state);
	if (!err)
		err = parse_seconds(argv[1], &seconds);
	if (!err)
		err = state_open(&st, STATE_CREATE);
	if (err)
		return err;
	if (bpf_map_lookup_elem(st.map_fd[MAP_CONFIG], &zero, &cfg)) {
		err = errorf(EXIT_FAIL, "cannot read the timeouts: %s", strerror(errno));
	} else {
		cfg.timeout[state] = seconds;
		if (bpf_map_update_elem(st.map_fd[MAP_CONFIG], &zero, &cfg, BPF_EXIST))
			err = errorf(EXIT_FAIL, "cannot set the timeout: %s", strerror(errno));
	}
	state_close(&st, err);
	return err;
}

static int ct_help(int argc, char **argv)
{
	size_t col = 0;
	int i;

	(void)argc;
	(void)argv;
	printf("Usage: xdpfwd [-j] conntrack { list | show } [--name RULE]\n"
	       "       xdpfwd conntrack flush [--name RULE]\n"
	       "       xdpfwd [-j] conntrack timeout [STATE SECONDS]\n"
	       "       xdpfwd conntrack help\n"
	       "\n"
	       "  list       the live connections (the default): original and reply tuples,\n"
	       "             state, whether assured, rule, age, idle and expiry in seconds,\n"
	       "             packets and bytes each way\n"
	       "  flush      remove connections (both directions); prints how many. A flushed\n"
	       "             connection is picked up again by its next packet (UDP, and TCP\n"
	       "             mid-stream by loose pickup) through the rule as it is now\n"
	       "  timeout    the idle timeout of each state; with STATE SECONDS, set one\n"
	       "             (SECONDS from 1 to %d). States:\n            ",
	       INT_MAX);
	for (i = XDPFWD_CT_NONE + 1; i < XDPFWD_CT_STATE_MAX; i++) {
		if (col + strlen(state_names[i]) > 64) {
			printf("\n            ");
			col = 0;
		}
		col += printf(" %s", state_names[i]);
	}
	printf("\n");
	return EXIT_OK;
}

static const struct cmd ct_cmds[] = {
	{ "list", ct_list, false },
	{ "show", ct_list, false },
	{ "flush", ct_flush, false },
	{ "timeout", ct_timeout, false },
	{ "help", ct_help, false },
};

int do_conntrack(int argc, char **argv)
{
	const struct cmd *cmd;
	int err = EXIT_OK;

	if (!argc)
		return ct_list(0, NULL);
	cmd = cmd_find(ct_cmds, sizeof(ct_cmds) / sizeof(ct_cmds[0]), argv[0], "conntrack", &err);
	return cmd ? cmd->fn(argc - 1, argv + 1) : err;
}
