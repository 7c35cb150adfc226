/* SPDX-License-Identifier: GPL-2.0 */
/* What the CLI's command files share: exit codes, the pinned state, and the
 * command entry points. */
#ifndef XDPFWD_CLI_H
#define XDPFWD_CLI_H

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
};

/* A command or subcommand: matched by unambiguous prefix, unless @exact. */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	bool exact;	/* attaches to interfaces: a typo must not do that */
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

/* conntrack.c: the connection tables. A connection is valid (alive) when its
 * original-direction entry is of the rule's current generation and has not
 * been idle longer than its state's timeout. */
struct ct_view {
	__u64 now_ns;				/* CLOCK_MONOTONIC */
	__u32 timeout[XDPFWD_CT_STATE_MAX];	/* seconds, defaults filled in */
	__u32 gens[XDPFWD_MAX_RULES];		/* rule_gens */
};
int ct_view_read(const struct state *st, struct ct_view *view);
bool ct_valid(const struct ct_view *view, const struct xdpfwd_flow *flow);
/* ct_count_valid - valid connections in both tables, in total and (when
 * @per_rule, XDPFWD_MAX_RULES long) by rule id. Returns 0 or -errno. */
int ct_count_valid(const struct state *st, __u64 *total, __u64 *per_rule);
/* ct_purge - delete both entries of every connection of rule @rule_id (all
 * when negative), valid or not, from both tables; *@removed counts the valid
 * ones. Returns 0 or -errno. */
int ct_purge(const struct state *st, long rule_id, __u64 *removed);

#endif /* XDPFWD_CLI_H */
