"""Minimal bpf(2) and setns(2) access through ctypes, for the unit tests.

Only what the packet tests need: BPF_OBJ_GET on a pinned program or map,
BPF_PROG_TEST_RUN of an XDP program with an xdp_md context, and lookup,
update, delete and iteration of a map's elements.
"""
import ctypes
import os
import platform
import struct

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361,
            "s390x": 351, "armv7l": 386, "i686": 357}
_SYS_SETNS = {"x86_64": 308, "aarch64": 268, "riscv64": 268, "ppc64le": 350,
              "s390x": 339, "armv7l": 375, "i686": 346}

BPF_OBJ_GET = 7
BPF_PROG_TEST_RUN = 10
CLONE_NEWNET = 0x40000000

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
VERDICT_NAMES = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX",
                 4: "XDP_REDIRECT"}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_ATTR_SIZE = 128  # larger than any field we use; the unused tail stays zero


def _nr(table):
    try:
        return table[platform.machine()]
    except KeyError:
        raise OSError("unsupported architecture " + platform.machine())


def _bpf(cmd, attr):
    ret = _libc.syscall(ctypes.c_long(_nr(_SYS_BPF)), ctypes.c_int(cmd),
                        attr, ctypes.c_uint(_ATTR_SIZE))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, "bpf(cmd %d): %s" % (cmd, os.strerror(err)))
    return ret


def obj_get(path):
    """Return an fd for the object pinned at @path."""
    cpath = ctypes.create_string_buffer(os.fsencode(path))
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    # pathname u64, bpf_fd u32, file_flags u32
    struct.pack_into("=QII", attr, 0, ctypes.addressof(cpath), 0, 0)
    return _bpf(BPF_OBJ_GET, attr)


def xdp_test_run(prog_fd, data, ingress_ifindex=0, rx_queue=0, out_size=16384):
    """Run @data through the XDP program once.

    Returns (verdict, output bytes, metadata length): the output is what the
    kernel hands back, the XDP metadata the program put in front of the
    frame (bpf_xdp_adjust_meta) included; its first @metadata length bytes
    are that metadata. The xdp_md context makes the program see the packet
    as received on @ingress_ifindex (in the caller's netns)."""
    data = bytes(data)
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(out_size)
    # struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    # rx_queue_index, egress_ifindex
    ctx = ctypes.create_string_buffer(
        struct.pack("=6I", 0, len(data), 0, ingress_ifindex, rx_queue, 0), 24)
    ctx_out = ctypes.create_string_buffer(24)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    # test: prog_fd, retval, data_size_in, data_size_out, data_in, data_out,
    # repeat, duration, ctx_size_in, ctx_size_out, ctx_in, ctx_out, flags,
    # cpu, batch_size
    struct.pack_into("=IIIIQQIIIIQQIII", attr, 0,
                     prog_fd, 0, len(data), out_size,
                     ctypes.addressof(din), ctypes.addressof(dout),
                     1, 0, 24, 24, ctypes.addressof(ctx),
                     ctypes.addressof(ctx_out), 0, 0, 0)
    _bpf(BPF_PROG_TEST_RUN, attr)
    retval, _, size_out = struct.unpack_from("=III", attr, 4)
    # on the way out, xdp_md.data is the metadata's length (data_meta is 0)
    meta_len = struct.unpack_from("=I", ctx_out.raw, 0)[0]
    return retval, dout.raw[:size_out], meta_len


SKB_CTX_SIZE = 192          # struct __sk_buff
TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7


def skb_test_run(prog_fd, data, ifindex=0, out_size=16384):
    """Run @data through a TC program once, as an skb on @ifindex.

    Returns (return code, output bytes). The kernel takes no XDP metadata
    in front of an skb here, so a frame XDP marked for TC cannot be fed."""
    data = bytes(data)
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(out_size)
    ctx = bytearray(SKB_CTX_SIZE)
    struct.pack_into("=II", ctx, 36, ifindex, ifindex)  # ingress_ifindex, ifindex
    cin = ctypes.create_string_buffer(bytes(ctx), SKB_CTX_SIZE)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=IIIIQQIIIIQQIII", attr, 0,
                     prog_fd, 0, len(data), out_size,
                     ctypes.addressof(din), ctypes.addressof(dout),
                     1, 0, SKB_CTX_SIZE, 0, ctypes.addressof(cin), 0, 0, 0, 0)
    _bpf(BPF_PROG_TEST_RUN, attr)
    retval, _, size_out = struct.unpack_from("=III", attr, 4)
    return retval, dout.raw[:size_out]


def setns_path(path, nstype=CLONE_NEWNET):
    """Move the calling thread into the namespace at @path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, nstype)
    finally:
        os.close(fd)


def setns_fd(fd, nstype=CLONE_NEWNET):
    ret = _libc.syscall(ctypes.c_long(_nr(_SYS_SETNS)), ctypes.c_int(fd),
                        ctypes.c_int(nstype))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


# Map access, for the connection-tracking tests: the pinned maps are opened
# with obj_get() and read and written as raw bytes (the callers pack them).
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2
_ENOENT = 2


def _map_attr(fd, key, value_or_next=None, flags=0):
    # map_fd u32, pad u32, key u64, value/next_key u64, flags u64
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=IIQQQ", attr, 0, fd, 0,
                     ctypes.addressof(key) if key is not None else 0,
                     ctypes.addressof(value_or_next) if value_or_next is not None else 0,
                     flags)
    return attr


# BPF_MAP_TYPE_PERCPU_HASH, _PERCPU_ARRAY, _LRU_PERCPU_HASH: a value a CPU
_PERCPU_TYPES = (5, 6, 10)


def _check_sizes(fd, key, value_size=None):
    """Refuse a key or value buffer of another size than the map's: the
    kernel would read or write past it (a test still on an old layout
    would crash, not fail)."""
    mtype, ks, vs, _ = map_info(fd)
    if mtype in _PERCPU_TYPES:
        vs = (vs + 7) // 8 * 8 * possible_cpus()
    if len(key) != ks or (value_size is not None and value_size != vs):
        raise ValueError("the map %s has %d-byte keys and %d-byte values, the "
                         "test gave %d and %s: its layout is out of date" %
                         (map_name(fd), ks, vs, len(key), value_size))


def map_lookup(fd, key, value_size):
    """The value under @key (bytes), or None when there is none."""
    _check_sizes(fd, key, value_size)
    k = ctypes.create_string_buffer(bytes(key), len(key))
    v = ctypes.create_string_buffer(value_size)
    try:
        _bpf(BPF_MAP_LOOKUP_ELEM, _map_attr(fd, k, v))
    except OSError as e:
        if e.errno == _ENOENT:
            return None
        raise
    return v.raw


def map_update(fd, key, value, flags=BPF_ANY):
    """Store @value under @key; raises OSError as the kernel refuses."""
    _check_sizes(fd, key, len(value))
    k = ctypes.create_string_buffer(bytes(key), len(key))
    v = ctypes.create_string_buffer(bytes(value), len(value))
    _bpf(BPF_MAP_UPDATE_ELEM, _map_attr(fd, k, v, flags))


def map_delete(fd, key):
    """Remove @key; returns whether it was there."""
    _check_sizes(fd, key)
    k = ctypes.create_string_buffer(bytes(key), len(key))
    try:
        _bpf(BPF_MAP_DELETE_ELEM, _map_attr(fd, k))
    except OSError as e:
        if e.errno == _ENOENT:
            return False
        raise
    return True


def map_keys(fd, key_size, limit=1 << 20):
    """Every key of a hash map (at most @limit), as bytes."""
    _check_sizes(fd, bytes(key_size))
    keys = []
    cur = None
    nxt = ctypes.create_string_buffer(key_size)
    while len(keys) < limit:
        try:
            _bpf(BPF_MAP_GET_NEXT_KEY, _map_attr(fd, cur, nxt))
        except OSError as e:
            if e.errno == _ENOENT:
                break
            raise
        keys.append(nxt.raw)
        cur = ctypes.create_string_buffer(nxt.raw, key_size)
    return keys


def map_info(fd):
    """(type, key_size, value_size, max_entries) of the map behind @fd."""
    info = ctypes.create_string_buffer(80)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    # info.bpf_fd u32, info_len u32, info u64
    struct.pack_into("=IIQ", attr, 0, fd, len(info), ctypes.addressof(info))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    mtype, _, key_size, value_size, max_entries = struct.unpack_from("=5I", info, 0)
    return mtype, key_size, value_size, max_entries


def map_name(fd):
    """The name the map behind @fd was created with (bpf_map_info.name)."""
    info = ctypes.create_string_buffer(80)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=IIQ", attr, 0, fd, len(info), ctypes.addressof(info))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return info.raw[24:40].split(b"\0")[0].decode(errors="replace")


def possible_cpus():
    """How many CPUs a per-CPU map value holds a slot for."""
    with open("/sys/devices/system/cpu/possible") as f:
        n = 0
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n = max(n, int(hi or lo) + 1)
    return n
