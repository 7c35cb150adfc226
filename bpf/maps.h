/* SPDX-License-Identifier: GPL-2.0 */
/* Map definitions only. Pinned by name under XDPFWD_PIN_ROOT so every attached
 * program and every CLI invocation sees the same state. */
#ifndef XDPFWD_MAPS_H
#define XDPFWD_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xdpfwd.h"

/* Rules by id. A hash, not an array: replacing a rule swaps the whole entry
 * at once, so a reader never sees half of the old rule and half the new. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_MAX_RULES);
	__type(key, __u32);
	__type(value, struct xdpfwd_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules SEC(".maps");

/* Each external port of each rule -> the rule's id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_MAX_RULE_PORTS);
	__type(key, struct xdpfwd_rule_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_ports SEC(".maps");

/* The source CIDRs each rule with XDPFWD_RULE_F_ALLOW admits. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPFWD_MAX_ALLOW);
	__type(key, struct xdpfwd_allow_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPFWD_MAX_RULES);
	__type(key, __u32);
	__type(value, struct xdpfwd_rule_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_stats SEC(".maps");

/* A rule's generation, by rule id: deleting a rule bumps it, and every
 * connection made under an older generation is dead at once. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPFWD_MAX_RULES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_gens SEC(".maps");

/* Connections the backend has answered (TCP: handshake done). Sized by the
 * control plane (load --max-flows) before the maps are created. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2 * XDPFWD_DEFAULT_MAX_FLOWS);
	__type(key, struct xdpfwd_flow_key);
	__type(value, struct xdpfwd_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* Connections not answered yet. Kept apart so that a flood of them evicts
 * only its own kind, never an established connection. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2 * XDPFWD_NEW_FLOWS(XDPFWD_DEFAULT_MAX_FLOWS));
	__type(key, struct xdpfwd_flow_key);
	__type(value, struct xdpfwd_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows_new SEC(".maps");

/* The express cache (struct xdpfwd_express), indexed by
 * xdpfwd_express_slot(): an array, so a packet finds its slot without a
 * hash lookup's calls; per CPU, so no slot is written by two CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPFWD_EXPRESS_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpfwd_express);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} express_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPFWD_MAX_FRAGS);
	__type(key, struct xdpfwd_frag_key);
	__type(value, struct xdpfwd_frag);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpfwd_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

/* This host's IPv4 addresses -> the interface holding each. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_MAX_LOCAL_ADDRS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local_addrs SEC(".maps");

/* Egress interfaces that accept XDP frames; the control plane leaves out the
 * ones that would drop them (a veth whose peer has neither XDP nor GRO). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XDPFWD_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPFWD_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, XDPFWD_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

#endif /* XDPFWD_MAPS_H */
