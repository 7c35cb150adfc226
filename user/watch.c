// SPDX-License-Identifier: GPL-2.0
/* stats --watch [SECONDS] [--count N]: each rule's packet and bit rates over
 * the last interval, redrawn in place on a terminal; elsewhere one block (or
 * with -j one JSON line) an interval. A rate needs the same rule in two
 * readings: a rule added since shows none until the next interval, and a
 * rule deleted and added again, or a state loaded afresh, starts over. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "xdpfwd_cli.h"
#include "output.h"

#define WATCH_MIN_INTERVAL	0.1
#define WATCH_MAX_INTERVAL	3600.0

struct watch_opts {
	double interval;	/* seconds */
	unsigned long count;	/* intervals to show; 0: until a signal */
};

static int usage_watch(void)
{
	return errorf(EXIT_USAGE, "usage: xdpfwd stats [--watch [SECONDS] [--count N]]");
}

static int parse_interval(const char *s, double *secs)
{
	char *end;

	errno = 0;
	*secs = strtod(s, &end);
	if (errno || end == s || *end || !(*secs >= WATCH_MIN_INTERVAL && *secs <= WATCH_MAX_INTERVAL))
		return errorf(EXIT_USAGE, "invalid --watch interval '%s': give seconds from %.1f to %.0f",
			      s, WATCH_MIN_INTERVAL, WATCH_MAX_INTERVAL);
	return EXIT_OK;
}

static int parse_count(const char *s, unsigned long *count)
{
	char *end;

	errno = 0;
	*count = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || !*count)
		return errorf(EXIT_USAGE, "invalid --count '%s': give the number of intervals to show, from 1",
			      s);
	return EXIT_OK;
}

/* parse_watch - SECONDS is the argument after --watch unless that is an
 * option. */
static int parse_watch(int argc, char **argv, struct watch_opts *o)
{
	bool watch = false;
	int i, err = EXIT_OK;

	o->interval = 1.0;
	o->count = 0;
	for (i = 0; i < argc && !err; i++) {
		if (!strcmp(argv[i], "--watch")) {
			watch = true;
			if (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
				err = parse_interval(argv[++i], &o->interval);
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			err = parse_count(argv[++i], &o->count);
		} else {
			return usage_watch();
		}
	}
	if (!err && !watch)
		return errorf(EXIT_USAGE, "--count needs --watch: xdpfwd stats --watch [SECONDS] --count N");
	return err;
}

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* rate - per second over @secs; NAN when the counter went back (it was
 * made anew). */
static double rate(__u64 was, __u64 is, double secs)
{
	return is >= was ? (is - was) / secs : NAN;
}

/* out_rate - @v with @fmt, or null (text: "-" with @fmt_none) when unknown. */
static void out_rate(const char *key, const char *fmt, const char *fmt_none, double v)
{
	if (isnan(v))
		out_null(key, fmt_none, "-");
	else
		out_double(key, fmt, v);
}

static int by_id(const void *key, const void *elem)
{
	const struct xdpfwd_rule *x = key, *y = elem;

	return (x->id > y->id) - (x->id < y->id);
}

/* find_same - @r's counters in @c: the same rule (id and generation, so not
 * deleted and added again since) of the same state; NULL when none. */
static const struct xdpfwd_rule_stats *find_same(const struct counters *c, __u32 instance,
						 const struct xdpfwd_rule *r)
{
	const struct xdpfwd_rule *found;

	if (!c->loaded || c->instance != instance)
		return NULL;
	found = bsearch(r, c->rules, c->n_rules, sizeof(*r), by_id);
	if (!found || found->gen != r->gen)
		return NULL;
	return &c->stats[found - c->rules];
}

struct rule_rates {
	double orig_pps, orig_bps, reply_pps, reply_bps, denied_pps;
};

/* rule_rates - @b's rates since @a, @secs before; all unknown without @a. */
static struct rule_rates rule_rates(const struct xdpfwd_rule_stats *a,
				    const struct xdpfwd_rule_stats *b, double secs)
{
	if (!a)
		return (struct rule_rates){ NAN, NAN, NAN, NAN, NAN };
	return (struct rule_rates){
		.orig_pps = rate(a->orig_packets, b->orig_packets, secs),
		.orig_bps = 8 * rate(a->orig_bytes, b->orig_bytes, secs),
		.reply_pps = rate(a->reply_packets, b->reply_packets, secs),
		.reply_bps = 8 * rate(a->reply_bytes, b->reply_bytes, secs),
		.denied_pps = rate(a->denied_packets, b->denied_packets, secs),
	};
}

/* print_rule_rates - rule @i of @is; @was is the reading @secs before. */
static void print_rule_rates(const struct counters *was, const struct counters *is, int i,
			     double secs)
{
	const struct xdpfwd_rule_stats *a = find_same(was, is->instance, &is->rules[i]);
	struct rule_rates v = rule_rates(a, &is->stats[i], secs);

	out_open_object(NULL);
	out_string("name", "%-20s", is->rules[i].name);
	out_u64("flows", " %7llu", is->flows[i]);
	out_rate("orig_pps", " %10.1f", " %10s", v.orig_pps);
	out_rate("orig_bps", " %12.0f", " %12s", v.orig_bps);
	out_rate("reply_pps", " %10.1f", " %10s", v.reply_pps);
	out_rate("reply_bps", " %12.0f", " %12s", v.reply_bps);
	out_rate("denied_pps", " %10.1f\n", " %10s\n", v.denied_pps);
	out_close_object();
}

/* print_reason_rates - every reason's rate in JSON; in text, the sums of
 * each kind of outcome (the reasons' names start with it). */
static void print_reason_rates(const struct counters *was, const struct counters *is,
			       double secs)
{
	static const char *const names[XDPFWD_R_MAX] = XDPFWD_REASON_NAMES;
	static const char *const kinds[] = { "fwd", "icmp", "pass", "drop", "tc" };
	double kind_sum[sizeof(kinds) / sizeof(kinds[0])] = {};
	bool same = was->loaded && is->loaded && was->instance == is->instance;
	unsigned int r, k;
	double v;

	out_open_object("reasons_per_sec");
	for (r = 0; r < XDPFWD_R_MAX; r++) {
		v = same ? rate(was->reasons[r], is->reasons[r], secs) : NAN;
		out_rate(names[r], NULL, NULL, v);
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (!strncmp(names[r], kinds[k], strlen(kinds[k])) &&
			    names[r][strlen(kinds[k])] == '_')
				kind_sum[k] += v;
	}
	out_close_object();
	out_text("packets/s:");
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (isnan(kind_sum[k]))
			out_text(" %s -", kinds[k]);
		else
			out_text(" %s %.1f", kinds[k], kind_sum[k]);
	out_text("\n");
}

/* print_rates - one interval: @is read @secs after @was. Text on a terminal
 * redraws the screen; elsewhere blocks are apart by a blank line. */
static void print_rates(const struct counters *was, const struct counters *is, double secs,
			bool first)
{
	double t = now(CLOCK_REALTIME);
	time_t whole = t;
	char when[16];
	int i;

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&whole));
	if (!out_is_json() && isatty(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	else if (!first)
		out_text("\n");
	out_open_object(NULL);
	out_double("time", NULL, t);
	out_double("interval", "xdpfwd stats, rates over %.1f s", secs);
	out_text(" at %s%s\n", when, is->loaded ? "" : " (not loaded)");
	out_text("%-20s %7s %10s %12s %10s %12s %10s\n", "NAME", "FLOWS", "ORIG_PPS", "ORIG_BPS",
		 "REPLY_PPS", "REPLY_BPS", "DENIED_PPS");
	out_open_array("rules");
	for (i = 0; i < is->n_rules; i++)
		print_rule_rates(was, is, i, secs);
	out_close_array();
	print_reason_rates(was, is, secs);
	out_close_object();
	out_finish();
}

/* wait_until - sleep until CLOCK_MONOTONIC reaches @deadline. Returns
 * false when a signal of @set came first. */
static bool wait_until(double deadline, const sigset_t *set)
{
	struct timespec ts;
	double left;
	int sig;

	while ((left = deadline - now(CLOCK_MONOTONIC)) > 0) {
		ts.tv_sec = left;
		ts.tv_nsec = (left - ts.tv_sec) * 1e9;
		sig = sigtimedwait(set, NULL, &ts);
		if (sig > 0)
			return false;
	}
	return true;
}

int stats_watch(int argc, char **argv)
{
	struct counters was, is;
	struct watch_opts o;
	double t_was, t_is, deadline;
	unsigned long n;
	sigset_t set;
	int err;

	err = parse_watch(argc, argv, &o);
	if (err)
		return err;
	stop_signals_block(&set);
	err = counters_read(&was);
	if (err)
		return err;
	t_was = now(CLOCK_MONOTONIC);
	deadline = t_was;
	for (n = 0; !o.count || n < o.count; n++) {
		deadline += o.interval;
		if (!wait_until(deadline, &set))
			break;
		err = counters_read(&is);
		if (err)
			break;
		t_is = now(CLOCK_MONOTONIC);
		print_rates(&was, &is, t_is - t_was, !n);
		counters_free(&was);
		was = is;
		t_was = t_is;
		/* Fallen behind (a slow reading): keep the interval, not the pace. */
		if (deadline < t_is)
			deadline = t_is;
	}
	counters_free(&was);
	return err;
}
