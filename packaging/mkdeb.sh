#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# mkdeb.sh ROOT VERSION OUT_DIR: make OUT_DIR/xdpfwd_VERSION_ARCH.deb from
# ROOT, a tree `make install DESTDIR=ROOT PREFIX=/usr` filled (`make deb` does
# both). Adds what Debian wants of a package: a stripped binary, a compressed
# man page, the copyright file, the control data. Depends is read from the
# libraries the binary links (each one's package and its shlibs minimum), so
# a library added to LDLIBS needs no change here. Needs no root.
set -euo pipefail

root=$1 version=$2 out_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
bin=$root/usr/sbin/xdpfwd
maintainer=${DEB_MAINTAINER:-xdpfwd maintainers <root@localhost>}

die() { echo "mkdeb.sh: $*" >&2; exit 1; }

[ -x "$bin" ] || die "no $bin: run make install DESTDIR=$root PREFIX=/usr first"

# lib_package SONAME: the package that ships the library, as "pkg (>= version)"
# from its shlibs file when it has one, else the bare name.
lib_package() {
	local so=$1 path pkg name ver shlibs dep=
	for path in "/lib/$multiarch/$so" "/usr/lib/$multiarch/$so"; do
		pkg=$(dpkg-query -S "$path" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && break
	done
	[ -n "$pkg" ] || die "no package ships $so (dpkg -S)"
	# libfoo.so.1 -> "libfoo 1", the key of a shlibs line.
	name=${so%%.so.*} ver=${so##*.so.}
	shlibs=$(dpkg-query --control-path "$pkg" shlibs 2>/dev/null || true)
	if [ -n "$shlibs" ]; then
		dep=$(awk -v n="$name" -v v="$ver" '$1 == n && $2 == v { $1 = $2 = ""; sub(/^ +/, ""); print; exit }' "$shlibs")
	fi
	echo "${dep:-$pkg}"
}

depends() {
	local so
	readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r so; do
		lib_package "$so"
	done | sort -u | paste -sd, | sed 's/,/, /g'
}

strip --strip-unneeded --remove-section=.comment --remove-section=.note "$bin"
gzip -9n "$root/usr/share/man/man8/xdpfwd.8"

install -d "$root/usr/share/doc/xdpfwd"
cat > "$root/usr/share/doc/xdpfwd/copyright" <<-EOF
	Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
	Upstream-Name: xdpfwd

	Files: *
	Copyright: the xdpfwd authors
	License: GPL-2.0
	 On Debian systems, the full text of the GNU General Public License
	 version 2 can be found in /usr/share/common-licenses/GPL-2.
EOF
chmod 0644 "$root/usr/share/doc/xdpfwd/copyright"

install -d "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<-EOF
	Package: xdpfwd
	Version: $version
	Architecture: $arch
	Maintainer: $maintainer
	Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
	Depends: $(depends)
	Section: net
	Priority: optional
	Description: port forwarding (DNAT) in XDP
	 xdpfwd forwards ports as a router's port-forward page does (rule name,
	 external port, internal address and port) in the kernel's XDP hook, with
	 connection tracking, source NAT, port ranges and allowlists. Rules and
	 connections are pinned in bpffs; the xdpfwd service loads the interfaces
	 of /etc/default/xdpfwd and applies /etc/xdpfwd/rules.conf at boot.
EOF
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
install -m 0755 "$here/deb/postinst" "$here/deb/prerm" "$here/deb/postrm" "$root/DEBIAN/"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

dpkg-deb --root-owner-group -Zxz --build "$root" "$out_dir/xdpfwd_${version}_${arch}.deb"
