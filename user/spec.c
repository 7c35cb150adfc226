// SPDX-License-Identifier: GPL-2.0
/* Rules as the command line gives them: "PROTO [EXT_ADDR:]PORTS INT_ADDR[:PORT]
 * [--name NAME] [--snat auto|ADDR] [--allow CIDR]...". Ports may be numbers
 * or names from /etc/services, external ones a range. Nothing here touches
 * the state. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xdpfwd_cli.h"
#include "output.h"

const char *addr_str(__u32 addr, char *buf)
{
	return inet_ntop(AF_INET, &addr, buf, INET_ADDRSTRLEN);
}

const char *proto_str(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

int parse_proto(const char *s, __u8 *proto)
{
	if (!strcmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else
		return errorf(EXIT_USAGE, "unknown protocol '%s': use tcp or udp", s);
	return EXIT_OK;
}

/* port_value - @s as a port of @proto: a number from 1 to 65535, or a
 * service name. Returns the port in host order, or 0. */
static __u16 port_value(const char *s, __u8 proto)
{
	struct servent *se;
	unsigned long v;
	char *end;

	if (isdigit((unsigned char)*s)) {
		errno = 0;
		v = strtoul(s, &end, 10);
		return *end || errno || v < 1 || v > 65535 ? 0 : v;
	}
	se = *s ? getservbyname(s, proto_str(proto)) : NULL;
	return se ? ntohs(se->s_port) : 0;
}

static int bad_port(const char *s, __u8 proto)
{
	return errorf(EXIT_USAGE, "invalid port '%s': give a number from 1 to 65535 or a %s service name from /etc/services",
		      s, proto_str(proto));
}

/* parse_ports - "PORT" or "FIRST-LAST", into the first port (network order)
 * and the count. A service name may itself hold '-', so the whole is tried
 * as one port before it is split. */
static int parse_ports(const char *s, __u8 proto, bool range_ok, __u16 *port, __u16 *nports)
{
	char buf[64], *dash;
	__u16 first, last;

	first = port_value(s, proto);
	if (first) {
		*port = htons(first);
		*nports = 1;
		return EXIT_OK;
	}
	if (strlen(s) >= sizeof(buf))
		return bad_port(s, proto);
	strcpy(buf, s);
	for (dash = strchr(buf, '-'); dash; dash = strchr(dash + 1, '-')) {
		*dash = '\0';
		first = port_value(buf, proto);
		last = port_value(dash + 1, proto);
		*dash = '-';
		if (!first || !last)
			continue;
		if (!range_ok)
			return errorf(EXIT_USAGE, "invalid backend port '%s': give one port, the first of the range; the rest follow the external range",
				      s);
		if (last < first)
			return errorf(EXIT_USAGE, "invalid port range '%s': the first port must not be above the last",
				      s);
		*port = htons(first);
		*nports = last - first + 1;
		return EXIT_OK;
	}
	return bad_port(s, proto);
}

int parse_addr(const char *s, const char *what, __u32 *addr)
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

/* parse_cidr - "ADDR[/LEN]" with no host bits set beyond LEN. */
static int parse_cidr(const char *s, struct allow_cidr *c)
{
	char buf[32], *slash, *end;
	unsigned long len = 32;
	__u32 mask;

	if (strlen(s) >= sizeof(buf))
		return errorf(EXIT_USAGE, "invalid --allow '%s': give a CIDR such as 192.0.2.0/24", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || errno || len > 32)
			return errorf(EXIT_USAGE, "invalid --allow '%s': the prefix length must be 0 to 32", s);
	}
	if (inet_pton(AF_INET, buf, &c->addr) != 1)
		return errorf(EXIT_USAGE, "invalid --allow '%s': give a CIDR such as 192.0.2.0/24", s);
	mask = len ? htonl(~0U << (32 - len)) : 0;
	if (c->addr & ~mask)
		return errorf(EXIT_USAGE, "invalid --allow '%s': address bits are set past /%lu (did you mean %s/%lu?)",
			      s, len, inet_ntop(AF_INET, &(__u32){ c->addr & mask }, buf, sizeof(buf)), len);
	c->len = len;
	return EXIT_OK;
}

int parse_ext(const char *arg, __u8 proto, __u32 *addr, __u16 *port, __u16 *nports)
{
	char buf[64], *colon;
	int err;

	if (strlen(arg) >= sizeof(buf))
		return errorf(EXIT_USAGE, "invalid external '%s'", arg);
	strcpy(buf, arg);
	colon = strrchr(buf, ':');
	*addr = 0;
	if (colon) {
		*colon = '\0';
		err = parse_addr(buf, "external", addr);
		if (err)
			return err;
	}
	return parse_ports(colon ? colon + 1 : buf, proto, true, port, nports);
}

/* parse_int - "ADDR[:PORT]"; without a port the backend port is 0, "the
 * external one". */
static int parse_int(const char *arg, __u8 proto, __u32 *addr, __u16 *port)
{
	char buf[64], *colon;
	__u16 n;
	int err;

	if (strlen(arg) >= sizeof(buf))
		return errorf(EXIT_USAGE, "invalid internal '%s'", arg);
	strcpy(buf, arg);
	colon = strrchr(buf, ':');
	if (colon)
		*colon = '\0';
	err = parse_addr(buf, "internal", addr);
	*port = 0;
	if (!err && colon)
		err = parse_ports(colon + 1, proto, false, port, &n);
	return err;
}

int check_name(const char *name)
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

static int parse_snat(const char *s, struct xdpfwd_rule *r)
{
	r->flags |= XDPFWD_RULE_F_SNAT;
	if (!strcmp(s, "auto")) {
		r->flags |= XDPFWD_RULE_F_SNAT_AUTO;
		return EXIT_OK;
	}
	return parse_addr(s, "--snat", &r->snat_addr);
}

/* parse_options - what follows the endpoints. */
static int parse_options(int argc, char **argv, struct rule_spec *spec)
{
	struct xdpfwd_rule *r = &spec->rule;
	int i, err = EXIT_OK;

	for (i = 0; i < argc && !err; i += 2) {
		if (i + 1 == argc)
			return errorf(EXIT_USAGE, "option '%s' needs a value", argv[i]);
		if (!strcmp(argv[i], "--name")) {
			err = check_name(argv[i + 1]);
			if (!err)
				snprintf(r->name, sizeof(r->name), "%s", argv[i + 1]);
			spec->named = true;
		} else if (!strcmp(argv[i], "--snat")) {
			if (r->flags & XDPFWD_RULE_F_SNAT)
				return errorf(EXIT_USAGE, "--snat given twice");
			err = parse_snat(argv[i + 1], r);
		} else if (!strcmp(argv[i], "--allow")) {
			if (spec->n_allow == XDPFWD_MAX_ALLOW_RULE)
				return errorf(EXIT_USAGE, "too many --allow: a rule takes at most %d CIDRs",
					      XDPFWD_MAX_ALLOW_RULE);
			err = parse_cidr(argv[i + 1], &spec->allow[spec->n_allow++]);
			r->flags |= XDPFWD_RULE_F_ALLOW;
		} else {
			return errorf(EXIT_USAGE, "unknown option '%s': use --name, --snat or --allow",
				      argv[i]);
		}
	}
	return err;
}

void format_ports(char *buf, size_t len, __u16 port, __u16 nports)
{
	if (nports > 1)
		snprintf(buf, len, "%u-%u", ntohs(port), ntohs(port) + nports - 1);
	else
		snprintf(buf, len, "%u", ntohs(port));
}

static void default_name(struct xdpfwd_rule *r)
{
	char a[INET_ADDRSTRLEN], ports[16];

	format_ports(ports, sizeof(ports), r->ext_port, r->nports);
	if (r->ext_addr)
		snprintf(r->name, sizeof(r->name), "%s-%s-%s", proto_str(r->proto),
			 addr_str(r->ext_addr, a), ports);
	else
		snprintf(r->name, sizeof(r->name), "%s-%s", proto_str(r->proto), ports);
}

int parse_rule_spec(int argc, char **argv, const char *cmd, struct rule_spec *spec)
{
	struct xdpfwd_rule *r = &spec->rule;
	int err;

	memset(spec, 0, sizeof(*spec));
	if (argc < 3)
		return errorf(EXIT_USAGE, "usage: xdpfwd %s PROTO [EXT_ADDR:]PORT[-PORT] INT_ADDR[:PORT] [--name NAME] [--snat auto|ADDR] [--allow CIDR]...",
			      cmd);
	err = parse_proto(argv[0], &r->proto);
	if (!err)
		err = parse_ext(argv[1], r->proto, &r->ext_addr, &r->ext_port, &r->nports);
	if (!err)
		err = parse_int(argv[2], r->proto, &r->int_addr, &r->int_port);
	if (!err)
		err = parse_options(argc - 3, argv + 3, spec);
	if (err)
		return err;
	if (r->int_port && ntohs(r->int_port) + r->nports - 1 > 65535)
		return errorf(EXIT_USAGE, "backend ports %u-%u run past 65535: choose a lower first backend port",
			      ntohs(r->int_port), ntohs(r->int_port) + r->nports - 1);
	if (!spec->named)
		default_name(r);
	return EXIT_OK;
}

