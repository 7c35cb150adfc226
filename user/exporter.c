// SPDX-License-Identifier: GPL-2.0
/* exporter [--listen ADDR:PORT]: the counters of 'stats' and 'status' in the
 * Prometheus text exposition format, at http://ADDR:PORT/metrics, served by
 * libmicrohttpd. Every scrape reads the state afresh, read-only, so it
 * follows rule changes, loads and unloads; without a state it reports
 * xdpfwd_up 0. Runs until SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "xdpfwd_cli.h"
#include "output.h"

#define EXPORTER_DEFAULT_LISTEN	"127.0.0.1:9435"
#define METRICS_TYPE		"text/plain; version=0.0.4; charset=utf-8"

static const char landing_page[] =
	"<html><head><title>xdpfwd exporter</title></head><body>\n"
	"<h1>xdpfwd exporter</h1>\n"
	"<p><a href=\"/metrics\">Metrics</a></p>\n"
	"</body></html>\n";

/* family - the HELP and TYPE lines that open metric @name. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* label_value - @v quoted, with the exposition format's escapes. */
static void label_value(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* sample - one line of @name: a value, with labels @k1=@v1 and @k2=@v2 when
 * they are not NULL. */
static void sample(FILE *f, const char *name, const char *k1, const char *v1, const char *k2,
		   const char *v2, unsigned long long value)
{
	fputs(name, f);
	if (k1) {
		fprintf(f, "{%s=", k1);
		label_value(f, v1);
		if (k2) {
			fprintf(f, ",%s=", k2);
			label_value(f, v2);
		}
		fputc('}', f);
	}
	fprintf(f, " %llu\n", value);
}

/* write_rules - the per-rule families. */
static void write_rules(FILE *f, const struct counters *c)
{
	int i;

	family(f, "xdpfwd_rule_packets_total", "counter",
	       "Packets translated by the rule, by direction (orig: client to backend).");
	for (i = 0; i < c->n_rules; i++) {
		sample(f, "xdpfwd_rule_packets_total", "rule", c->rules[i].name, "direction", "orig",
		       c->stats[i].orig_packets);
		sample(f, "xdpfwd_rule_packets_total", "rule", c->rules[i].name, "direction", "reply",
		       c->stats[i].reply_packets);
	}
	family(f, "xdpfwd_rule_bytes_total", "counter",
	       "IP bytes translated by the rule, by direction (orig: client to backend).");
	for (i = 0; i < c->n_rules; i++) {
		sample(f, "xdpfwd_rule_bytes_total", "rule", c->rules[i].name, "direction", "orig",
		       c->stats[i].orig_bytes);
		sample(f, "xdpfwd_rule_bytes_total", "rule", c->rules[i].name, "direction", "reply",
		       c->stats[i].reply_bytes);
	}
	family(f, "xdpfwd_rule_denied_packets_total", "counter",
	       "Packets the rule's allowlist refused.");
	for (i = 0; i < c->n_rules; i++)
		sample(f, "xdpfwd_rule_denied_packets_total", "rule", c->rules[i].name, NULL, NULL,
		       c->stats[i].denied_packets);
	family(f, "xdpfwd_rule_flows", "gauge", "Live connections of the rule.");
	for (i = 0; i < c->n_rules; i++)
		sample(f, "xdpfwd_rule_flows", "rule", c->rules[i].name, NULL, NULL, c->flows[i]);
}

/* write_metrics - the whole exposition of @c. */
static void write_metrics(FILE *f, const struct counters *c)
{
	static const char *const names[XDPFWD_R_MAX] = XDPFWD_REASON_NAMES;
	int r;

	family(f, "xdpfwd_build_info", "gauge", "The xdpfwd version serving these metrics.");
	sample(f, "xdpfwd_build_info", "version", XDPFWD_VERSION, NULL, NULL, 1);
	family(f, "xdpfwd_up", "gauge", "Whether xdpfwd's state exists (1) or it is not loaded (0).");
	sample(f, "xdpfwd_up", NULL, NULL, NULL, NULL, c->loaded);
	if (!c->loaded)
		return;
	family(f, "xdpfwd_interfaces_loaded", "gauge", "Interfaces xdpfwd is attached to.");
	sample(f, "xdpfwd_interfaces_loaded", NULL, NULL, NULL, NULL, c->n_ifaces);
	family(f, "xdpfwd_rules", "gauge", "Forwarding rules.");
	sample(f, "xdpfwd_rules", NULL, NULL, NULL, NULL, c->n_rules);
	write_rules(f, c);
	family(f, "xdpfwd_packets_total", "counter", "Packets seen by xdpfwd, by outcome.");
	for (r = 0; r < XDPFWD_R_MAX; r++)
		sample(f, "xdpfwd_packets_total", "reason", names[r], NULL, NULL, c->reasons[r]);
	family(f, "xdpfwd_flows", "gauge", "Live connections, all rules.");
	sample(f, "xdpfwd_flows", NULL, NULL, NULL, NULL, c->total_flows);
	family(f, "xdpfwd_flow_table_capacity", "gauge", "Connections the connection table holds.");
	sample(f, "xdpfwd_flow_table_capacity", NULL, NULL, NULL, NULL, c->cap.max_flows);
	family(f, "xdpfwd_flow_table_bytes", "gauge",
	       "Memory the connection tables take, as the kernel counts it.");
	sample(f, "xdpfwd_flow_table_bytes", NULL, NULL, NULL, NULL, c->cap.bytes);
}

/* reply - queue @body (@len bytes, @mode as libmicrohttpd takes it). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status,
				  const char *text)
{
	return reply(conn, status, "text/plain; charset=utf-8", (void *)text, strlen(text),
		     MHD_RESPMEM_PERSISTENT);
}

/* reply_metrics - a fresh reading; 500 when the state cannot be read (the
 * error is on stderr). */
static enum MHD_Result reply_metrics(struct MHD_Connection *conn)
{
	struct counters c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (counters_read(&c))
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "cannot read xdpfwd's state: see the exporter's log\n");
	f = open_memstream(&buf, &len);
	if (f) {
		write_metrics(f, &c);
		fclose(f);
	}
	counters_free(&c);
	if (!f || !buf)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply(conn, MHD_HTTP_OK, METRICS_TYPE, buf, len, MHD_RESPMEM_MUST_FREE);
}

/* answer - libmicrohttpd's request handler. GET and HEAD carry no body, so
 * the first call may answer. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (!strcmp(url, "/metrics"))
		return reply_metrics(conn);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)landing_page,
			     strlen(landing_page), MHD_RESPMEM_PERSISTENT);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
}

/* parse_listen - "ADDR:PORT", an IPv4 address (0.0.0.0: every address). */
static int parse_listen(const char *arg, struct sockaddr_in *sa)
{
	const char *colon = strrchr(arg, ':');
	char addr[INET_ADDRSTRLEN];
	unsigned long port = 0;
	char *end = NULL;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (colon && colon > arg && (size_t)(colon - arg) < sizeof(addr)) {
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - arg), arg);
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || colon[1] == '-')
			port = 0;
	}
	if (!port || port > 65535 || inet_pton(AF_INET, addr, &sa->sin_addr) != 1)
		return errorf(EXIT_USAGE, "invalid --listen '%s': give ADDR:PORT, an IPv4 address and a port from 1 to 65535 (e.g. %s, or 0.0.0.0:9435 for every address)",
			      arg, EXPORTER_DEFAULT_LISTEN);
	sa->sin_port = htons(port);
	return EXIT_OK;
}

/* listen_on - a listening socket on @sa (@arg as the user wrote it) into
 * *@fd, bound here so that a refusal is reported as what it is. */
static int listen_on(const struct sockaddr_in *sa, const char *arg, int *fd)
{
	int one = 1, err;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return errorf(EXIT_FAIL, "cannot make a socket: %s", strerror(errno));
	if (!setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) &&
	    !bind(*fd, (const struct sockaddr *)sa, sizeof(*sa)) && !listen(*fd, 64))
		return EXIT_OK;
	err = errno;
	close(*fd);
	return errorf(EXIT_FAIL, "cannot listen on %s: %s%s", arg, strerror(err),
		      err == EADDRINUSE ? " (another program has the port: choose another with --listen)" :
		      err == EADDRNOTAVAIL ? " (not an address of this host)" : "");
}

static int usage_exporter(void)
{
	return errorf(EXIT_USAGE, "usage: xdpfwd exporter [--listen ADDR:PORT] (default %s)",
		      EXPORTER_DEFAULT_LISTEN);
}

int do_exporter(int argc, char **argv)
{
	const char *listen_arg = EXPORTER_DEFAULT_LISTEN;
	struct MHD_Daemon *daemon;
	struct sockaddr_in sa;
	int fd, err, sig;
	sigset_t set;

	if (argc == 2 && !strcmp(argv[0], "--listen"))
		listen_arg = argv[1];
	else if (argc)
		return usage_exporter();
	err = parse_listen(listen_arg, &sa);
	if (!err)
		err = listen_on(&sa, listen_arg, &fd);
	if (err)
		return err;
	/* Before the server's thread starts, so that it inherits the mask and
	 * the signals come to sigwait() here. */
	stop_signals_block(&set);
	daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				  NULL, answer, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
	if (!daemon) {
		close(fd);
		return errorf(EXIT_FAIL, "cannot start the HTTP server on %s", listen_arg);
	}
	fprintf(stderr, "xdpfwd: serving http://%s/metrics for the state in %s\n", listen_arg,
		opt_pin_dir);
	while (sigwait(&set, &sig))
		;
	MHD_stop_daemon(daemon);
	return EXIT_OK;
}
