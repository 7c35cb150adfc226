# xdpfwd: one binary, build/xdpfwd, with the BPF object embedded by a skeleton.
BUILD     := build
CLANG     ?= clang
CC        ?= gcc
BPFTOOL   ?= bpftool
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
# Root here; a user with sudo elsewhere: the targets that need root ask for it.
SUDO      := $(if $(filter 0,$(shell id -u)),,sudo)

WARN      := -Wall -Wextra -Werror
BPF_CFLAGS := -O2 -g -target bpf $(WARN) -Iinclude -I/usr/include/$(MULTIARCH) $(BPF_EXTRA_CFLAGS)
CFLAGS    ?= -O2 -g
CFLAGS    += $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -I$(BUILD)
LDLIBS    := -lbpf -lelf -lz -lmnl -lmicrohttpd

BPF_SRC   := bpf/xdpfwd.bpf.c
BPF_HDRS  := $(wildcard bpf/*.h) include/xdpfwd.h
USER_SRC  := $(wildcard user/*.c)
USER_OBJ  := $(patsubst user/%.c,$(BUILD)/%.o,$(USER_SRC))
USER_HDRS := $(wildcard user/*.h) include/xdpfwd.h

DEB_PACKAGES := clang llvm libbpf-dev libelf-dev zlib1g-dev libmnl-dev libmicrohttpd-dev bpftool \
	iproute2 ethtool nftables curl tcpdump python3 python3-scapy gcc make pkg-config netbase \
	man-db groff-base systemd dpkg

.PHONY: all deps test clean demo
all: $(BUILD)/xdpfwd

$(BUILD):
	mkdir -p $@

$(BUILD)/xdpfwd.bpf.o: $(BPF_SRC) $(BPF_HDRS) | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/xdpfwd.skel.h: $(BUILD)/xdpfwd.bpf.o
	$(BPFTOOL) gen skeleton $< name xdpfwd_bpf > $@

$(BUILD)/%.o: user/%.c $(USER_HDRS) $(BUILD)/xdpfwd.skel.h
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/xdpfwd: $(USER_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Debian packages for building, running and testing.
deps:
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES)

# Every test, as root. Ends with an "N passed, N failed" line.
test: all
	$(SUDO) tests/run.sh

# A namespace topology with a client, this router and a server: one forward, shown.
demo: all
	$(SUDO) tools/demo.sh

# Benchmarks (as root; several minutes): results in $(BUILD)/bench and
# docs/BENCHMARKS.md. Nothing here is built by `all` or run by `test`, so a
# bench that fails to build breaks neither.
BENCH_TOOLS := $(BUILD)/bench-tools
BENCH_BPF_CFLAGS := -O2 -g -target bpf $(WARN) -Itools/bench -I/usr/include/$(MULTIARCH)

$(BENCH_TOOLS):
	mkdir -p $@

$(BENCH_TOOLS)/%.bpf.o: tools/bench/%.bpf.c tools/bench/bench.h | $(BENCH_TOOLS)
	$(CLANG) $(BENCH_BPF_CFLAGS) -c $< -o $@

$(BENCH_TOOLS)/gen.skel.h: $(BENCH_TOOLS)/gen.bpf.o
	$(BPFTOOL) gen skeleton $< name gen_bpf > $@

$(BENCH_TOOLS)/gen: tools/bench/gen.c tools/bench/bench.h $(BENCH_TOOLS)/gen.skel.h
	$(CC) $(CFLAGS) -Itools/bench -I$(BENCH_TOOLS) $< -lbpf -lelf -lz -o $@

.PHONY: bench
bench: all $(BENCH_TOOLS)/gen $(BENCH_TOOLS)/sink.bpf.o $(BENCH_TOOLS)/bare.bpf.o
	$(SUDO) env XDPFWD_BIN=$(abspath $(BUILD)/xdpfwd) BENCH_TOOLS=$(abspath $(BENCH_TOOLS)) \
		BENCH_OUT=$(abspath $(BUILD)/bench) \
		tools/bench/run.sh

# Installation: the binary, xdpfwd(8), bash completion, the systemd unit and
# the files it reads under /etc (those are kept when there already).
# DESTDIR for staging (no root needed then); `make deb` uses PREFIX=/usr.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR  ?= /etc
VERSION     := $(shell sed -n 's/^\#define XDPFWD_VERSION "\(.*\)"/\1/p' include/xdpfwd.h)
SUBST       := sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

# install_conf SRC DEST: a configuration file, unless DEST is there already.
install_conf = if [ -e $(2) ]; then echo "kept $(2)"; else install -m 0644 $(1) $(2); fi

.PHONY: install uninstall deb
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/xdpfwd $(DESTDIR)$(SYSCONFDIR)/default
	install -m 0755 $(BUILD)/xdpfwd $(DESTDIR)$(SBINDIR)/xdpfwd
	$(SUBST) packaging/xdpfwd.8 > $(DESTDIR)$(MANDIR)/man8/xdpfwd.8
	$(SUBST) packaging/xdpfwd.service.in > $(DESTDIR)$(UNITDIR)/xdpfwd.service
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/xdpfwd.8 $(DESTDIR)$(UNITDIR)/xdpfwd.service
	install -m 0644 packaging/xdpfwd.bash-completion $(DESTDIR)$(BASHCOMPDIR)/xdpfwd
	@$(call install_conf,packaging/rules.conf,$(DESTDIR)$(SYSCONFDIR)/xdpfwd/rules.conf)
	@$(call install_conf,packaging/xdpfwd.default,$(DESTDIR)$(SYSCONFDIR)/default/xdpfwd)

# Leaves the files under /etc, as removing a Debian package does.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/xdpfwd $(DESTDIR)$(MANDIR)/man8/xdpfwd.8 \
		$(DESTDIR)$(BASHCOMPDIR)/xdpfwd $(DESTDIR)$(UNITDIR)/xdpfwd.service

# $(BUILD)/xdpfwd_VERSION_ARCH.deb, from a staged `make install`.
deb: all
	rm -rf $(BUILD)/deb
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(BUILD)/deb) PREFIX=/usr \
		SBINDIR=/usr/sbin MANDIR=/usr/share/man \
		BASHCOMPDIR=/usr/share/bash-completion/completions \
		UNITDIR=/lib/systemd/system SYSCONFDIR=/etc
	packaging/mkdeb.sh $(BUILD)/deb $(VERSION) $(BUILD)

clean:
	rm -rf $(BUILD)
