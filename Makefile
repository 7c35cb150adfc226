# xdpfwd: one binary, build/xdpfwd, with the BPF object embedded by a skeleton.
BUILD     := build
CLANG     ?= clang
CC        ?= gcc
BPFTOOL   ?= bpftool
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
# Root here; a user with sudo elsewhere: the targets that need root ask for it.
SUDO      := $(if $(filter 0,$(shell id -u)),,sudo)

WARN      := -Wall -Wextra -Werror
BPF_CFLAGS := -O2 -g -target bpf $(WARN) -Iinclude -I/usr/include/$(MULTIARCH)
CFLAGS    ?= -O2 -g
CFLAGS    += $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -I$(BUILD)
LDLIBS    := -lbpf -lelf -lz -lmnl

BPF_SRC   := bpf/xdpfwd.bpf.c
BPF_HDRS  := $(wildcard bpf/*.h) include/xdpfwd.h
USER_SRC  := $(wildcard user/*.c)
USER_OBJ  := $(patsubst user/%.c,$(BUILD)/%.o,$(USER_SRC))
USER_HDRS := $(wildcard user/*.h) include/xdpfwd.h

DEB_PACKAGES := clang llvm libbpf-dev libelf-dev zlib1g-dev libmnl-dev bpftool \
	iproute2 ethtool nftables curl tcpdump python3 python3-scapy gcc make pkg-config netbase

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

clean:
	rm -rf $(BUILD)
