// SPDX-License-Identifier: GPL-2.0
/* Rule files: `apply FILE` makes the rules exactly those of FILE, `save`
 * prints the rules as such a file. A line is the words of `xdpfwd add`
 * without "add"; '#' comments to the end of the line.
 *
 * apply checks the whole file before it touches anything. It then enters
 * the new rules as the rule set beside the live one (rule_ports entries of
 * the other `set`) and makes that set live with one update of the config
 * map, so that no packet ever meets half of either set. A rule with the
 * same ports before and after keeps its id, hence its counters and its
 * connections; when the rest of it changed, it changes as `replace` does. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdpfwd_cli.h"
#include "netlink.h"
#include "output.h"

#define MAX_WORDS	256	/* of a line; a rule with every option takes 135 */
#define WALK_CHUNK	256	/* connection-table entries fetched a syscall */
#define LINE_LEN	4096	/* of a saved rule: 64 CIDRs take under 1,800 */

/* What becomes of a rule of the file. */
enum fate {
	FATE_ADD,	/* no rule has its ports: a new id */
	FATE_CHANGE,	/* the rule with its ports changes, keeping id and gen */
	FATE_KEEP,	/* the rule with its ports is the same: untouched */
};

/* A rule of the file. */
struct want {
	struct rule_spec spec;	/* allowlist sorted; rule.id and .gen once planned */
	int line;
	int old;		/* index into current.rules of the rule it follows, or -1 */
	enum fate fate;
};

struct file_rules {
	const char *name;	/* for messages: the path, or "<stdin>" */
	struct want *v;
	int n, cap;
	__u32 n_ports;		/* external ports of all the rules */
};

/* The state as apply found it. */
struct current {
	struct xdpfwd_rule *rules;	/* sorted by ports once planned */
	int n;
	bool *kept;			/* by index of rules: in the new set too */
	struct xdpfwd_allow_key *allow;	/* every allowlist entry, by rule id */
	int n_allow;
	struct xdpfwd_rule_key *ports;	/* every rule_ports key, of both sets */
	int n_ports;
	__u32 gens[XDPFWD_MAX_RULES];	/* rule_gens */
	__u8 live;			/* the live set */
};

/* The rule_ports entries of the new set. */
struct port_entries {
	struct xdpfwd_rule_key *keys;
	__u32 *ids;
	__u32 n;
};

/* ------------------------------------------------------------ reading */

static int by_cidr(const void *a, const void *b)
{
	const struct allow_cidr *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

/* cidrs_normal - sort @c (@n of them) and drop repeats; the count left. */
static int cidrs_normal(struct allow_cidr *c, int n)
{
	int i, k = 0;

	qsort(c, n, sizeof(*c), by_cidr);
	for (i = 0; i < n; i++)
		if (!k || by_cidr(&c[k - 1], &c[i]))
			c[k++] = c[i];
	return k;
}

/* split_words - the words of @line before any '#', at most @max into
 * @argv. Returns their count, or -1 when there are more. */
static int split_words(char *line, char **argv, int max)
{
	const char *space = " \t\r\n\v\f";
	char *save, *w;
	int n = 0;

	line[strcspn(line, "#")] = '\0';
	for (w = strtok_r(line, space, &save); w; w = strtok_r(NULL, space, &save)) {
		if (n == max)
			return -1;
		argv[n++] = w;
	}
	return n;
}

/* parse_line - the rule of line @lineno (@argc words), appended to @fr.
 * Errors go out in the line's context. */
static int parse_line(struct file_rules *fr, int argc, char **argv, int lineno)
{
	struct want *w;
	int err;

	if (argc < 0)
		return errorf(EXIT_USAGE, "more than %d words", MAX_WORDS);
	if (!strcmp(argv[0], "add"))
		return errorf(EXIT_USAGE, "a line holds what follows 'xdpfwd add': leave out 'add'");
	if (argc < 3)
		return errorf(EXIT_USAGE, "a rule is PROTO [EXT_ADDR:]PORT[-PORT] INT_ADDR[:PORT] [--name NAME] [--snat auto|ADDR] [--allow CIDR]...");
	if (fr->n == XDPFWD_MAX_RULES)
		return errorf(EXIT_USAGE, "more than %d rules: xdpfwd holds no more",
			      XDPFWD_MAX_RULES);
	if (fr->n == fr->cap) {
		w = realloc(fr->v, (fr->cap ? 2 * fr->cap : 64) * sizeof(*w));
		if (!w)
			return errorf(EXIT_FAIL, "out of memory");
		fr->v = w;
		fr->cap = fr->cap ? 2 * fr->cap : 64;
	}
	w = &fr->v[fr->n];
	err = parse_rule_spec(argc, argv, "add", &w->spec);
	if (err)
		return err;
	fr->n_ports += w->spec.rule.nports;
	if (fr->n_ports > XDPFWD_MAX_RULE_PORTS)
		return errorf(EXIT_USAGE, "the rules up to here cover more than %d external ports: xdpfwd holds no more",
			      XDPFWD_MAX_RULE_PORTS);
	w->spec.n_allow = cidrs_normal(w->spec.allow, w->spec.n_allow);
	w->line = lineno;
	w->old = -1;
	fr->n++;
	return EXIT_OK;
}

/* read_rules - every rule of @f into @fr, each line checked on its own. */
static int read_rules(FILE *f, struct file_rules *fr)
{
	char *line = NULL, *argv[MAX_WORDS], where[256];
	int lineno = 0, argc, err = EXIT_OK;
	size_t len = 0;

	while (!err && getline(&line, &len, f) >= 0) {
		lineno++;
		argc = split_words(line, argv, MAX_WORDS);
		if (!argc)
			continue;
		snprintf(where, sizeof(where), "%s:%d", fr->name, lineno);
		out_error_context(where);
		err = parse_line(fr, argc, argv, lineno);
		out_error_context(NULL);
	}
	if (!err && ferror(f))
		err = errorf(EXIT_FAIL, "cannot read %s: %s", fr->name, strerror(errno));
	free(line);
	return err;
}

/* ------------------------------------------------------------ checking */

/* by_ports - rules by protocol, external address, first port, port count:
 * rules that might overlap sort next to each other, and a rule's identity
 * across an apply is its place in this order. */
static int by_ports(const struct xdpfwd_rule *a, const struct xdpfwd_rule *b)
{
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->ext_addr != b->ext_addr)
		return a->ext_addr < b->ext_addr ? -1 : 1;
	if (a->ext_port != b->ext_port)
		return ntohs(a->ext_port) < ntohs(b->ext_port) ? -1 : 1;
	return (a->nports > b->nports) - (a->nports < b->nports);
}

static int want_by_ports(const void *a, const void *b)
{
	return by_ports(&(*(struct want *const *)a)->spec.rule,
			&(*(struct want *const *)b)->spec.rule);
}

static int want_by_name(const void *a, const void *b)
{
	return strcmp((*(struct want *const *)a)->spec.rule.name,
		      (*(struct want *const *)b)->spec.rule.name);
}

static int rule_by_ports(const void *a, const void *b)
{
	return by_ports(a, b);
}

/* line_error - an error about line @line of @fr. */
static int __attribute__((format(printf, 3, 4)))
line_error(const struct file_rules *fr, int line, const char *fmt, ...)
{
	char where[256], msg[400];
	va_list ap;
	int err;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(where, sizeof(where), "%s:%d", fr->name, line);
	out_error_context(where);
	err = errorf(EXIT_USAGE, "%s", msg);
	out_error_context(NULL);
	return err;
}

/* first_clash - of the neighbours in @by (@n, sorted by @cmp) that clash
 * (@cmp says equal, or @overlap), the pair whose later line comes first:
 * its index, or -1. The one reported is then always the same. */
static int first_clash(struct want **by, int n, int (*cmp)(const void *, const void *),
		       bool overlap)
{
	int i, best = -1, line, best_line = 0;

	for (i = 1; i < n; i++) {
		if (overlap ? !rules_overlap(&by[i - 1]->spec.rule, &by[i]->spec.rule) :
			      cmp(&by[i - 1], &by[i]))
			continue;
		line = by[i - 1]->line > by[i]->line ? by[i - 1]->line : by[i]->line;
		if (best < 0 || line < best_line)
			best = i, best_line = line;
	}
	return best;
}

/* check_rules - what no line shows alone: rules that overlap, names taken
 * twice. The error names the later line. */
static int check_rules(const struct file_rules *fr)
{
	struct want **by = malloc((fr->n ? fr->n : 1) * sizeof(*by)), *a, *b, *t;
	char ea[48], eb[48];
	int i, err = EXIT_OK;

	if (!by)
		return errorf(EXIT_FAIL, "out of memory");
	for (i = 0; i < fr->n; i++)
		by[i] = &fr->v[i];
	qsort(by, fr->n, sizeof(*by), want_by_ports);
	i = first_clash(by, fr->n, want_by_ports, true);
	if (i > 0) {
		a = by[i - 1], b = by[i];
		if (a->line > b->line)
			t = a, a = b, b = t;
		err = line_error(fr, b->line, "%s %s overlaps line %d (%s %s): a port takes one rule",
				 proto_str(b->spec.rule.proto), ext_str(&b->spec.rule, eb, sizeof(eb)),
				 a->line, proto_str(a->spec.rule.proto),
				 ext_str(&a->spec.rule, ea, sizeof(ea)));
		goto out;
	}
	qsort(by, fr->n, sizeof(*by), want_by_name);
	i = first_clash(by, fr->n, want_by_name, false);
	if (i > 0) {
		a = by[i - 1], b = by[i];
		if (a->line > b->line)
			t = a, a = b, b = t;
		err = line_error(fr, b->line, "the rule on line %d is named '%s' already: give this one another --name",
				 a->line, b->spec.rule.name);
	}
out:
	free(by);
	return err;
}

/* ------------------------------------------------------------ the state */

static int allow_by_id(const void *a, const void *b)
{
	const struct xdpfwd_allow_key *x = a, *y = b;

	if (x->rule_id != y->rule_id)
		return x->rule_id < y->rule_id ? -1 : 1;
	return by_cidr(&(struct allow_cidr){ x->addr, x->prefixlen - 32 },
		       &(struct allow_cidr){ y->addr, y->prefixlen - 32 });
}

/* allow_read_all - every allowlist entry, sorted by rule id then CIDR, into
 * *@out (to free). Returns the count or -errno. */
static int allow_read_all(int fd, struct xdpfwd_allow_key **out)
{
	struct xdpfwd_allow_key *v = calloc(XDPFWD_MAX_ALLOW, sizeof(*v)), key;
	int n = 0;
	bool more;

	if (!v)
		return -ENOMEM;
	more = !bpf_map_get_next_key(fd, NULL, &v[0]);
	while (more && n < XDPFWD_MAX_ALLOW) {
		key = v[n++];
		more = n < XDPFWD_MAX_ALLOW && !bpf_map_get_next_key(fd, &key, &v[n]);
	}
	qsort(v, n, sizeof(*v), allow_by_id);
	*out = v;
	return n;
}

/* allow_of - the CIDRs rule @id has in @all (@n entries, by id), sorted, at
 * most XDPFWD_MAX_ALLOW_RULE into @out. Returns their count. */
static int allow_of(const struct xdpfwd_allow_key *all, int n, __u32 id, struct allow_cidr *out)
{
	int lo = 0, hi = n, mid, k = 0;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (all[mid].rule_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && all[lo].rule_id == id && k < XDPFWD_MAX_ALLOW_RULE; lo++)
		out[k++] = (struct allow_cidr){ all[lo].addr, all[lo].prefixlen - 32 };
	return k;
}

/* ports_read_all - every rule_ports key, of both sets, into *@out (to
 * free). Returns the count or -errno. */
static int ports_read_all(int fd, struct xdpfwd_rule_key **out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct xdpfwd_rule_key *keys, token;
	__u32 *ids, n = 0, count;
	int err = 0;

	keys = calloc(XDPFWD_MAX_RULE_PORTS, sizeof(*keys));
	ids = calloc(XDPFWD_MAX_RULE_PORTS, sizeof(*ids));
	while (keys && ids && !err && n < XDPFWD_MAX_RULE_PORTS) {
		count = XDPFWD_MAX_RULE_PORTS - n;
		err = bpf_map_lookup_batch(fd, n ? &token : NULL, &token, keys + n, ids + n,
					   &count, &opts);
		n += count;
	}
	free(ids);
	if (!keys || !ids || (err && err != -ENOENT)) {
		free(keys);
		return keys && ids ? err : -ENOMEM;
	}
	*out = keys;
	return n;
}

static void current_free(struct current *cur)
{
	free(cur->rules);
	free(cur->kept);
	free(cur->allow);
	free(cur->ports);
	free(cur);
}

/* current_read - the rules, allowlists, rule_ports keys and generations of
 * @st. Returns them (to free with current_free), or NULL after the error. */
static struct current *current_read(const struct state *st)
{
	struct current *cur = calloc(1, sizeof(*cur));
	const char *what = "rules";
	int err = cur ? 0 : -ENOMEM;

	if (!err) {
		cur->live = rule_set_live(st);
		cur->n = rules_read(st->map_fd[MAP_RULES], &cur->rules);
		err = cur->n < 0 ? cur->n : 0;
	}
	if (!err) {
		what = "allowlists";
		cur->n_allow = allow_read_all(st->map_fd[MAP_ALLOW], &cur->allow);
		err = cur->n_allow < 0 ? cur->n_allow : 0;
	}
	if (!err) {
		what = "rule ports";
		cur->n_ports = ports_read_all(st->map_fd[MAP_RULE_PORTS], &cur->ports);
		err = cur->n_ports < 0 ? cur->n_ports : 0;
	}
	if (!err) {
		what = "rule generations";
		err = rule_gens_read(st->map_fd[MAP_RULE_GENS], cur->gens);
	}
	if (!err) {
		cur->kept = calloc(cur->n ? cur->n : 1, sizeof(*cur->kept));
		err = cur->kept ? 0 : -ENOMEM;
	}
	if (!err)
		return cur;
	errorf(EXIT_FAIL, "cannot read the %s: %s", what, strerror(-err));
	if (cur)
		current_free(cur);
	return NULL;
}

/* ------------------------------------------------------------ planning */

/* same_rule - whether @w asks for exactly what the rule @old with its ports
 * is, allowlist included. */
static bool same_rule(const struct current *cur, const struct want *w,
		      const struct xdpfwd_rule *old)
{
	struct allow_cidr have[XDPFWD_MAX_ALLOW_RULE];
	const struct xdpfwd_rule *r = &w->spec.rule;
	int n_have, i;

	if (r->int_addr != old->int_addr || r->int_port != old->int_port ||
	    r->flags != old->flags || r->snat_addr != old->snat_addr ||
	    strncmp(r->name, old->name, XDPFWD_NAME_LEN))
		return false;
	n_have = allow_of(cur->allow, cur->n_allow, old->id, have);
	for (i = 0; i < n_have && i < w->spec.n_allow; i++)
		if (by_cidr(&have[i], &w->spec.allow[i]))
			return false;
	return n_have == w->spec.n_allow;
}

/* plan - what becomes of each rule of @fr: the current rule with its ports
 * it follows (keeping id and gen), or a new id no current rule holds, so
 * that the live set stays whole until the switch. */
static int plan(struct file_rules *fr, struct current *cur)
{
	static bool used[XDPFWD_MAX_RULES];
	struct xdpfwd_rule *old, *r;
	int i, next = 0, n_add = 0;

	qsort(cur->rules, cur->n, sizeof(*cur->rules), rule_by_ports);
	memset(used, 0, sizeof(used));
	for (i = 0; i < cur->n; i++)
		if (cur->rules[i].id < XDPFWD_MAX_RULES)
			used[cur->rules[i].id] = true;
	for (i = 0; i < fr->n; i++) {
		r = &fr->v[i].spec.rule;
		old = bsearch(r, cur->rules, cur->n, sizeof(*old), rule_by_ports);
		if (!old) {
			n_add++;
			continue;
		}
		fr->v[i].old = old - cur->rules;
		fr->v[i].fate = same_rule(cur, &fr->v[i], old) ? FATE_KEEP : FATE_CHANGE;
		cur->kept[fr->v[i].old] = true;
		r->id = old->id;
		r->gen = old->gen;
	}
	if (n_add > XDPFWD_MAX_RULES - cur->n)
		return errorf(EXIT_FAIL, "the rule table cannot hold the %d rules there are and the %d new ones at once (at most %d): apply the file without the new rules first, then the whole file",
			      cur->n, n_add, XDPFWD_MAX_RULES);
	for (i = 0; i < fr->n; i++) {
		if (fr->v[i].old >= 0)
			continue;
		while (used[next])
			next++;
		r = &fr->v[i].spec.rule;
		r->id = next++;
		r->gen = cur->gens[r->id];
		fr->v[i].fate = FATE_ADD;
	}
	return EXIT_OK;
}

/* check_room - whether rule_ports holds the live set and the new one at
 * once. */
static int check_room(const struct file_rules *fr, const struct current *cur)
{
	int i, live = 0;

	for (i = 0; i < cur->n_ports; i++)
		live += cur->ports[i].set == cur->live;
	if (live + fr->n_ports <= XDPFWD_MAX_RULE_PORTS)
		return EXIT_OK;
	return errorf(EXIT_FAIL, "the rule tables cannot hold the %d external ports there are and the file's %u at once (at most %d): apply a file without the new rules first, then the whole file",
		      live, fr->n_ports, XDPFWD_MAX_RULE_PORTS);
}

/* ------------------------------------------------------------ entering */

/* update_all - @n entries into map @fd, with one syscall. Returns 0 or
 * -errno. */
static int update_all(int fd, const void *keys, const void *values, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);

	return n ? bpf_map_update_batch(fd, keys, values, &n, &opts) : 0;
}

/* delete_all - the @n keys of @size bytes at @keys from map @fd, those
 * there are. */
static void delete_all(int fd, const void *keys, size_t size, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	const char *k = keys;
	__u32 done, count;

	/* A batch stops at a key that is not there: go on past it. */
	for (done = 0; done < n; done += count + 1) {
		count = n - done;
		if (!bpf_map_delete_batch(fd, k + done * size, &count, &opts))
			break;
	}
}

/* delete_set - the rule_ports keys of set @set that @cur found. */
static void delete_set(int fd, const struct current *cur, __u8 set)
{
	struct xdpfwd_rule_key *keys = malloc((cur->n_ports ? cur->n_ports : 1) * sizeof(*keys));
	int i, n = 0;

	/* Without memory, the entries stay in the set not live, where the
	 * next apply clears them. */
	if (!keys)
		return;
	for (i = 0; i < cur->n_ports; i++)
		if (cur->ports[i].set == set)
			keys[n++] = cur->ports[i];
	delete_all(fd, keys, sizeof(*keys), n);
	free(keys);
}

/* port_entries_make - the rule_ports entries of @fr's rules in set @set. */
static int port_entries_make(const struct file_rules *fr, __u8 set, struct port_entries *pe)
{
	const struct xdpfwd_rule *r;
	int i, p;

	pe->n = 0;
	pe->keys = calloc(fr->n_ports ? fr->n_ports : 1, sizeof(*pe->keys));
	pe->ids = calloc(fr->n_ports ? fr->n_ports : 1, sizeof(*pe->ids));
	if (!pe->keys || !pe->ids)
		return -ENOMEM;
	for (i = 0; i < fr->n; i++) {
		r = &fr->v[i].spec.rule;
		for (p = 0; p < r->nports; p++, pe->n++) {
			pe->keys[pe->n] = (struct xdpfwd_rule_key){
				.ext_addr = r->ext_addr,
				.ext_port = htons(ntohs(r->ext_port) + p),
				.proto = r->proto,
				.set = set,
			};
			pe->ids[pe->n] = r->id;
		}
	}
	return 0;
}

/* stats_zero - fresh counters for the new rules of @fr. */
static int stats_zero(int fd, const struct file_rules *fr)
{
	int ncpus = libbpf_num_possible_cpus(), i, err;
	struct xdpfwd_rule_stats *zero;
	__u32 *ids, n = 0;

	if (ncpus < 0)
		return ncpus;
	ids = calloc(fr->n ? fr->n : 1, sizeof(*ids));
	zero = calloc((size_t)(fr->n ? fr->n : 1) * ncpus, sizeof(*zero));
	err = ids && zero ? 0 : -ENOMEM;
	for (i = 0; !err && i < fr->n; i++)
		if (fr->v[i].fate == FATE_ADD)
			ids[n++] = fr->v[i].spec.rule.id;
	if (!err)
		err = update_all(fd, ids, zero, n);
	free(zero);
	free(ids);
	return err;
}

/* rules_write - rules[id] of each rule of @fr that is to be @fate. */
static int rules_write(int fd, const struct file_rules *fr, enum fate fate)
{
	struct xdpfwd_rule *rules = calloc(fr->n ? fr->n : 1, sizeof(*rules));
	__u32 *ids = calloc(fr->n ? fr->n : 1, sizeof(*ids)), n = 0;
	int i, err = rules && ids ? 0 : -ENOMEM;

	for (i = 0; !err && i < fr->n; i++)
		if (fr->v[i].fate == fate) {
			ids[n] = fr->v[i].spec.rule.id;
			rules[n++] = fr->v[i].spec.rule;
		}
	if (!err)
		err = update_all(fd, ids, rules, n);
	free(ids);
	free(rules);
	return err;
}

/* allow_widen - the CIDRs each rule of @fr to be @fate has not yet. */
static int allow_widen(int fd, const struct file_rules *fr, const struct current *cur,
		       enum fate fate)
{
	struct allow_cidr have[XDPFWD_MAX_ALLOW_RULE];
	const struct want *w;
	int i, n_have, err = 0;

	for (i = 0; !err && i < fr->n; i++) {
		w = &fr->v[i];
		if (w->fate != fate)
			continue;
		n_have = allow_of(cur->allow, cur->n_allow, w->spec.rule.id, have);
		err = allow_apply(fd, w->spec.rule.id, w->spec.allow, w->spec.n_allow, have,
				  n_have, true);
	}
	return err;
}

/* allow_narrow - the CIDRs each rule of @fr to be @fate has no more: with
 * @undo, those allow_widen added. */
static void allow_narrow(int fd, const struct file_rules *fr, const struct current *cur,
			 enum fate fate, bool undo)
{
	struct allow_cidr have[XDPFWD_MAX_ALLOW_RULE];
	const struct want *w;
	int i, n_have;

	for (i = 0; i < fr->n; i++) {
		w = &fr->v[i];
		if (w->fate != fate)
			continue;
		n_have = allow_of(cur->allow, cur->n_allow, w->spec.rule.id, have);
		if (undo)
			allow_apply(fd, w->spec.rule.id, have, n_have, w->spec.allow,
				    w->spec.n_allow, false);
		else
			allow_apply(fd, w->spec.rule.id, w->spec.allow, w->spec.n_allow, have,
				    n_have, false);
	}
}

/* enter_new_set - everything of the new set that the live one does not
 * see: the new rules, whole, and every port of the file in the other set
 * (cleared first of what an interrupted apply may have left). Returns 0
 * or -errno, with undo_new_set to follow. */
static int enter_new_set(struct state *st, const struct file_rules *fr,
			 const struct current *cur, const struct port_entries *pe)
{
	int err;

	delete_set(st->map_fd[MAP_RULE_PORTS], cur, !cur->live);
	err = stats_zero(st->map_fd[MAP_RULE_STATS], fr);
	if (!err)
		err = allow_widen(st->map_fd[MAP_ALLOW], fr, cur, FATE_ADD);
	if (!err)
		allow_narrow(st->map_fd[MAP_ALLOW], fr, cur, FATE_ADD, false);
	if (!err)
		err = rules_write(st->map_fd[MAP_RULES], fr, FATE_ADD);
	if (!err)
		err = update_all(st->map_fd[MAP_RULE_PORTS], pe->keys, pe->ids, pe->n);
	return err;
}

/* change_kept - the rules that keep their ports but change, as the last
 * step before the switch: they serve the live set too. The allowlist only
 * widens here, so no source both rules admit is refused meanwhile. */
static int change_kept(struct state *st, const struct file_rules *fr, const struct current *cur)
{
	int err = allow_widen(st->map_fd[MAP_ALLOW], fr, cur, FATE_CHANGE);

	return err ? err : rules_write(st->map_fd[MAP_RULES], fr, FATE_CHANGE);
}

/* undo_new_set - back to the state @cur describes, after enter_new_set and
 * maybe change_kept. */
static void undo_new_set(struct state *st, const struct file_rules *fr,
			 const struct current *cur, const struct port_entries *pe)
{
	const struct want *w;
	int i;

	delete_all(st->map_fd[MAP_RULE_PORTS], pe->keys, sizeof(*pe->keys), pe->n);
	for (i = 0; i < fr->n; i++) {
		w = &fr->v[i];
		if (w->fate == FATE_ADD)
			bpf_map_delete_elem(st->map_fd[MAP_RULES], &w->spec.rule.id);
		else if (w->fate == FATE_CHANGE)
			bpf_map_update_elem(st->map_fd[MAP_RULES], &w->spec.rule.id,
					    &cur->rules[w->old], BPF_EXIST);
	}
	allow_narrow(st->map_fd[MAP_ALLOW], fr, cur, FATE_ADD, true);
	allow_narrow(st->map_fd[MAP_ALLOW], fr, cur, FATE_CHANGE, true);
}

/* switch_to - make rule set @set the one packets are matched against: one
 * update of the config map. */
static int switch_to(const struct state *st, __u8 set)
{
	struct xdpfwd_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(st->map_fd[MAP_CONFIG], &zero, &cfg))
		return -errno;
	cfg.rule_set = set;
	return bpf_map_update_elem(st->map_fd[MAP_CONFIG], &zero, &cfg, BPF_EXIST) ? -errno : 0;
}

/* ------------------------------------------------------------ after the switch */

/* purge_gone - remove every connection-table entry, either direction, of
 * a rule marked in @gone (by id). Their generation is bumped already, so
 * the datapath uses none of them; this gives their room back, all rules in
 * one walk of each table. */
static void purge_gone(const struct state *st, const bool *gone)
{
	int fds[2] = { st->map_fd[MAP_FLOWS], st->map_fd[MAP_FLOWS_NEW] };
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct xdpfwd_flow_key keys[WALK_CHUNK], token;
	struct xdpfwd_flow *vals = calloc(WALK_CHUNK, sizeof(*vals));
	bool first, done;
	__u32 count, i;
	int t, err;

	for (t = 0; vals && t < 2; t++)
		for (first = true, done = false; !done; first = false) {
			count = WALK_CHUNK;
			err = bpf_map_lookup_batch(fds[t], first ? NULL : &token, &token, keys,
						   vals, &count, &opts);
			if (err && err != -ENOENT) {
				warnf("cannot remove all connections of the rules removed (%s); the datapath drops them as it meets them",
				      strerror(-err));
				break;
			}
			done = err == -ENOENT;
			/* Batches go by bucket: deleting what one returned is safe. */
			for (i = 0; i < count; i++)
				if (vals[i].rule_id < XDPFWD_MAX_RULES && gone[vals[i].rule_id])
					bpf_map_delete_elem(fds[t], &keys[i]);
		}
	free(vals);
}

/* retire_gone - the rules not in the new set: their connections die at
 * once (a new generation), then go, then the rules and allowlists. */
static void retire_gone(struct state *st, const struct current *cur)
{
	static bool gone[XDPFWD_MAX_RULES];
	__u32 *ids = calloc(cur->n ? cur->n : 1, sizeof(*ids)), id;
	__u32 *gens = calloc(cur->n ? cur->n : 1, sizeof(*gens)), n = 0;
	int i, err;

	memset(gone, 0, sizeof(gone));
	for (i = 0; ids && gens && i < cur->n; i++)
		if (!cur->kept[i] && cur->rules[i].id < XDPFWD_MAX_RULES) {
			ids[n] = cur->rules[i].id;
			gens[n++] = cur->gens[cur->rules[i].id] + 1;
			gone[cur->rules[i].id] = true;
		}
	err = ids && gens ? update_all(st->map_fd[MAP_RULE_GENS], ids, gens, n) : -ENOMEM;
	if (err)
		warnf("cannot end the removed rules' connections at once (%s); they end as they are removed",
		      strerror(-err));
	if (n)
		purge_gone(st, gone);
	delete_all(st->map_fd[MAP_RULES], ids, sizeof(*ids), n);
	for (i = 0; i < cur->n_allow; i++) {
		id = cur->allow[i].rule_id;
		if (id < XDPFWD_MAX_RULES && gone[id])
			bpf_map_delete_elem(st->map_fd[MAP_ALLOW], &cur->allow[i]);
	}
	free(gens);
	free(ids);
}

static int by_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return (x > y) - (x < y);
}

static int by_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return (x > y) - (x < y);
}

/* addrs_unique - sort @v (@n) and drop repeats; the count left. */
static int addrs_unique(__u32 *v, int n)
{
	int i, k = 0;

	qsort(v, n, sizeof(*v), by_u32);
	for (i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

/* neighbour_key - @addr's next hop as one number, or 0 when the kernel does
 * not forward to it. */
static __u64 neighbour_key(__u32 addr)
{
	__u32 ifindex, nexthop;

	return backend_neighbour(addr, &ifindex, &nexthop) ? (__u64)ifindex << 32 | nexthop : 0;
}

/* release_unused - stop keeping the next hops of the backends @old (@n_old)
 * resolved, but those some backend of @in_use (@n_use, sorted, unique)
 * still needs. */
static void release_unused(__u32 *old, int n_old, const __u32 *in_use, int n_use)
{
	__u64 *need, hop;
	int i, k = 0;

	for (i = 0; i < n_old; i++)
		if (!bsearch(&old[i], in_use, n_use, sizeof(*in_use), by_u32))
			old[k++] = old[i];
	n_old = addrs_unique(old, k);
	need = calloc(n_use ? n_use : 1, sizeof(*need));
	if (!n_old || !need) {
		free(need);
		return;
	}
	for (i = 0; i < n_use; i++)
		need[i] = neighbour_key(in_use[i]);
	qsort(need, n_use, sizeof(*need), by_u64);
	for (i = 0; i < n_old; i++) {
		hop = neighbour_key(old[i]);
		if (hop && !bsearch(&hop, need, n_use, sizeof(*need), by_u64))
			nl_neigh_unmanage(hop >> 32, (__u32)hop);
	}
	free(need);
}

/* follow_neighbours - keep the new backends' next hops resolved; release
 * those of backends no rule has any more, but of a changed rule's old
 * backend while its connections last (as replace). */
static void follow_neighbours(struct state *st, const struct file_rules *fr,
			      const struct current *cur)
{
	__u32 *fresh = calloc(fr->n + 1, sizeof(*fresh)), *in_use = calloc(fr->n + 1, sizeof(__u32));
	__u32 *old = calloc(cur->n + 1, sizeof(*old));
	__u64 *per_rule = NULL, total;
	int i, n_fresh = 0, n_use = 0, n_old = 0;
	const struct xdpfwd_rule *r, *was;
	bool tried = false, counted = false;

	for (i = 0; fresh && in_use && old && i < fr->n; i++) {
		r = &fr->v[i].spec.rule;
		in_use[n_use++] = r->int_addr;
		was = fr->v[i].old >= 0 ? &cur->rules[fr->v[i].old] : NULL;
		if (was && was->int_addr == r->int_addr)
			continue;
		fresh[n_fresh++] = r->int_addr;
		if (!was)
			continue;
		if (!tried) {
			tried = true;
			per_rule = calloc(XDPFWD_MAX_RULES, sizeof(*per_rule));
			counted = per_rule && !ct_count_valid(st, &total, per_rule);
		}
		/* Uncounted, the connections may be there: keep it. */
		if (counted && !per_rule[was->id])
			old[n_old++] = was->int_addr;
	}
	for (i = 0; fresh && in_use && old && i < cur->n; i++)
		if (!cur->kept[i])
			old[n_old++] = cur->rules[i].int_addr;
	n_fresh = addrs_unique(fresh, n_fresh);
	for (i = 0; i < n_fresh; i++)
		manage_neighbour(fresh[i]);
	release_unused(old, n_old, in_use, addrs_unique(in_use, n_use));
	free(per_rule);
	free(old);
	free(in_use);
	free(fresh);
}

/* ------------------------------------------------------------ apply */

/* switch_sets - enter the planned new set beside the live one and make it
 * live; on failure leave the state as @cur found it. */
static int switch_sets(struct state *st, const struct file_rules *fr, const struct current *cur)
{
	struct port_entries pe;
	int err;

	err = port_entries_make(fr, !cur->live, &pe);
	if (!err)
		err = enter_new_set(st, fr, cur, &pe);
	if (!err)
		err = change_kept(st, fr, cur);
	if (!err)
		err = switch_to(st, !cur->live);
	if (err && pe.keys && pe.ids)
		undo_new_set(st, fr, cur, &pe);
	free(pe.keys);
	free(pe.ids);
	if (err == -E2BIG || err == -ENOSPC)
		return errorf(EXIT_FAIL, "cannot apply the rules: the rule tables are full (at most %d external ports and %d allowlist CIDRs in all, the rules there are and the new ones together)",
			      XDPFWD_MAX_RULE_PORTS, XDPFWD_MAX_ALLOW);
	if (err)
		return errorf(EXIT_FAIL, "cannot apply the rules: %s", strerror(-err));
	return EXIT_OK;
}

/* finish - what the old set leaves behind, once the new one is live. */
static void finish(struct state *st, const struct file_rules *fr, const struct current *cur)
{
	bool advised = false;
	int i;

	delete_set(st->map_fd[MAP_RULE_PORTS], cur, cur->live);
	allow_narrow(st->map_fd[MAP_ALLOW], fr, cur, FATE_CHANGE, false);
	retire_gone(st, cur);
	follow_neighbours(st, fr, cur);
	for (i = 0; i < fr->n; i++)
		if (fr->v[i].fate != FATE_KEEP) {
			warn_snat_addr(st, &fr->v[i].spec.rule);
			advised = true;
		}
	if (advised && !iface_loaded_count(st))
		warnf("no interface is loaded yet: run 'xdpfwd load IFACE' to start forwarding");
}

/* print_summary - how many rules of each fate, and how many went. */
static void print_summary(const struct file_rules *fr, const struct current *cur)
{
	int count[3] = {}, i;

	for (i = 0; i < fr->n; i++)
		count[fr->v[i].fate]++;
	out_open_object(NULL);
	out_u64("added", "%llu added, ", count[FATE_ADD]);
	out_u64("changed", "%llu changed, ", count[FATE_CHANGE]);
	out_u64("unchanged", "%llu unchanged, ", count[FATE_KEEP]);
	out_u64("removed", "%llu removed ", cur->n - count[FATE_CHANGE] - count[FATE_KEEP]);
	out_u64("rules", "(%llu in all)\n", fr->n);
	out_close_object();
}

/* load_file - @path's rules ("-": standard input), checked, into @fr. */
static int load_file(const char *path, struct file_rules *fr)
{
	bool std = !strcmp(path, "-");
	FILE *f = std ? stdin : fopen(path, "r");
	int err;

	fr->name = std ? "<stdin>" : path;
	if (!f)
		return errorf(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
	err = read_rules(f, fr);
	if (!std)
		fclose(f);
	return err ? err : check_rules(fr);
}

int do_apply(int argc, char **argv)
{
	struct file_rules fr = {};
	struct current *cur = NULL;
	struct state st;
	int err;

	if (argc != 1)
		return errorf(EXIT_USAGE, "usage: xdpfwd apply FILE (- for standard input)");
	err = load_file(argv[0], &fr);
	if (err)
		goto out_file;
	err = state_open(&st, STATE_CREATE);
	if (err)
		goto out_file;
	cur = current_read(&st);
	err = cur ? plan(&fr, cur) : EXIT_FAIL;
	if (!err)
		err = check_room(&fr, cur);
	if (!err)
		err = switch_sets(&st, &fr, cur);
	if (!err) {
		finish(&st, &fr, cur);
		err = iface_refresh_maps(&st);
	}
	if (!err)
		print_summary(&fr, cur);
	if (cur)
		current_free(cur);
	state_close(&st, err);
out_file:
	free(fr.v);
	return err;
}

/* ------------------------------------------------------------ save */

/* rule_line - @r with its allowlist @allow (@n), as a line of a rule file
 * (without the newline), into @buf. */
static void rule_line(const struct xdpfwd_rule *r, const struct allow_cidr *allow, int n,
		      char *buf, size_t len)
{
	char ext[48], a[INET_ADDRSTRLEN];
	size_t at;
	int i;

	at = snprintf(buf, len, "%s %s %s", proto_str(r->proto), ext_str(r, ext, sizeof(ext)),
		      addr_str(r->int_addr, a));
	if (r->int_port)
		at += snprintf(buf + at, len - at, ":%u", ntohs(r->int_port));
	at += snprintf(buf + at, len - at, " --name %s", r->name);
	if (r->flags & XDPFWD_RULE_F_SNAT)
		at += snprintf(buf + at, len - at, " --snat %s",
			       r->flags & XDPFWD_RULE_F_SNAT_AUTO ? "auto" :
			       addr_str(r->snat_addr, a));
	for (i = 0; i < n && at < len; i++)
		at += snprintf(buf + at, len - at, " --allow %s/%u", addr_str(allow[i].addr, a),
			       allow[i].len);
}

int do_save(int argc, char **argv)
{
	struct allow_cidr allow[XDPFWD_MAX_ALLOW_RULE];
	struct xdpfwd_allow_key *all = NULL;
	struct xdpfwd_rule *rules = NULL;
	int err, n = 0, n_all = 0, i;
	char line[LINE_LEN];
	struct state st;

	(void)argv;
	if (argc)
		return errorf(EXIT_USAGE, "usage: xdpfwd save");
	err = state_open(&st, STATE_READ);
	if (err)
		return err;
	if (state_exists(&st)) {
		n = rules_read(st.map_fd[MAP_RULES], &rules);
		n_all = n < 0 ? 0 : allow_read_all(st.map_fd[MAP_ALLOW], &all);
		if (n < 0 || n_all < 0) {
			err = errorf(EXIT_FAIL, "cannot read the rules: %s",
				     strerror(n < 0 ? -n : -n_all));
			goto out;
		}
		out_text("# xdpfwd %s rules, as 'xdpfwd apply FILE' takes them\n", XDPFWD_VERSION);
	}
	out_open_array(NULL);
	for (i = 0; i < n; i++) {
		rule_line(&rules[i], allow,
			  allow_of(all, n_all, rules[i].id, allow), line, sizeof(line));
		out_string(NULL, "%s\n", line);
	}
	out_close_array();
out:
	free(all);
	free(rules);
	state_close(&st, false);
	return err;
}
