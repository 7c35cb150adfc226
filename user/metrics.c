// SPDX-License-Identifier: GPL-2.0
/* What 'stats --watch' and 'exporter' share: one reading of every counter,
 * taken with the state opened read-only for just that long, so that both
 * follow rules, loads and unloads made while they run; and the signals that
 * end them. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "xdpfwd_cli.h"
#include "output.h"

/* map_id - the kernel's id of map @fd, or 0. */
static __u32 map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* read_loaded - the counters of the open state @st into @c. */
static int read_loaded(const struct state *st, struct counters *c)
{
	__u64 *per_rule;
	int i, err;

	c->loaded = true;
	c->instance = map_id(st->map_fd[MAP_RULE_STATS]);
	c->n_rules = rules_read(st->map_fd[MAP_RULES], &c->rules);
	if (c->n_rules < 0) {
		err = c->n_rules;
		c->n_rules = 0;
		return errorf(EXIT_FAIL, "cannot read rules: %s", strerror(-err));
	}
	c->stats = calloc(c->n_rules + 1, sizeof(*c->stats));
	c->flows = calloc(c->n_rules + 1, sizeof(*c->flows));
	per_rule = calloc(XDPFWD_MAX_RULES, sizeof(*per_rule));
	if (!c->stats || !c->flows || !per_rule) {
		free(per_rule);
		return errorf(EXIT_FAIL, "out of memory");
	}
	if (ct_count_valid(st, &c->total_flows, per_rule))
		warnf("cannot read the connection tables: connection counts are incomplete");
	for (i = 0; i < c->n_rules; i++) {
		rule_stats_read(st, c->rules[i].id, &c->stats[i]);
		if (c->rules[i].id < XDPFWD_MAX_RULES)
			c->flows[i] = per_rule[c->rules[i].id];
	}
	free(per_rule);
	reasons_read(st, c->reasons);
	state_flow_capacity(st, &c->cap);
	c->n_ifaces = iface_loaded_count(st);
	return EXIT_OK;
}

int counters_read(struct counters *c)
{
	struct state st;
	int err;

	memset(c, 0, sizeof(*c));
	err = state_open(&st, STATE_READ);
	if (!err && state_exists(&st))
		err = read_loaded(&st, c);
	state_close(&st, false);
	if (err)
		counters_free(c);
	return err;
}

void counters_free(struct counters *c)
{
	free(c->rules);
	free(c->stats);
	free(c->flows);
	memset(c, 0, sizeof(*c));
}

/* The handler only makes the signals deliverable: a shell starts background
 * jobs with SIGINT ignored, and an ignored signal is discarded even while
 * blocked. They are taken with sigwait(). */
static void on_stop_signal(int sig)
{
	(void)sig;
}

void stop_signals_block(sigset_t *set)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}
