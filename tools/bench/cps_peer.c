// SPDX-License-Identifier: GPL-2.0
/*
 * cps_peer: both ends of the connections-per-second bench (tools/bench/cps.sh).
 *
 *   cps_peer server ADDR PORT WORKERS
 *   cps_peer client DST_ADDR PORT SECONDS PROCS CONCURRENCY SRC_ADDR...
 *
 * A connection is: connect, send a small request, read the response until the
 * server closes (HTTP/1.0 manner: the server closes first, so TIME_WAIT sits
 * at the server and the client's ports come free at once), close.
 * The client prints "completed errors seconds" summed over its processes;
 * only cycles completed within SECONDS count.
 * Built by cps.sh into $BENCH_OUT, never by make.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQUEST "GET / HTTP/1.0\r\n\r\n"
#define RESPONSE "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
#define MAX_EVENTS 256
#define MAX_SRC 64

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static struct sockaddr_in addr_of(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "cps_peer: bad address %s\n", ip);
		exit(2);
	}
	return a;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ server */

/* serve_fd: answer a connection whose request may have arrived; closes it
 * unless the request is still to come (returns 0 then). */
static int serve_fd(int fd)
{
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && errno == EAGAIN)
		return 0;
	/* A client gone away fails the send: nothing to do but close. */
	if (n > 0)
		send(fd, RESPONSE, sizeof(RESPONSE) - 1, MSG_NOSIGNAL);
	close(fd);
	return 1;
}

/* server_loop: one worker; its own SO_REUSEPORT listener, accept, answer. */
static void server_loop(struct sockaddr_in *a)
{
	struct epoll_event ev, evs[MAX_EVENTS];
	int one = 1, lfd, ep, n, i, fd;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)a, sizeof(*a)) < 0)
		die("bind");
	if (listen(lfd, 65535) < 0)
		die("listen");
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd != lfd) {
				serve_fd(evs[i].data.fd);
				continue;
			}
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
				if (serve_fd(fd))
					continue;
				ev.events = EPOLLIN | EPOLLONESHOT;
				ev.data.fd = fd;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			}
		}
	}
}

static int run_server(int argc, char **argv)
{
	struct sockaddr_in a;
	int workers, i;

	if (argc != 5)
		return 2;
	a = addr_of(argv[2], atoi(argv[3]));
	workers = atoi(argv[4]);
	for (i = 1; i < workers; i++)
		if (fork() == 0)
			server_loop(&a);
	server_loop(&a);
	return 0;
}

/* ------------------------------------------------------------ client */

enum { C_CONNECTING, C_READING };

struct client {
	struct sockaddr_in dst;
	struct sockaddr_in src[MAX_SRC];
	int nsrc, next_src, ep;
	unsigned char *state;	/* by fd */
	uint64_t done, errors;
};

/* start_conn: a new non-blocking connection from the next source address. */
static void start_conn(struct client *c)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	/* The port is picked at connect(), per 4-tuple: each source address
	 * gets the whole port range. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&c->src[c->next_src], sizeof(c->src[0])) < 0)
		die("bind");
	c->next_src = (c->next_src + 1) % c->nsrc;
	if (connect(fd, (struct sockaddr *)&c->dst, sizeof(c->dst)) < 0 &&
	    errno != EINPROGRESS) {
		c->errors++;
		close(fd);
		return;
	}
	c->state[fd] = C_CONNECTING;
	ev.data.fd = fd;
	epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* step: advance connection fd on an event; returns 1 when it has ended. */
static int step(struct client *c, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	char buf[512];
	ssize_t n;

	if (c->state[fd] == C_CONNECTING) {
		if ((events & (EPOLLERR | EPOLLHUP)) ||
		    send(fd, REQUEST, sizeof(REQUEST) - 1, MSG_NOSIGNAL) < 0)
			goto fail;
		c->state[fd] = C_READING;
		epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &ev);
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		goto fail;
	c->done++;
	close(fd);
	return 1;
fail:
	c->errors++;
	close(fd);
	return 1;
}

/* client_loop: CONCURRENCY connections in flight for SECONDS; counts. */
static void client_loop(struct client *c, double seconds, int conc, uint64_t *out)
{
	struct epoll_event evs[MAX_EVENTS];
	double end = now_s() + seconds;
	int i, n;

	c->ep = epoll_create1(0);
	c->state = calloc(65536, 1);
	for (i = 0; i < conc; i++)
		start_conn(c);
	while (now_s() < end) {
		n = epoll_wait(c->ep, evs, MAX_EVENTS, 50);
		for (i = 0; i < n; i++)
			if (step(c, evs[i].data.fd, evs[i].events))
				start_conn(c);
	}
	out[0] = c->done;
	out[1] = c->errors;
}

static int run_client(int argc, char **argv)
{
	struct client c = { 0 };
	uint64_t *res, done = 0, errors = 0;
	int procs, conc, i;
	double seconds, t0;

	if (argc < 8 || argc - 7 > MAX_SRC)
		return 2;
	c.dst = addr_of(argv[2], atoi(argv[3]));
	seconds = atof(argv[4]);
	procs = atoi(argv[5]);
	conc = atoi(argv[6]);
	for (i = 7; i < argc; i++)
		c.src[c.nsrc++] = addr_of(argv[i], 0);
	res = mmap(NULL, procs * 2 * sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		die("mmap");
	t0 = now_s();
	for (i = 0; i < procs; i++) {
		if (fork() == 0) {
			c.next_src = i % c.nsrc;
			client_loop(&c, seconds, conc, &res[2 * i]);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	for (i = 0; i < procs; i++) {
		done += res[2 * i];
		errors += res[2 * i + 1];
	}
	printf("%llu %llu %.3f\n", (unsigned long long)done,
	       (unsigned long long)errors, now_s() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if (argc > 1 && !strcmp(argv[1], "server"))
		rc = run_server(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "client"))
		rc = run_client(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: cps_peer server ADDR PORT WORKERS | "
			"client DST PORT SECONDS PROCS CONCURRENCY SRC...\n");
	return rc;
}
