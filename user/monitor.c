// SPDX-License-Identifier: GPL-2.0
/* monitor [--count N] [--name RULE] [--type new|closed|drop]...: the events
 * the datapath writes to its ring (bpf/events.h), one line each, as they
 * come: what tcpdump on the router cannot show of what XDP forwards.
 *
 * The ring has one reading position, shared by every reader: two monitors
 * at once each see part of the events. While nobody reads, events beyond the
 * ring's XDPFWD_EVENTS_BYTES are lost, and nothing counts them. The monitor
 * follows the state being unloaded and loaded again, as 'stats --watch'
 * does: it reads whichever ring is pinned now.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "output.h"

#define EVENTS_PIN	"events"
#define POLL_MS		100	/* how soon a signal is seen */
#define FOLLOW_NS	1000000000LL	/* how often the pin is looked at again */

struct monitor_opts {
	unsigned long count;	/* events to print; 0: until a signal */
	const char *name;	/* only this rule's events; NULL: all */
	unsigned int types;	/* a bit (1 << type) for each type shown */
};

struct monitor {
	struct monitor_opts o;
	int ring_fd;			/* the events map being read; -1: none */
	__u32 ring_id;			/* its kernel id */
	struct ring_buffer *rb;
	struct xdpfwd_rule *rules;	/* as last read, in the order of their ids */
	int n_rules;
	__u64 start_ns;			/* CLOCK_MONOTONIC: older events are not shown */
	__s64 wall_offset_ns;		/* CLOCK_REALTIME - CLOCK_MONOTONIC */
	unsigned long printed;
};

static int usage_monitor(void)
{
	return errorf(EXIT_USAGE,
		      "usage: xdpfwd monitor [--count N] [--name RULE] [--type new|closed|drop]...");
}

static int parse_count(const char *s, unsigned long *count)
{
	char *end;

	errno = 0;
	*count = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || !*count)
		return errorf(EXIT_USAGE, "invalid --count '%s': give the number of events to show, from 1",
			      s);
	return EXIT_OK;
}

/* parse_type - add the type named @s to the bits in @types. */
static int parse_type(const char *s, unsigned int *types)
{
	static const char *const names[] = XDPFWD_EVENT_NAMES;
	unsigned int t;

	for (t = XDPFWD_EV_NEW; t < sizeof(names) / sizeof(names[0]); t++) {
		if (!strcmp(s, names[t])) {
			*types |= 1U << t;
			return EXIT_OK;
		}
	}
	return errorf(EXIT_USAGE, "invalid --type '%s': give new, closed or drop", s);
}

static int parse_monitor(int argc, char **argv, struct monitor_opts *o)
{
	int i, err = EXIT_OK;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < argc && !err; i++) {
		if (i + 1 == argc)
			return usage_monitor();
		if (!strcmp(argv[i], "--count"))
			err = parse_count(argv[++i], &o->count);
		else if (!strcmp(argv[i], "--name") && !o->name)
			o->name = argv[++i];
		else if (!strcmp(argv[i], "--type"))
			err = parse_type(argv[++i], &o->types);
		else
			return usage_monitor();
	}
	if (!o->types)
		o->types = ~0U;
	return err;
}

static __s64 clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ring_pinned - the events map pinned in the open state @st: an fd, or
 * -errno (-ENOENT: none is). */
static int ring_pinned(const struct state *st)
{
	char path[512];
	int fd;

	state_path(st, path, sizeof(path), EVENTS_PIN);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* rules_reload - read the rules of the state anew, keeping the last reading
 * when there is none to read. */
static void rules_reload(struct monitor *m)
{
	struct xdpfwd_rule *rules;
	struct state st;
	int n;

	if (state_open(&st, STATE_READ))
		return;
	if (state_exists(&st)) {
		n = rules_read(st.map_fd[MAP_RULES], &rules);
		if (n >= 0) {
			free(m->rules);
			m->rules = rules;
			m->n_rules = n;
		}
	}
	state_close(&st, false);
}

static int by_id(const void *key, const void *elem)
{
	const __u32 *id = key;
	const struct xdpfwd_rule *r = elem;

	return (*id > r->id) - (*id < r->id);
}

/* rule_of_port - the rule whose external ports take @k, a packet's tuple. */
static const struct xdpfwd_rule *rule_of_port(const struct monitor *m,
					      const struct xdpfwd_flow_key *k)
{
	__u16 port = ntohs(k->dport), first;
	int i;

	for (i = 0; i < m->n_rules; i++) {
		first = ntohs(m->rules[i].ext_port);
		if (m->rules[i].proto == k->proto && port >= first &&
		    port - first < m->rules[i].nports &&
		    (!m->rules[i].ext_addr || m->rules[i].ext_addr == k->daddr))
			return &m->rules[i];
	}
	return NULL;
}

/* matched_drop - whether @reason drops the first packet of a connection a
 * rule refused (the datapath's match_drops()): its tuple names the rule. */
static bool matched_drop(__u16 reason)
{
	return reason == XDPFWD_R_DROP_CT_FULL || reason == XDPFWD_R_DROP_DENIED ||
	       reason == XDPFWD_R_DROP_SNAT_NO_ADDR || reason == XDPFWD_R_DROP_SNAT_NO_PORT;
}

/* rule_find - @ev's rule in the rules as last read: by id for a connection,
 * by port for a drop a rule refused; NULL for other drops. */
static const struct xdpfwd_rule *rule_find(const struct monitor *m,
					   const struct xdpfwd_event *ev)
{
	if (ev->type == XDPFWD_EV_DROP)
		return matched_drop(ev->reason) ? rule_of_port(m, &ev->key) : NULL;
	return bsearch(&ev->rule_id, m->rules, m->n_rules, sizeof(*m->rules), by_id);
}

/* event_rule - the name of @ev's rule; NULL when it has none, or none any
 * more. Rules added since the last reading are read anew. A rule deleted
 * and its id given to another may name the other. */
static const char *event_rule(struct monitor *m, const struct xdpfwd_event *ev)
{
	const struct xdpfwd_rule *r = rule_find(m, ev);

	if (!r && (ev->type != XDPFWD_EV_DROP || matched_drop(ev->reason))) {
		rules_reload(m);
		r = rule_find(m, ev);
	}
	return r ? r->name : NULL;
}

/* name_of - @names[@i] of @n, or "?" for a value this version does not know. */
static const char *name_of(const char *const *names, unsigned int n, unsigned int i)
{
	return i < n && *names[i] ? names[i] : "?";
}

static const char *event_proto(__u8 proto)
{
	return proto == IPPROTO_ICMP ? "icmp" : proto_str(proto);
}

/* print_time - when @ev happened: JSON gets Unix seconds and the monotonic
 * clock as the datapath read it; text the local time of day, as tcpdump. */
static void print_time(const struct monitor *m, const struct xdpfwd_event *ev)
{
	__s64 wall = (__s64)ev->time_ns + m->wall_offset_ns;
	time_t secs = wall / 1000000000LL;
	char when[16];

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&secs));
	out_double("time", NULL, wall / 1e9);
	out_u64("monotonic_ns", NULL, ev->time_ns);
	out_text("%s.%06lld", when, (long long)(wall % 1000000000LL) / 1000);
}

/* print_event - one line: when, what, the tuple, then what the type tells. */
static void print_event(const struct monitor *m, const struct xdpfwd_event *ev,
			const char *rule)
{
	static const char *const types[] = XDPFWD_EVENT_NAMES;
	static const char *const reasons[XDPFWD_R_MAX] = XDPFWD_REASON_NAMES;
	static const char *const states[XDPFWD_CT_STATE_MAX] = XDPFWD_CT_STATE_NAMES;
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN], ifname[IF_NAMESIZE];

	out_open_object(NULL);
	print_time(m, ev);
	out_string("type", " %s", name_of(types, sizeof(types) / sizeof(types[0]), ev->type));
	out_string("proto", " %s", event_proto(ev->key.proto));
	out_string("src", " %s", addr_str(ev->key.saddr, src));
	out_u64("sport", ":%llu", ntohs(ev->key.sport));
	out_string("dst", " -> %s", addr_str(ev->key.daddr, dst));
	out_u64("dport", ":%llu", ntohs(ev->key.dport));
	if (ev->type == XDPFWD_EV_DROP)
		out_string("reason", " reason %s", name_of(reasons, XDPFWD_R_MAX, ev->reason));
	if (rule)
		out_string("rule", " rule %s", rule);
	else
		out_null("rule", ev->type == XDPFWD_EV_DROP ? NULL : " rule %s", "?");
	if (ev->type == XDPFWD_EV_CLOSED)
		out_string("state", " state %s", name_of(states, XDPFWD_CT_STATE_MAX, ev->state));
	if (ev->ifindex && if_indextoname(ev->ifindex, ifname))
		out_string("ifname", " iface %s", ifname);
	else
		out_null("ifname", NULL, NULL);
	out_close_object();
	out_text("\n");
	out_finish();
}

/* on_event - libbpf's callback for each record: print it unless filtered
 * out, or older than the monitor (left in the ring while nobody read it,
 * perhaps long ago). Returns < 0 (stop reading, leaving the rest in the ring) once
 * --count events are printed. */
static int on_event(void *ctx, void *data, size_t size)
{
	struct monitor *m = ctx;
	struct xdpfwd_event ev;
	const char *rule;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	if (ev.time_ns < m->start_ns || ev.type >= 32 || !(m->o.types & (1U << ev.type)))
		return 0;
	rule = event_rule(m, &ev);
	if (m->o.name && (!rule || strcmp(rule, m->o.name)))
		return 0;
	print_event(m, &ev, rule);
	m->printed++;
	return m->o.count && m->printed >= m->o.count ? -ECANCELED : 0;
}

static void ring_close(struct monitor *m)
{
	ring_buffer__free(m->rb);
	m->rb = NULL;
	if (m->ring_fd >= 0)
		close(m->ring_fd);
	m->ring_fd = -1;
	m->ring_id = 0;
}

/* ring_use - read the events map @fd from now on, in place of any other.
 * Takes @fd. Returns 0 or -errno. */
static int ring_use(struct monitor *m, int fd)
{
	struct ring_buffer *rb = ring_buffer__new(fd, on_event, m, NULL);

	if (!rb) {
		close(fd);
		return -errno;
	}
	ring_close(m);
	m->rb = rb;
	m->ring_fd = fd;
	m->ring_id = map_id(fd);
	return 0;
}

/* ring_follow - after an unload and a new load, read the new state's ring.
 * Keeps the old one while nothing is pinned: it may only be moving. */
static void ring_follow(struct monitor *m)
{
	struct state st;
	int fd, err;

	if (state_open(&st, STATE_READ))
		return;
	fd = state_exists(&st) ? ring_pinned(&st) : -ENOENT;
	state_close(&st, false);
	if (fd < 0)
		return;
	if (map_id(fd) == m->ring_id) {
		close(fd);
		return;
	}
	err = ring_use(m, fd);
	if (err)
		warnf("cannot read the events of the new state: %s", strerror(-err));
	else
		rules_reload(m);
}

/* monitor_start - the state's ring and rules, and the rule of --name. */
static int monitor_start(struct monitor *m)
{
	struct state st;
	int err, fd, i;

	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	if (!state_exists(&st)) {
		state_close(&st, false);
		return errorf(EXIT_USAGE, "xdpfwd is not loaded; run 'xdpfwd load IFACE' first");
	}
	fd = ring_pinned(&st);
	state_close(&st, false);
	if (fd == -ENOENT)
		return errorf(EXIT_FAIL, "the state in %s has no events ring (it is of an older version): run 'xdpfwd load IFACE' to complete it",
			      opt_pin_dir);
	err = fd < 0 ? fd : ring_use(m, fd);
	if (err)
		return errorf(EXIT_FAIL, "cannot read the events in %s: %s", opt_pin_dir,
			      strerror(-err));
	rules_reload(m);
	for (i = 0; m->o.name && i < m->n_rules; i++)
		if (!strcmp(m->rules[i].name, m->o.name))
			return EXIT_OK;
	if (m->o.name)
		return errorf(EXIT_USAGE, "no rule named '%s' (see 'xdpfwd list')", m->o.name);
	return EXIT_OK;
}

/* stop_signalled - whether SIGINT or SIGTERM (blocked, in @set) is pending;
 * takes it. */
static bool stop_signalled(const sigset_t *set)
{
	struct timespec now = {};

	return sigtimedwait(set, NULL, &now) > 0;
}

/* monitor_run - print events until a signal of @set or --count of them. */
static int monitor_run(struct monitor *m, const sigset_t *set)
{
	__s64 next_follow = clock_ns(CLOCK_MONOTONIC) + FOLLOW_NS;
	int n;

	while (!stop_signalled(set)) {
		n = ring_buffer__poll(m->rb, POLL_MS);
		if (m->o.count && m->printed >= m->o.count)
			break;
		if (n < 0 && n != -EINTR)
			return errorf(EXIT_FAIL, "cannot read the events: %s", strerror(-n));
		if (clock_ns(CLOCK_MONOTONIC) >= next_follow) {
			ring_follow(m);
			next_follow += FOLLOW_NS;
		}
	}
	return EXIT_OK;
}

int do_monitor(int argc, char **argv)
{
	struct monitor m = { .ring_fd = -1 };
	sigset_t set;
	int err;

	err = parse_monitor(argc, argv, &m.o);
	if (err)
		return err;
	stop_signals_block(&set);
	m.start_ns = clock_ns(CLOCK_MONOTONIC);
	m.wall_offset_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	err = monitor_start(&m);
	if (!err)
		err = monitor_run(&m, &set);
	ring_close(&m);
	free(m.rules);
	return err;
}
