/* SPDX-License-Identifier: GPL-2.0 */
/* Events for `xdpfwd monitor`: connections made and ended, packets dropped.
 * Only these, never a forwarded packet, so the fast path pays nothing; with
 * no reader the ring fills and further events are lost, which costs a
 * failed reservation. */
#ifndef XDPFWD_EVENTS_H
#define XDPFWD_EVENTS_H

#include "maps.h"

/* event_emit - tell the monitor about @key (arrived on @ifindex). */
static __always_inline void event_emit(__u8 type, const struct xdpfwd_flow_key *key,
				       __u32 ifindex, __u32 rule_id, __u16 reason, __u8 state)
{
	struct xdpfwd_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev)
		return;
	ev->time_ns = bpf_ktime_get_ns();
	ev->key = *key;
	ev->rule_id = rule_id;
	ev->reason = reason;
	ev->type = type;
	ev->state = state;
	ev->ifindex = ifindex;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
}

#endif /* XDPFWD_EVENTS_H */
