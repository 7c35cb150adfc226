/* SPDX-License-Identifier: GPL-2.0 */
/* What the CLI's command files share: exit codes, the pinned state, and the
 * command entry points. */
#ifndef XDPFWD_CLI_H
#define XDPFWD_CLI_H

#include <stdbool.h>
#include <linux/types.h>
#include "xdpfwd.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	/* runtime failure: the system refused */
	EXIT_USAGE = 2,	/* bad usage: nothing was changed */
};

enum state_map {
	MAP_RULES,
	MAP_RULE_STATS,
	MAP_FLOWS,
	MAP_LOCAL_ADDRS,
	MAP_TX_PORTS,
	MAP_REASONS,
	MAP_COUNT,
};

/* The pinned state under the pin folder, and the lock that serialises
 * changes to it. */
struct state {
	const char *pin_dir;
	int lock_fd;
	int map_fd[MAP_COUNT];
	bool created;		/* this invocation created the state */
};

/* Global options, set by main(). */
extern const char *opt_pin_dir;

/* state.c */
enum state_open {
	STATE_READ,		/* shared lock; absent state is not an error */
	STATE_CHANGE,		/* exclusive lock; state must exist */
	STATE_CREATE,		/* exclusive lock; create the state if absent */
};
/* Returns EXIT_OK, or an exit code after printing the error. With STATE_READ
 * and no state, returns EXIT_OK with st->map_fd[] all -1. */
int state_open(struct state *st, enum state_open how);
/* Releases fds and lock; with @failed, removes state this invocation created. */
void state_close(struct state *st, bool failed);
/* Removes every pin and the folder; links and programs go with them. */
int state_destroy(struct state *st);
bool state_exists(const struct state *st);
void state_path(const struct state *st, char *buf, size_t len, const char *name);
int state_prog_fd(const struct state *st, const char *pin_name);

/* iface.c: per-interface attachment, and the maps that follow interfaces. */
int iface_refresh_maps(struct state *st);
int iface_loaded_count(const struct state *st);

/* rule.c: let the kernel stop keeping the rules' backends resolved. */
void rules_release_neighbours(struct state *st);

/* Commands. */
int do_load(int argc, char **argv);
int do_unload(int argc, char **argv);
int do_status(int argc, char **argv);
int do_add(int argc, char **argv);
int do_del(int argc, char **argv);
int do_list(int argc, char **argv);
int do_stats(int argc, char **argv);

/* Text forms of addresses and protocols, for printing. */
const char *addr_str(__u32 addr, char *buf);
const char *proto_str(__u8 proto);

#endif /* XDPFWD_CLI_H */
