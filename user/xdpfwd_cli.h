/* SPDX-License-Identifier: GPL-2.0 */
/* What the CLI's command files share: exit codes, the pinned state, and the
 * command entry points. */
#ifndef XDPFWD_CLI_H
#define XDPFWD_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "xdpfwd.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	/* runtime failure: the system refused */
	EXIT_USAGE = 2,	/* bad usage: nothing was changed */
};

enum state_map {
	MAP_RULES,
	MAP_RULE_PORTS,
	MAP_ALLOW,
	MAP_RULE_STATS,
	MAP_RULE_GENS,
	MAP_FLOWS,
	MAP_FLOWS_NEW,
	MAP_FRAGS,
	MAP_CONFIG,
	MAP_LOCAL_ADDRS,
	MAP_TX_PORTS,
	MAP_REASONS,
	MAP_EXPRESS,
	MAP_COUNT,
};

/* The flow tables, as the kernel made them. */
struct flow_capacity {
	__u32 max_flows;	/* connections the established table holds */
	__u32 max_new_flows;	/* connections the not-yet-answered table holds */
	__u64 bytes;		/* memory both take, as the kernel counts it */
};

/* The pinned state under the pin folder, and the lock that serialises
 * changes to it. */
struct state {
	const char *pin_dir;
	int lock_fd;
	int map_fd[MAP_COUNT];
	bool created;		/* this invocation created the state */
	/* Why this binary cannot use the state ("map flows: value size 72 ->
	 * 80"), or "". Only STATE_READ_ANY opens such a state, without maps. */
	char foreign[160];
};

/* The pinned programs, in the order of their pins. */
enum state_prog { PROG_NATIVE, PROG_GENERIC, PROG_TC, PROG_TC_INGRESS, PROG_COUNT };
struct state_progs {
	int fd[PROG_COUNT];	/* -1 when absent */
};

/* A command or subcommand: matched by unambiguous prefix, unless @exact. */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	bool exact;	/* attaches to interfaces, or replaces every rule: a typo must not */
};
/* cmd_find - the one of @n @cmds that @name names or is a prefix of; NULL
 * after printing the error. @parent names the command they belong to ("" at
 * the top), for the error. */
const struct cmd *cmd_find(const struct cmd *cmds, size_t n, const char *name,
			   const char *parent, int *err);

/* Global options, set by main(). */
extern const char *opt_pin_dir;

/* state.c */
enum state_open {
	STATE_READ,		/* shared lock; absent state is not an error */
	STATE_READ_ANY,		/* STATE_READ, also of a state of other layouts */
	STATE_CHANGE,		/* exclusive lock; state must exist */
	STATE_CREATE,		/* exclusive lock; create the state if absent */
};
/* Returns EXIT_OK, or an exit code after printing the error. With STATE_READ
 * and no state, returns EXIT_OK with st->map_fd[] all -1. STATE_CREATE sizes
 * new flow tables for XDPFWD_DEFAULT_MAX_FLOWS connections. */
int state_open(struct state *st, enum state_open how);
/* state_open, sizing new flow tables for @max_flows connections. */
int state_open_sized(struct state *st, enum state_open how, __u32 max_flows);
/* Replaces the flow tables and programs with ones for @max_flows connections,
 * keeping every other map as it is (rules, ids, generations, counters).
 * Connections are lost; no interface may be loaded. */
int state_resize(struct state *st, __u32 max_flows);
int state_flow_capacity(const struct state *st, struct flow_capacity *cap);
/* Releases fds and lock; with @failed, removes state this invocation created. */
void state_close(struct state *st, bool failed);
/* Removes every pin and the folder; links and programs go with them. */
int state_destroy(struct state *st);
bool state_exists(const struct state *st);
void state_path(const struct state *st, char *buf, size_t len, const char *name);
int state_prog_fd(const struct state *st, const char *pin_name);
/* state_build - this binary's build: a hash of its BPF object's bytes, so
 * that any change to the programs, however made, is another build. */
__u64 state_build(void);
/* state_running - what loaded the state's programs; -ENOENT when nothing
 * recorded it (a state older than the record). */
int state_running(const struct state *st, struct xdpfwd_meta *meta);
/* state_current - whether the state runs this binary's build and has every
 * map this binary knows. */
bool state_current(const struct state *st);
/* state_progs_load - this binary's programs, loaded on the state's maps, all
 * kept as they are (the flow tables too); maps new to this version are made
 * and pinned. The programs are not pinned. Returns EXIT_OK or an exit code
 * after printing the error. */
int state_progs_load(struct state *st, struct state_progs *progs);
/* state_progs_pinned - the programs pinned in the state. 0 or -errno. */
int state_progs_pinned(const struct state *st, struct state_progs *progs);
/* state_progs_pin - pin @progs as the state's programs. 0 or -errno. */
int state_progs_pin(struct state *st, const struct state_progs *progs);
void state_progs_close(struct state_progs *progs);
/* state_record_build - record this binary as what loaded the programs. */
int state_record_build(struct state *st);

/* iface.c: per-interface attachment, and the maps that follow interfaces. */
enum xdp_mode { MODE_AUTO, MODE_NATIVE, MODE_GENERIC };
int iface_refresh_maps(struct state *st);
int iface_loaded_count(const struct state *st);
/* loaded_ifindexes - the interfaces with a pinned link, at most @max into
 * @out. Returns the count. */
int loaded_ifindexes(const struct state *st, __u32 *out, int max);
/* attached_mode - the mode our link on @ifindex runs in. */
enum xdp_mode attached_mode(__u32 ifindex);
/* xdp_egress_ok - whether @ifindex takes XDP-redirected frames now. */
bool xdp_egress_ok(__u32 ifindex);
/* forwarding_enabled - net.ipv4.ip_forward: 1, 0, or -1 when unreadable. */
int forwarding_enabled(void);
/* The per-reason packet counters, as the "reasons" object. */
void print_reasons(const struct state *st);
/* reasons_read - each reason's packets, summed over the CPUs, into @sums
 * (XDPFWD_R_MAX long). Returns 0 or -errno. */
int reasons_read(const struct state *st, __u64 *sums);

/* spec.c: rules as the command line gives them. */
struct allow_cidr {
	__u32 addr;
	__u8 len;
};
struct rule_spec {
	struct xdpfwd_rule rule;	/* all but id and gen */
	bool named;			/* --name was given */
	int n_allow;
	struct allow_cidr allow[XDPFWD_MAX_ALLOW_RULE];
};
/* parse_rule_spec - add's and replace's arguments (@cmd names the command,
 * for the usage line). A rule not named gets a name from its protocol and
 * external ports. */
int parse_rule_spec(int argc, char **argv, const char *cmd, struct rule_spec *spec);
int parse_proto(const char *s, __u8 *proto);
/* parse_ext - "[ADDR:]PORT[-PORT]": address (0 when absent), first port
 * (network order) and count. */
int parse_ext(const char *arg, __u8 proto, __u32 *addr, __u16 *port, __u16 *nports);
/* parse_addr - a unicast IPv4 address a forward can use, network order. */
int parse_addr(const char *s, const char *what, __u32 *addr);
int check_name(const char *name);
/* format_ports - "PORT" or "FIRST-LAST". */
void format_ports(char *buf, size_t len, __u16 port, __u16 nports);
const char *addr_str(__u32 addr, char *buf);
const char *proto_str(__u8 proto);

/* rule.c */
/* rules_read - every rule, in the order of their ids. Returns the count
 * (entries in *@out, to free) or -errno. */
int rules_read(int fd, struct xdpfwd_rule **out);
/* allow_read - the allowlist of rule @id, at most XDPFWD_MAX_ALLOW_RULE
 * CIDRs into @out. Returns the count or -errno. */
int allow_read(int fd, __u32 id, struct allow_cidr *out);
/* rule_set_live - the rule set (0 or 1) packets are matched against. */
__u8 rule_set_live(const struct state *st);
/* ports_set - enter (@on) or remove each external port of @r in rule_ports,
 * in rule set @set. Entering stops at the first failure, having removed what
 * it entered. Returns 0 or -errno. */
int ports_set(int fd, const struct xdpfwd_rule *r, __u8 set, bool on);
/* rule_stats_read - rule @id's counters, summed over the CPUs (zero when
 * unreadable). Returns 0 or -errno. */
int rule_stats_read(const struct state *st, __u32 id, struct xdpfwd_rule_stats *sum);
/* allow_apply - make rule @id's allowlist in the map @want (@n_want CIDRs)
 * where it was @have (@n_have): the @additions, or else the deletions. Only
 * additions can fail; the caller deletes them again with allow_apply(@have,
 * @want) swapped. Returns 0 or -errno. */
int allow_apply(int fd, __u32 id, const struct allow_cidr *want, int n_want,
		const struct allow_cidr *have, int n_have, bool additions);
/* rules_overlap - whether @a and @b would both claim some packet's port. */
bool rules_overlap(const struct xdpfwd_rule *a, const struct xdpfwd_rule *b);
/* ext_str - "[ADDR:]PORTS" of @r, as the user would write it, into @buf. */
const char *ext_str(const struct xdpfwd_rule *r, char *buf, size_t len);
/* manage_neighbour - have the kernel keep @addr's next hop resolved, so the
 * datapath finds it; tell the user when it cannot. */
void manage_neighbour(__u32 addr);
/* warn_snat_addr - tell the user when @r source-NATs to an address that is
 * not this host's. */
void warn_snat_addr(const struct state *st, const struct xdpfwd_rule *r);
/* rule_backend_port - the backend port of @r's first external port. */
__u16 rule_backend_port(const struct xdpfwd_rule *r);
/* backend_neighbour - the interface and next hop through which the kernel
 * forwards to @addr; false when it does not (no route, or a local address). */
bool backend_neighbour(__u32 addr, __u32 *ifindex, __u32 *nexthop);
/* Let the kernel stop keeping the rules' backends resolved. */
void rules_release_neighbours(struct state *st);

/* Commands. */
int do_load(int argc, char **argv);
int do_unload(int argc, char **argv);
int do_status(int argc, char **argv);
int do_add(int argc, char **argv);
int do_del(int argc, char **argv);
int do_list(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_replace(int argc, char **argv);
int do_conntrack(int argc, char **argv);
int do_check(int argc, char **argv);
int do_apply(int argc, char **argv);
int do_save(int argc, char **argv);
int do_exporter(int argc, char **argv);
int do_monitor(int argc, char **argv);
/* stats_watch - 'stats --watch [SECONDS] [--count N]' (watch.c). */
int stats_watch(int argc, char **argv);

/* conntrack.c: the connection tables. A connection is valid (alive) when its
 * original-direction entry is of the rule's current generation and neither
 * direction has had a packet for longer than its state's timeout. */
struct ct_view {
	__u64 now_ns;				/* CLOCK_MONOTONIC */
	__u32 timeout[XDPFWD_CT_STATE_MAX];	/* seconds, defaults filled in */
	__u32 gens[XDPFWD_MAX_RULES];		/* rule_gens */
};
int ct_view_read(const struct state *st, struct ct_view *view);
/* rule_gens_read - rule_gens, all XDPFWD_MAX_RULES of it, into @gens, in one
 * batch. Returns 0 or -errno. */
int rule_gens_read(int fd, __u32 *gens);
bool ct_valid(const struct ct_view *view, const struct xdpfwd_flow *flow,
	      const struct xdpfwd_flow *reply);
/* ct_count_valid - valid connections in both tables, in total and (when
 * @per_rule, XDPFWD_MAX_RULES long) by rule id. Returns 0 or -errno. */
int ct_count_valid(const struct state *st, __u64 *total, __u64 *per_rule);
/* ct_purge - delete both entries of every connection of rule @rule_id (all
 * when negative), valid or not, from both tables; *@removed counts the valid
 * ones. Returns 0 or -errno. */
int ct_purge(const struct state *st, long rule_id, __u64 *removed);

/* metrics.c: what 'stats --watch' and 'exporter' read. */
struct counters {
	bool loaded;			/* the state exists; all else 0 when not */
	__u32 instance;			/* kernel id of rule_stats: new state, new counters */
	int n_rules;
	struct xdpfwd_rule *rules;	/* in the order of their ids */
	struct xdpfwd_rule_stats *stats;	/* of each rule */
	__u64 *flows;			/* valid connections of each rule */
	__u64 total_flows;
	__u64 reasons[XDPFWD_R_MAX];
	struct flow_capacity cap;
	int n_ifaces;			/* interfaces loaded */
};
/* counters_read - every counter, with the state opened read-only for just
 * this. Returns EXIT_OK (loaded false when there is no state), or an exit
 * code after the error, with nothing to free. */
int counters_read(struct counters *c);
void counters_free(struct counters *c);
/* stop_signals_block - block SIGINT and SIGTERM in this thread and those it
 * starts, making them deliverable to sigwait() on @set. */
void stop_signals_block(sigset_t *set);

#endif /* XDPFWD_CLI_H */
