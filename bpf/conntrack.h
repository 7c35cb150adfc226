/* SPDX-License-Identifier: GPL-2.0 */
/* Connection tracking: one entry a direction, each holding the tuple a packet
 * of that direction becomes, that direction's counters and next hop; the
 * original-direction entry also holds the connection's state. Rules are
 * consulted only for a connection's first packet.
 *
 * Connections live in flows_new until the backend has answered (TCP: the
 * handshake is done), then in flows, so a flood of unanswered packets can
 * evict only its own kind. Entries are never swept: an expired or dead one is
 * ignored, and deleted when met; the LRU reuses the rest.
 */
#ifndef XDPFWD_CONNTRACK_H
#define XDPFWD_CONNTRACK_H

#include "maps.h"
#include "parse.h"
#include "rule.h"
#include "events.h"

#define NSEC_PER_SEC 1000000000ULL

/* A packet's connection, as ct_lookup() found or made it. */
struct ct {
	struct xdpfwd_flow *flow;	/* this packet's direction: its new tuple */
	struct xdpfwd_flow *other;	/* the other direction */
	struct xdpfwd_flow *conn;	/* the original direction (one of the two): state */
	struct xdpfwd_flow_key orig_key;
	__u64 now;
};

/* ct_now - the time connections are stamped with: CLOCK_MONOTONIC_COARSE,
 * as precise as timeouts in seconds need, and a fraction of the precise
 * clock's cost on a virtual machine's clock source (18 ns a packet here). */
static __always_inline __u64 ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* EXPRESS_TTL_UNITS - how long an express slot serves, in its stamp's units
 * (2^20 ns): a second. */
#define EXPRESS_TTL_UNITS 954

/* express_stamp - @now in the units of struct xdpfwd_express's stamp, never
 * 0. */
static __always_inline __u32 express_stamp(__u64 now)
{
	return (__u32)(now >> 20) | 1;
}

/* express_fresh - whether @slot may be used at @now: filled within the last
 * second, and (so that the stamp's wrap every 52 days cannot fool it) used
 * within the last second. */
static __always_inline bool express_fresh(const struct xdpfwd_express *slot, __u64 now)
{
	return slot->stamp && now - slot->seen_ns < NSEC_PER_SEC &&
	       express_stamp(now) - slot->stamp < EXPRESS_TTL_UNITS;
}

/* key_eq - whether flow keys @a and @b are the same (padding is always 0). */
static __always_inline bool key_eq(const struct xdpfwd_flow_key *a,
				   const struct xdpfwd_flow_key *b)
{
	const __u64 *x = (const void *)a, *y = (const void *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* express_slot - way @way (0 or 1) of this CPU's express slots for @key:
 * two a key, so that two busy flows whose hashes meet both have one. */
static __always_inline struct xdpfwd_express *express_slot(const struct xdpfwd_flow_key *key,
							   __u32 way)
{
	__u32 i = xdpfwd_express_slot(key) ^ way;

	return bpf_map_lookup_elem(&express_cache, &i);
}

/* express_find - this CPU's express slot holding @key, or NULL. */
static __always_inline struct xdpfwd_express *express_find(const struct xdpfwd_flow_key *key)
{
	struct xdpfwd_express *slot = express_slot(key, 0);

	if (slot && key_eq(&slot->key, key))
		return slot;
	slot = express_slot(key, 1);
	return slot && key_eq(&slot->key, key) ? slot : NULL;
}

/* express_settle - add what @slot counted to @flow, the entry of its
 * direction, and start its count again. */
static __always_inline void express_settle(struct xdpfwd_express *slot, struct xdpfwd_flow *flow)
{
	flow->packets += slot->packets;
	flow->bytes += slot->bytes;
	if (slot->seen_ns > flow->seen_ns)
		flow->seen_ns = slot->seen_ns;
	slot->packets = 0;
	slot->bytes = 0;
}

/* express_flush - settle this CPU's slot of @key into @flow, @key's entry,
 * when it holds @key; with @empty, take @key out of it as well. A global
 * function, as those below: verified once, not on every path to it.
 * Returns 0. */
__attribute__((noinline)) int express_flush(const struct xdpfwd_flow_key *key,
					    struct xdpfwd_flow *flow, int empty)
{
	struct xdpfwd_express *slot;

	if (!key || !flow)
		return 0;
	slot = express_find(key);
	if (!slot)
		return 0;
	express_settle(slot, flow);
	if (empty)
		slot->key.proto = 0;
	return 0;
}

/* ct_express_state - whether a connection in @state with @flags stays so
 * whatever a packet without SYN, FIN or RST does: its packets may then
 * skip the tracker (see struct xdpfwd_express). */
static __always_inline bool ct_express_state(__u8 state, __u8 flags)
{
	return (flags & XDPFWD_CT_F_ASSURED) &&
	       (state == XDPFWD_CT_ESTABLISHED || state == XDPFWD_CT_UDP_REPLIED);
}

static const __u32 ct_default_timeout[XDPFWD_CT_STATE_MAX] = XDPFWD_CT_DEFAULT_TIMEOUTS;

/* flow_key_reverse - the key of the packets that answer @f's packets. */
static __always_inline void flow_key_reverse(struct xdpfwd_flow_key *k,
					     const struct xdpfwd_flow *f, __u8 proto)
{
	*k = (struct xdpfwd_flow_key){
		.saddr = f->daddr,
		.daddr = f->saddr,
		.sport = f->dport,
		.dport = f->sport,
		.proto = proto,
	};
}

/* ct_timeout_ns - how long a connection in @state may stay idle. */
static __always_inline __u64 ct_timeout_ns(__u8 state)
{
	struct xdpfwd_config *cfg;
	__u32 zero = 0, t = 0;

	if (state >= XDPFWD_CT_STATE_MAX)
		return 0;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg)
		t = cfg->timeout[state];
	if (!t)
		t = ct_default_timeout[state];
	return t * NSEC_PER_SEC;
}

/* ct_valid - whether the connection of @ct may still translate: its rule
 * has not been deleted since, and it has not been idle (in both
 * directions) longer than its state allows. */
static __always_inline bool ct_valid(const struct ct *ct)
{
	__u32 id = ct->conn->rule_id;
	__u32 *gen = bpf_map_lookup_elem(&rule_gens, &id);
	__u64 seen = ct->flow->seen_ns;

	if (!gen || *gen != ct->conn->rule_gen)
		return false;
	if (ct->other->seen_ns > seen)
		seen = ct->other->seen_ns;
	return ct->now < seen || ct->now - seen <= ct_timeout_ns(ct->conn->state);
}

/* ct_table - the table a connection with @flags lives in. */
static __always_inline void *ct_table(__u8 flags)
{
	return flags & XDPFWD_CT_F_ASSURED ? (void *)&flows : (void *)&flows_new;
}

/* ct_forget - delete both entries of the connection @conn, keyed @orig_key. */
static __always_inline void ct_forget(const struct xdpfwd_flow_key *orig_key,
				      const struct xdpfwd_flow *conn)
{
	struct xdpfwd_flow_key reply_key;
	void *table = ct_table(conn->flags);

	flow_key_reverse(&reply_key, conn, orig_key->proto);
	bpf_map_delete_elem(table, &reply_key);
	bpf_map_delete_elem(table, orig_key);
}

/* ct_half_dead - whether @flow, found in @table without its other entry
 * (keyed @other_key), is what is left of a connection the LRU took half of
 * (under a flood, of an unanswered one): of no use, and holding its SNAT
 * port. Not a reply entry made in the last second, which may be of a
 * connection being made (ct_create()), nor one whose original entry is in
 * flows_new still: a move (ct_promote()) puts the reply entry in flows
 * first, and for the moment it takes, the reply's packet finds no
 * connection. */
static __always_inline bool ct_half_dead(void *table, const struct xdpfwd_flow *flow,
					 const struct xdpfwd_flow_key *other_key, __u64 now)
{
	if (flow->dir == XDPFWD_DIR_ORIG)
		return true;
	if (now - flow->created_ns <= NSEC_PER_SEC)
		return false;
	return table != &flows || !bpf_map_lookup_elem(&flows_new, other_key);
}

/* ct_find - the valid connection @key belongs to, in either table, both of
 * its entries (the lookup of the other one also keeps it as young as this
 * one for the LRU). Fills @ct and returns true; a dead, expired or half
 * evicted connection is deleted. */
static __always_inline bool ct_find(const struct xdpfwd_flow_key *key, struct ct *ct)
{
	struct xdpfwd_flow *flow, *other;
	void *table = &flows;

	flow = bpf_map_lookup_elem(&flows, key);
	if (!flow) {
		table = &flows_new;
		flow = bpf_map_lookup_elem(&flows_new, key);
	}
	if (!flow)
		return false;
	/* The other entry's key, which is the original key when @key is
	 * the reply's. */
	flow_key_reverse(&ct->orig_key, flow, key->proto);
	other = bpf_map_lookup_elem(table, &ct->orig_key);
	if (!other) {
		if (ct_half_dead(table, flow, &ct->orig_key, ct->now))
			bpf_map_delete_elem(table, key);
		return false;
	}
	/* What the express path counted on this CPU belongs in the entry
	 * before anything reads it. */
	express_flush(key, flow, false);
	ct->flow = flow;
	ct->other = other;
	ct->conn = other;
	if (flow->dir == XDPFWD_DIR_ORIG) {
		ct->conn = flow;
		ct->orig_key = *key;
	}
	if (!ct_valid(ct)) {
		ct_forget(&ct->orig_key, ct->conn);
		return false;
	}
	return true;
}

/* ct_first_state - the state a connection opened by a packet of @proto with
 * @tcp_flags starts in, or XDPFWD_CT_NONE when it cannot open one (a TCP
 * reset). A TCP packet other than a SYN opens it mid-stream, as netfilter's
 * loose pickup does. */
static __always_inline __u8 ct_first_state(__u8 proto, __u8 tcp_flags)
{
	if (proto == IPPROTO_UDP)
		return XDPFWD_CT_UDP_UNREPLIED;
	if (tcp_flags & TCP_RST)
		return XDPFWD_CT_NONE;
	if ((tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		return XDPFWD_CT_SYN_SENT;
	return XDPFWD_CT_ESTABLISHED;
}

/* SNAT_TRIES - random source ports a new source-NATed connection tries:
 * with half the range in use, all are taken once in 65536 connections. */
#define SNAT_TRIES 16

/* A connection being made: its entries, and for SNAT the port claim in
 * progress (the reply entry's key, whose dport is the port being tried). */
struct ct_draft {
	struct xdpfwd_flow_key key;
	struct xdpfwd_flow reply;
	struct xdpfwd_flow orig;
	__u64 now;
	__u32 min;
	__u32 span;
	bool claimed;
};


/* Where a connection is made: too big for the stack beside the packet's. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_draft);
} ct_drafts SEC(".maps");

/* snat_try - one bpf_loop() round of ct_claim_reply(): a random port, kept
 * when no connection holds it. Returns 1 (stop) once claimed, else 0. */
static long snat_try(__u32 round, void *arg)
{
	struct ct_draft *c;
	struct ct holder;
	__u32 zero = 0;

	(void)round;
	(void)arg;
	c = bpf_map_lookup_elem(&ct_drafts, &zero);
	if (!c)
		return 1;
	holder.now = c->now;
	c->key.dport = bpf_htons(c->min + bpf_get_prandom_u32() % c->span);
	/* A dead connection's entries are deleted here: its port is free. */
	if (ct_find(&c->key, &holder))
		return 0;
	c->claimed = !bpf_map_update_elem(&flows_new, &c->key, &c->reply, BPF_NOEXIST);
	return c->claimed;
}

/* ct_claim_reply - enter @c's reply entry under a key no connection holds,
 * choosing its source port for SNAT (the key's dport) at random from the
 * configured range. @c is this CPU's ct_drafts slot, where each round
 * (snat_try()) finds it. A loop the verifier checks once, not once a round.
 * Returns 0 with the port in @c->key, else the reason. */
static __always_inline int ct_claim_reply(struct ct_draft *c)
{
	struct xdpfwd_config *cfg;
	__u32 zero = 0;

	c->min = XDPFWD_SNAT_PORT_MIN;
	c->span = XDPFWD_SNAT_PORT_MAX - XDPFWD_SNAT_PORT_MIN + 1;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && cfg->snat_port_min && cfg->snat_port_max >= cfg->snat_port_min) {
		c->min = cfg->snat_port_min;
		c->span = cfg->snat_port_max - cfg->snat_port_min + 1;
	}
	bpf_loop(SNAT_TRIES, snat_try, NULL, 0);
	return c->claimed ? 0 : XDPFWD_R_DROP_SNAT_NO_PORT;
}

/* ct_create - enter both directions of a new connection, @key with TCP
 * @tcp_flags, through @rule, leaving as @plan says, in flows_new. Returns 0
 * with @ct filled, else the reason it was not made. */
static __always_inline int ct_create(const struct xdpfwd_flow_key *key, __u8 tcp_flags,
				     __u32 ingress, const struct xdpfwd_rule *rule,
				     const struct nat_plan *plan, struct ct *ct)
{
	__u64 now = ct->now;
	__u8 state = ct_first_state(key->proto, tcp_flags);
	struct ct_draft *c;
	__u32 zero = 0;
	int reason;

	if (state == XDPFWD_CT_NONE)
		return XDPFWD_R_PASS_CT_INVALID;
	c = bpf_map_lookup_elem(&ct_drafts, &zero);
	if (!c)
		return XDPFWD_R_DROP_CT_FULL;
	/* Field by field: a compound literal would be built on the stack. */
	__builtin_memset(c, 0, sizeof(*c));
	c->key.saddr = plan->daddr;
	c->key.daddr = plan->saddr;
	c->key.sport = plan->dport;
	c->key.dport = key->sport;
	c->key.proto = key->proto;
	c->reply.saddr = key->daddr;
	c->reply.daddr = key->saddr;
	c->reply.sport = key->dport;
	c->reply.dport = key->sport;
	c->reply.rule_id = rule->id;
	c->reply.rule_gen = rule->gen;
	c->reply.dir = XDPFWD_DIR_REPLY;
	c->reply.created_ns = now;	/* seen_ns 0: no reply yet */
	c->orig.saddr = plan->saddr;
	c->orig.daddr = plan->daddr;
	c->orig.dport = plan->dport;
	c->orig.rule_id = rule->id;
	c->orig.rule_gen = rule->gen;
	c->orig.dir = XDPFWD_DIR_ORIG;
	c->orig.state = state;
	c->orig.flags = plan->snat ? XDPFWD_CT_F_SNAT : 0;
	c->orig.created_ns = now;
	c->orig.seen_ns = now;
	c->now = now;
	/* Reply first: once the original entry is visible, replies must be
	 * translatable. */
	if (plan->snat) {
		reason = ct_claim_reply(c);
		if (reason)
			return reason;
	} else if (bpf_map_update_elem(&flows_new, &c->key, &c->reply, BPF_ANY)) {
		return XDPFWD_R_DROP_CT_FULL;
	}
	c->orig.sport = c->key.dport;
	if (bpf_map_update_elem(&flows_new, key, &c->orig, BPF_ANY))
		return XDPFWD_R_DROP_CT_FULL;
	ct->conn = bpf_map_lookup_elem(&flows_new, key);
	if (!ct->conn)
		return XDPFWD_R_DROP_CT_FULL;
	ct->other = bpf_map_lookup_elem(&flows_new, &c->key);
	if (!ct->other)
		return XDPFWD_R_DROP_CT_FULL;
	ct->flow = ct->conn;
	ct->orig_key = *key;
	event_emit(XDPFWD_EV_NEW, key, ingress, rule->id, 0, 0);
	return 0;
}

/* ct_restarts - whether @p, a TCP SYN, opens a new connection over @conn: as
 * in netfilter, a SYN after the old one has closed starts afresh. */
static __always_inline bool ct_restarts(const struct packet *p, const struct ct *ct)
{
	return ct->flow->dir == XDPFWD_DIR_ORIG && p->key.proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN &&
	       ct->conn->state >= XDPFWD_CT_TIME_WAIT;
}

/* ct_lookup - the valid connection @p belongs to; a TCP SYN over a closed
 * one ends it. @ct->now must be set. Returns true with @ct filled. */
static __always_inline bool ct_lookup(const struct packet *p, struct ct *ct)
{
	if (!ct_find(&p->key, ct))
		return false;
	if (!pkt_l4(p) || !ct_restarts(p, ct))
		return true;
	ct_forget(&ct->orig_key, ct->conn);
	return false;
}

/* tcp_next_state - netfilter's TCP transitions, without sequence windows,
 * for a packet with @tcp_flags in direction @dir; updates *@flags. */
static __always_inline __u8 tcp_next_state(__u8 state, __u8 dir, __u8 tcp_flags,
					   __u8 *flags)
{
	if (tcp_flags & TCP_RST)
		return XDPFWD_CT_CLOSE;
	if ((tcp_flags & TCP_FIN) && state < XDPFWD_CT_TIME_WAIT) {
		*flags |= dir == XDPFWD_DIR_ORIG ? XDPFWD_CT_F_FIN_ORIG : XDPFWD_CT_F_FIN_REPLY;
		if ((*flags & XDPFWD_CT_F_FIN_ORIG) && (*flags & XDPFWD_CT_F_FIN_REPLY))
			return XDPFWD_CT_LAST_ACK;
		return XDPFWD_CT_FIN_WAIT;
	}
	if (state == XDPFWD_CT_SYN_SENT && dir == XDPFWD_DIR_REPLY && (tcp_flags & TCP_SYN))
		return XDPFWD_CT_SYN_RECV;
	if (state == XDPFWD_CT_SYN_RECV && dir == XDPFWD_DIR_ORIG &&
	    (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_ACK)
		return XDPFWD_CT_ESTABLISHED;
	if (state == XDPFWD_CT_LAST_ACK && (tcp_flags & (TCP_FIN | TCP_ACK)) == TCP_ACK)
		return XDPFWD_CT_TIME_WAIT;
	return state;
}

/* ct_assured - whether a connection in @state with @flags has earned a place
 * in the established table: the backend answered and, for TCP, the
 * handshake is over. */
static __always_inline bool ct_assured(__u8 state, __u8 flags)
{
	if (!(flags & XDPFWD_CT_F_SEEN_REPLY))
		return false;
	return state == XDPFWD_CT_UDP_REPLIED || state == XDPFWD_CT_ESTABLISHED ||
	       state == XDPFWD_CT_FIN_WAIT || state == XDPFWD_CT_LAST_ACK;
}

/* ct_promote - move the connection of @ct from flows_new to flows. The old
 * entries are freed: @ct must not be used afterwards. */
static __always_inline void ct_promote(struct ct *ct)
{
	struct xdpfwd_flow *reply = ct->flow->dir == XDPFWD_DIR_ORIG ? ct->other : ct->flow;
	struct xdpfwd_flow_key reply_key;

	flow_key_reverse(&reply_key, ct->conn, ct->orig_key.proto);
	ct->conn->flags |= XDPFWD_CT_F_ASSURED;
	if (bpf_map_update_elem(&flows, &reply_key, reply, BPF_ANY))
		return;
	if (bpf_map_update_elem(&flows, &ct->orig_key, ct->conn, BPF_ANY)) {
		bpf_map_delete_elem(&flows, &reply_key);
		return;
	}
	bpf_map_delete_elem(&flows_new, &reply_key);
	bpf_map_delete_elem(&flows_new, &ct->orig_key);
}

/* rule_count - add to the rule's counters for direction @dir. */
static __always_inline void rule_count(__u32 id, __u8 dir, __u64 packets, __u64 bytes)
{
	struct xdpfwd_rule_stats *st = bpf_map_lookup_elem(&rule_stats, &id);

	if (!st)
		return;
	if (dir == XDPFWD_DIR_ORIG) {
		st->orig_packets += packets;
		st->orig_bytes += bytes;
	} else {
		st->reply_packets += packets;
		st->reply_bytes += bytes;
	}
}

/* express_free - whether @slot may take a key of its own at @now: empty,
 * or idle for a second (its counts are settled then). */
static __always_inline bool express_free(struct xdpfwd_express *slot, __u64 now)
{
	struct xdpfwd_flow *owner;

	if (!slot->key.proto)
		return true;
	if (now - slot->seen_ns < NSEC_PER_SEC)
		return false;
	owner = bpf_map_lookup_elem(&flows, &slot->key);
	if (owner)
		express_settle(slot, owner);
	return true;
}

/* express_fill - give @key, of the direction whose entry is @flow, one of
 * this CPU's express slots: its tuple and the next hop of the route lookup
 * @fib (mtu_result: the route's MTU), resolved at @now. The slot it holds
 * already, else a free one; none while both its slots serve busy keys.
 * Returns 0. */
__attribute__((noinline)) int express_fill(const struct xdpfwd_flow_key *key,
					   const struct xdpfwd_flow *flow,
					   const struct bpf_fib_lookup *fib, __u64 now)
{
	struct xdpfwd_express *slot;

	if (!key || !flow || !fib)
		return 0;
	slot = express_find(key);
	if (!slot) {
		slot = express_slot(key, 0);
		if (slot && !express_free(slot, now))
			slot = express_slot(key, 1);
		if (!slot || !express_free(slot, now))
			return 0;
	}
	slot->key = *key;
	slot->saddr = flow->saddr;
	slot->daddr = flow->daddr;
	slot->sport = flow->sport;
	slot->dport = flow->dport;
	slot->rule_id = flow->rule_id;
	slot->rule_gen = flow->rule_gen;
	slot->stamp = express_stamp(now);
	slot->ifindex = fib->ifindex;
	slot->mtu = fib->mtu_result;
	__builtin_memcpy(slot->dmac, fib->dmac, ETH_ALEN);
	__builtin_memcpy(slot->smac, fib->smac, ETH_ALEN);
	slot->dir = flow->dir;
	slot->packets = 0;
	slot->bytes = 0;
	slot->seen_ns = now;
	return 0;
}

/* ct_first_to_tell - whether this CPU is the first to mark @conn as having
 * told @event (XDPFWD_CT_TOLD_*): an atomic OR of the aligned 64-bit word
 * that holds told, which leaves the plain stores to the fields beside it
 * whole. */
static __always_inline bool ct_first_to_tell(struct xdpfwd_flow *conn, __u8 event)
{
	__u64 *word = (__u64 *)&conn->rule_gen;
	__u64 bit = (__u64)event << (8 * (offsetof(struct xdpfwd_flow, told) -
					  offsetof(struct xdpfwd_flow, rule_gen)));

	return !(__sync_fetch_and_or(word, bit) & bit);
}

/* ct_account - what a translated packet @p, arrived on @ingress, tells its
 * connection: counters, the next state, and a move to the established table
 * once assured. @sent_by, when not NULL, is the route lookup that sent the
 * packet (mtu_result: the route's MTU): kept for the direction's later
 * packets if the connection is in a state they cannot change. Counters are
 * plain adds: an entry is written by the packets of one direction, which
 * RSS keeps on one CPU. Ends @ct's use (see ct_promote()). */
static __always_inline void ct_account(const struct packet *p, struct ct *ct, __u32 ingress,
				       __u64 packets, __u64 bytes,
				       const struct bpf_fib_lookup *sent_by)
{
	struct xdpfwd_flow *conn = ct->conn, *flow = ct->flow;
	struct xdpfwd_flow_key other_key;
	__u8 dir = flow->dir & 1;
	__u8 state = conn->state, flags = conn->flags;

	rule_count(conn->rule_id, dir, packets, bytes);
	flow->packets += packets;
	flow->bytes += bytes;
	if (pkt_icmp_err(p))
		return;
	flow->seen_ns = ct->now;
	if (!pkt_l4(p))
		return;
	if (dir == XDPFWD_DIR_REPLY)
		flags |= XDPFWD_CT_F_SEEN_REPLY;
	if (p->key.proto == IPPROTO_TCP)
		state = tcp_next_state(state, dir, p->tcp_flags, &flags);
	else if (dir == XDPFWD_DIR_REPLY)
		state = XDPFWD_CT_UDP_REPLIED;
	if (conn->state < XDPFWD_CT_TIME_WAIT && state >= XDPFWD_CT_TIME_WAIT &&
	    state <= XDPFWD_CT_CLOSE && ct_first_to_tell(conn, XDPFWD_CT_TOLD_CLOSED))
		event_emit(XDPFWD_EV_CLOSED, &ct->orig_key, ingress, conn->rule_id, 0, state);
	if (state != conn->state || flags != conn->flags) {
		/* Packets the express path lets through unseen could change
		 * the connection now. A slot on another CPU cannot be
		 * reached, nor needs to be: in an express state only a SYN,
		 * FIN or RST, which express refuses, changes a connection;
		 * once out of it, a packet without them changes it only in
		 * last_ack, which each direction reaches by a FIN of its own
		 * that emptied its slot. */
		express_flush(&p->key, flow, true);
		flow_key_reverse(&other_key, flow, p->key.proto);
		express_flush(&other_key, ct->other, true);
	} else if (sent_by && ct_express_state(state, flags)) {
		express_fill(&p->key, flow, sent_by, ct->now);
	}
	conn->state = state;
	conn->flags = flags;
	if (!(flags & XDPFWD_CT_F_ASSURED) && ct_assured(state, flags))
		ct_promote(ct);
}

#endif /* XDPFWD_CONNTRACK_H */
