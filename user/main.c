// SPDX-License-Identifier: GPL-2.0
/* xdpfwd [OPTIONS] COMMAND [ARGS]: global options, then a command from the
 * table, matched by prefix as ip(8) and bpftool do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "output.h"

const char *opt_pin_dir = XDPFWD_PIN_ROOT;

static int do_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "load", do_load, true },
	{ "unload", do_unload, true },
	{ "status", do_status, false },
	{ "add", do_add, false },
	{ "del", do_del, false },
	{ "replace", do_replace, false },
	{ "apply", do_apply, true },
	{ "list", do_list, false },
	{ "save", do_save, false },
	{ "stats", do_stats, false },
	{ "conntrack", do_conntrack, false },
	{ "check", do_check, false },
	{ "exporter", do_exporter, false },
	{ "monitor", do_monitor, false },
	{ "help", do_help, false },
};

static int do_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("Usage: xdpfwd [-j|--json] [--pin-dir DIR] COMMAND [ARGS]\n"
	       "\n"
	       "Port forwarding (DNAT) in XDP: packets to an external port are rewritten to an\n"
	       "internal address and port and forwarded; replies are translated back.\n"
	       "\n"
	       "Commands:\n"
	       "  load IFACE... [--mode native|generic] [--max-flows N]\n"
	       "        attach to the interfaces (idempotent); replies the kernel forwards out\n"
	       "        of them are translated by a TC egress program. --max-flows N sizes the\n"
	       "        connection table (default %d, from %d to %d; 'status' shows\n"
	       "        its memory); it changes only while no interface is loaded, keeping rules.\n"
	       "        Run by a newer xdpfwd, it swaps in its programs in place, keeping rules,\n"
	       "        counters and connections\n"
	       "  unload IFACE... | unload --all\n"
	       "        detach; --all also removes every rule, connection and pin\n"
	       "  status                          interfaces, modes, rule and connection counts\n"
	       "  add PROTO [EXT_ADDR:]PORT[-PORT] INT_ADDR[:PORT] [--name NAME] [--snat auto|ADDR]\n"
	       "      [--allow CIDR]...\n"
	       "        PROTO is tcp or udp; a port is a number or a name from /etc/services. A\n"
	       "        range maps onto the backend's from PORT on (offset kept); without a\n"
	       "        backend port the ports stay. Without EXT_ADDR the rule serves every\n"
	       "        address of this host. --snat rewrites the client's source to this host's\n"
	       "        address (auto: the one facing the backend), as connections that leave\n"
	       "        by the interface they came in on always are; --allow admits only those\n"
	       "        sources (repeatable). Overlapping rules are refused\n"
	       "  replace PROTO [EXT_ADDR:]PORT[-PORT] INT_ADDR[:PORT] [OPTIONS]\n"
	       "        give an existing rule a new backend, SNAT and allowlist: new connections\n"
	       "        get them, open ones keep the old until they end\n"
	       "  del PROTO [EXT_ADDR:]PORT[-PORT] | del --name NAME\n"
	       "        delete a rule and end its connections\n"
	       "  apply FILE\n"
	       "        make the rules exactly those of FILE (- for standard input): one a line,\n"
	       "        in the words of 'add' without 'add', '#' to the line's end a comment. The\n"
	       "        whole file is checked first (an error names its line and changes\n"
	       "        nothing), then the new rules take over at once; a rule whose ports stay\n"
	       "        keeps its counters and connections (changed, as 'replace' does)\n"
	       "  list                            the rules\n"
	       "  save                            the rules as a file for 'apply'\n"
	       "  stats                           per rule: live connections, packets and bytes\n"
	       "                                  both ways, sources denied; packets by outcome\n"
	       "  stats --watch [SECONDS] [--count N]\n"
	       "        per rule: packets and bits per second each way, redrawn every SECONDS\n"
	       "        (default 1, from 0.1 to 3600) until Ctrl-C, or N times; with -j one JSON\n"
	       "        line an interval\n"
	       "  conntrack [list|flush|timeout] ...\n"
	       "        the tracked connections; see 'xdpfwd conntrack help'\n"
	       "  check [--name RULE]             can each rule work: one finding a line, with what\n"
	       "                                  to do; exit 1 when one cannot\n"
	       "  exporter [--listen ADDR:PORT]\n"
	       "        serve the counters to Prometheus at http://ADDR:PORT/metrics (default\n"
	       "        127.0.0.1:9435; 0.0.0.0 for every address) until SIGINT or SIGTERM\n"
	       "  monitor [--count N] [--name RULE] [--type new|closed|drop]...\n"
	       "        events from the datapath as they happen, one a line: connections made\n"
	       "        and closed (TCP), packets dropped with the reason; -j: one JSON object\n"
	       "        a line. Until SIGINT or SIGTERM, or N events. One monitor at a time:\n"
	       "        readers share the %d KiB ring, and while none reads, events beyond it\n"
	       "        are lost\n"
	       "  help                            this text\n"
	       "\n"
	       "Options:\n"
	       "  -j, --json       JSON output on every command (errors as {\"error\": ...})\n"
	       "  --pin-dir DIR    bpffs folder holding the state (default %s,\n"
	       "                   or $XDPFWD_PIN_DIR)\n"
	       "  -V, --version    print the version\n"
	       "\n"
	       "Exit status: 0 success; 1 runtime failure (the system refused); 2 bad usage or\n"
	       "a request that does not fit the state (unknown interface, duplicate or missing\n"
	       "rule). A command that fails changes nothing.\n",
	       XDPFWD_DEFAULT_MAX_FLOWS, XDPFWD_MIN_FLOWS, XDPFWD_MAX_FLOWS, XDPFWD_EVENTS_BYTES / 1024,
	       XDPFWD_PIN_ROOT);
	return EXIT_OK;
}

const struct cmd *cmd_find(const struct cmd *table, size_t n, const char *name,
			   const char *parent, int *err)
{
	const struct cmd *found = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strcmp(table[i].name, name))
			return &table[i];
		if (!table[i].exact && !strncmp(table[i].name, name, strlen(name))) {
			if (found) {
				*err = errorf(EXIT_USAGE, "ambiguous %s%scommand '%s': %s or %s?",
					      parent, *parent ? " " : "", name, found->name, table[i].name);
				return NULL;
			}
			found = &table[i];
		}
	}
	if (!found)
		*err = errorf(EXIT_USAGE, "unknown %s%scommand '%s'; see 'xdpfwd %s%shelp'", parent,
			      *parent ? " " : "", name, parent, *parent ? " " : "");
	return found;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	const struct cmd *cmd;
	bool json = false;
	int i, err = EXIT_OK;

	if (getenv("XDPFWD_PIN_DIR"))
		opt_pin_dir = getenv("XDPFWD_PIN_DIR");
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--pin-dir") && i + 1 < argc) {
			opt_pin_dir = argv[++i];
		} else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("xdpfwd %s\n", XDPFWD_VERSION);
			return EXIT_OK;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			return do_help(0, NULL);
		} else {
			out_init(json);
			return errorf(EXIT_USAGE, "unknown option '%s'; see 'xdpfwd help'", argv[i]);
		}
	}
	out_init(json);
	libbpf_set_print(libbpf_print);
	if (i == argc) {
		do_help(0, NULL);
		return EXIT_USAGE;
	}
	cmd = cmd_find(cmds, sizeof(cmds) / sizeof(cmds[0]), argv[i], "", &err);
	if (cmd)
		err = cmd->fn(argc - i - 1, argv + i + 1);
	out_finish();
	return err;
}
