#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Installation and packaging (packaging/): `make install DESTDIR=...` puts
# exactly the expected files in place, with sane modes, and keeps the /etc
# files it finds; xdpfwd(8) renders without warnings and documents every
# command, conntrack subcommand, global option, exit status, outcome and
# connection state the sources define (a new one without docs fails here);
# the systemd unit passes `systemd-analyze verify`; the bash completion
# parses and completes; `make deb` builds a package of the same files with
# the version of include/xdpfwd.h and the Depends of the libraries the binary
# links.
#
# No namespaces: nothing runs xdpfwd. The completion's rule names come from a
# stub that only prints JSON. The build dir is XDPFWD_BIN's (make install and
# make deb may leave their outputs there, as a build does).
#
#   tests/e2e/test_install.sh [CASE-FILTER]    (after make)

. "$(dirname "$0")/../lib.sh"

TOPO_BUILDER=true		# no topology: these cases need no namespaces
BUILD_DIR=$(cd "$(dirname "$XDPFWD_BIN")" 2>/dev/null && pwd)
VERSION=$(sed -n 's/^#define XDPFWD_VERSION "\(.*\)"/\1/p' "$ROOT_DIR/include/xdpfwd.h")
ARCH=$(dpkg --print-architecture)
DEST="$WORK_DIR/dest"		# a `make install DESTDIR` tree (case install)
PREFIX_DIR=/usr/local		# the Makefile's default PREFIX

if [ ! -x "$XDPFWD_BIN" ] || [ -z "$BUILD_DIR" ]; then
	echo "missing $XDPFWD_BIN: run make first" >&2
	echo "e2e-install: 0 passed, 1 failed"
	exit 1
fi

# mk ARGS...: make in the tree, into the build dir under test, with none of
# the caller's install variables or make flags leaking in.
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u DESTDIR -u PREFIX -u SBINDIR \
		-u MANDIR -u BASHCOMPDIR -u UNITDIR -u SYSCONFDIR \
		make -s -C "$ROOT_DIR" BUILD="$BUILD_DIR" "$@"
}

# ---------------------------------------------------------------- the sources

# c_table FILE ARRAY: the names of the command table ARRAY[] in FILE.
c_table() {
	sed -n "/ $2\[\] = {/,/^};/p" "$1" | sed -n 's/^[[:space:]]*{ "\([a-z-]*\)",.*/\1/p'
}

# c_names MACRO: the strings of the multi-line #define MACRO in xdpfwd.h.
c_names() {
	sed -n "/#define $1 /,/}/p" "$ROOT_DIR/include/xdpfwd.h" | grep -o '"[a-z_]*"' | tr -d '"'
}

COMMANDS=$(c_table "$ROOT_DIR/user/main.c" cmds)
EXACT_COMMANDS=$(sed -n '/ cmds\[\] = {/,/^};/s/^[[:space:]]*{ "\([a-z-]*\)",.*, true },.*/\1/p' "$ROOT_DIR/user/main.c")
CT_COMMANDS=$(c_table "$ROOT_DIR/user/conntrack.c" ct_cmds)
GLOBAL_OPTS=$(grep -o 'strcmp(argv\[i\], "-[^"]*")' "$ROOT_DIR/user/main.c" | sed 's/.*"\(.*\)")/\1/')
EXIT_CODES=$(sed -n 's/^[[:space:]]*EXIT_[A-Z]* = \([0-9]*\),.*/\1/p' "$ROOT_DIR/user/xdpfwd_cli.h")
REASONS=$(c_names XDPFWD_REASON_NAMES)
CT_STATES=$(c_names XDPFWD_CT_STATE_NAMES | grep -vx none)

# sources_parsed: the lists above are not empty (else every check over them
# would pass on nothing).
sources_parsed() {
	local what ok=0
	for what in COMMANDS EXACT_COMMANDS CT_COMMANDS GLOBAL_OPTS EXIT_CODES REASONS CT_STATES VERSION; do
		[ -n "${!what}" ] && continue
		err "found no $what in the sources: the test's parsing is out of date"
		ok=1
	done
	return $ok
}

# ---------------------------------------------------------------- install

# expected_files PREFIX: the files `make install` puts under DESTDIR, with
# their modes.
expected_files() {
	cat <<-EOF
	755 $1/sbin/xdpfwd
	644 $1/share/man/man8/xdpfwd.8
	644 $1/share/bash-completion/completions/xdpfwd
	644 $1/lib/systemd/system/xdpfwd.service
	644 /etc/xdpfwd/rules.conf
	644 /etc/default/xdpfwd
	EOF
}

# installed_files DIR: each file under DIR as "MODE /PATH", and each entry
# that is neither a file nor a directory, so that a symlink shows too.
installed_files() {
	(cd "$1" && find . ! -type d -printf '%m /%P\n' | sort -k2)
}

install_into() {
	rm -rf "$DEST"
	check "make install DESTDIR=$DEST succeeds" mk install DESTDIR="$DEST"
}

case_install() {
	install_into || return 1
	assert_eq "files make install put in DESTDIR (mode path)" \
		"$(installed_files "$DEST")" "$(expected_files "$PREFIX_DIR" | sort -k2)"
	check "the installed binary is the build's" cmp "$XDPFWD_BIN" "$DEST$PREFIX_DIR/sbin/xdpfwd"
	check "the installed completion is packaging's" \
		cmp "$ROOT_DIR/packaging/xdpfwd.bash-completion" "$DEST$PREFIX_DIR/share/bash-completion/completions/xdpfwd"
	check_fails "no @PLACEHOLDER@ is left in the installed unit and page" \
		grep -l '@[A-Z]*@' "$DEST$PREFIX_DIR/lib/systemd/system/xdpfwd.service" \
		"$DEST$PREFIX_DIR/share/man/man8/xdpfwd.8"
	check "the unit runs the installed binary ($PREFIX_DIR/sbin/xdpfwd)" \
		grep -q "^ExecStart=$PREFIX_DIR/sbin/xdpfwd load " "$DEST$PREFIX_DIR/lib/systemd/system/xdpfwd.service"

	# The admin's files under /etc survive a second install; the rest is renewed.
	echo "tcp 8080 192.0.2.10:80 --name mine" > "$DEST/etc/xdpfwd/rules.conf"
	echo 'XDPFWD_IFACES="eth9"' > "$DEST/etc/default/xdpfwd"
	echo garbage > "$DEST$PREFIX_DIR/share/man/man8/xdpfwd.8"
	check "make install over an installed tree succeeds" mk install DESTDIR="$DEST" || return 1
	assert_eq "rules.conf after a second install" "$(cat "$DEST/etc/xdpfwd/rules.conf")" \
		"tcp 8080 192.0.2.10:80 --name mine"
	assert_eq "/etc/default/xdpfwd after a second install" "$(cat "$DEST/etc/default/xdpfwd")" \
		'XDPFWD_IFACES="eth9"'
	check "a second install renews the man page" grep -q '^\.TH XDPFWD 8' "$DEST$PREFIX_DIR/share/man/man8/xdpfwd.8"

	check "make uninstall DESTDIR=$DEST succeeds" mk uninstall DESTDIR="$DEST" || return 1
	assert_eq "files left after make uninstall" "$(installed_files "$DEST")" \
		"$(expected_files "$PREFIX_DIR" | grep ' /etc/' | sort -k2)"
}

# An install into a DESTDIR needs no root: as nobody, into nobody's folder
# (the build is taken as it is: -o keeps make from rebuilding it).
case_install_as_user() {
	local dest="$WORK_DIR/user-dest"
	if ! runuser -u nobody -- test -r "$ROOT_DIR/Makefile" -a -r "$XDPFWD_BIN"; then
		info "nobody cannot read $ROOT_DIR or $XDPFWD_BIN: skipped"
		return $SKIP
	fi
	mkdir -p "$dest" && chown nobody "$dest" && chmod 0711 "$WORK_DIR" || return 1
	check "make install DESTDIR=... as nobody succeeds" \
		runuser -u nobody -- env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u PREFIX \
		make -s -C "$ROOT_DIR" -o "$BUILD_DIR/xdpfwd" BUILD="$BUILD_DIR" install DESTDIR="$dest"
	assert_eq "files nobody's make install put in DESTDIR" "$(installed_files "$dest")" \
		"$(expected_files "$PREFIX_DIR" | sort -k2)"
}

# ---------------------------------------------------------------- man page

# render PAGE OUT: man's text of PAGE in OUT, its warnings in OUT.err.
render() {
	LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$1" >"$2" 2>"$2.err"
}

# section FILE NAME: the lines of the rendered section NAME.
section() {
	awk -v s="$2" '/^[A-Z]/ { on = ($0 == s); next } on' "$1"
}

# man_has DESC FILE SECTION REGEX: a line of SECTION matches REGEX.
man_has() {
	section "$2" "$3" | grep -qE -e "$4" && return 0
	err "$1 (no line of section $3 matches /$4/)"
}

case_man() {
	local page="$DEST$PREFIX_DIR/share/man/man8/xdpfwd.8" txt="$WORK_DIR/man.txt" w
	sources_parsed || return 1
	install_into || return 1
	check "man -l renders xdpfwd(8)" render "$page" "$txt" || return 1
	assert_eq "warnings of man --warnings -l xdpfwd(8)" "$(cat "$txt.err")" ""
	check "groff -man -ww finds nothing to warn about" \
		sh -c "groff -man -ww -z '$page' 2>&1 | { ! grep .; }"
	check "the page's footer names version $VERSION" grep -q "^xdpfwd $VERSION  " "$txt"
	for w in $COMMANDS; do
		man_has "COMMANDS documents '$w' (user/main.c's command table)" "$txt" COMMANDS "^ {7}$w( |$)"
	done
	for w in $CT_COMMANDS; do
		man_has "COMMANDS documents 'conntrack $w' (user/conntrack.c)" "$txt" COMMANDS "^ {7}conntrack .*\\b$w\\b"
	done
	for w in $GLOBAL_OPTS; do
		man_has "OPTIONS documents '$w' (user/main.c)" "$txt" OPTIONS "^ {7}(.*, )?$w(,| |$)"
	done
	for w in $EXIT_CODES; do
		man_has "EXIT STATUS documents $w (user/xdpfwd_cli.h)" "$txt" "EXIT STATUS" "^ {7}$w( |$)"
	done
	for w in $REASONS; do
		man_has "OUTCOMES documents '$w' (XDPFWD_REASON_NAMES)" "$txt" OUTCOMES "\\b$w\\b"
	done
	for w in $CT_STATES; do
		man_has "CONNECTION TRACKING names state '$w' (XDPFWD_CT_STATE_NAMES)" "$txt" \
			"CONNECTION TRACKING" "\\b$w\\b"
	done
	for w in /sys/fs/bpf/xdpfwd /etc/xdpfwd/rules.conf /etc/default/xdpfwd; do
		man_has "FILES names $w" "$txt" FILES "^ {7}$w$"
	done
	man_has "the netfilter caveat is stated" "$txt" "NETFILTER AND SECURITY" "iptables and nftables rules do not filter"
}

# ---------------------------------------------------------------- systemd unit

# unit_in_dest: the installed unit with its paths moved into DESTDIR, so that
# verify finds the binary and the environment file there.
unit_in_dest() {
	sed -e "s|$PREFIX_DIR/sbin/xdpfwd|$DEST$PREFIX_DIR/sbin/xdpfwd|g" \
		-e "s|/etc/default/xdpfwd|$DEST/etc/default/xdpfwd|g" \
		"$DEST$PREFIX_DIR/lib/systemd/system/xdpfwd.service" > "$WORK_DIR/xdpfwd.service"
}

# unit_condition IFACES: the exit status of the unit's ExecCondition script
# with XDPFWD_IFACES set to IFACES ($$ is systemd's escape of $).
unit_condition() {
	local script
	script=$(sed -n "s/^ExecCondition=\/bin\/sh -c '\(.*\)'$/\1/p" "$WORK_DIR/xdpfwd.service" | sed 's/\$\$/$/g')
	[ -n "$script" ] || { echo 'no ExecCondition=/bin/sh -c ...'; return; }
	env XDPFWD_IFACES="$1" sh -c "$script" >/dev/null
	echo $?
}

# unit_key KEY: the values of KEY in the unit, one a line.
unit_key() {
	sed -n "s/^$1=//p" "$WORK_DIR/xdpfwd.service"
}

case_unit() {
	local out addrs bin="$DEST$PREFIX_DIR/sbin/xdpfwd"
	install_into || return 1
	unit_in_dest || return 1
	# Documentation=man:xdpfwd(8) is checked against the installed page.
	out=$(MANPATH="$DEST$PREFIX_DIR/share/man" systemd-analyze verify "$WORK_DIR/xdpfwd.service" 2>&1)
	assert_eq "systemd-analyze verify exit status" "$?" 0
	# verify exits 0 on unknown keys and bad values: it only says so.
	assert_eq "what systemd-analyze verify says of xdpfwd.service" "$(grep xdpfwd <<<"$out")" ""
	assert_eq "Type" "$(unit_key Type)" oneshot
	assert_eq "RemainAfterExit" "$(unit_key RemainAfterExit)" yes
	assert_eq "After" "$(unit_key After)" network-online.target
	assert_eq "Wants" "$(unit_key Wants)" network-online.target
	assert_eq "EnvironmentFile (optional)" "$(unit_key EnvironmentFile)" "-$DEST/etc/default/xdpfwd"
	assert_eq "ExecStart: load the interfaces, then apply the rules file" "$(unit_key ExecStart)" \
		"$bin load \$XDPFWD_IFACES \$XDPFWD_OPTS
$bin apply /etc/xdpfwd/rules.conf"
	assert_eq "ExecReload: the same again" "$(unit_key ExecReload)" "$(unit_key ExecStart)"
	assert_eq "ExecStop" "$(unit_key ExecStop)" "$bin unload --all"
	assert_eq "WantedBy" "$(unit_key WantedBy)" multi-user.target
	assert_eq "ExecCondition with no XDPFWD_IFACES (1: skip the unit)" "$(unit_condition '')" 1
	assert_eq "ExecCondition with XDPFWD_IFACES=\"eth0 eth1\" (0: go on)" "$(unit_condition 'eth0 eth1')" 0
	# The shipped default leaves the unit skipped until the admin names interfaces.
	assert_eq "XDPFWD_IFACES of the installed /etc/default/xdpfwd" \
		"$(sh -c ". '$DEST/etc/default/xdpfwd'; echo \"\$XDPFWD_IFACES\"")" ""
	check "the rules.conf example has no active rule" \
		sh -c "! grep -qv -e '^#' -e '^[[:space:]]*\$' '$DEST/etc/xdpfwd/rules.conf'"
	addrs=$(grep -oE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+' "$DEST/etc/xdpfwd/rules.conf")
	[ -n "$addrs" ] || err "the rules.conf example shows no address"
	assert_eq "rules.conf example addresses outside TEST-NET" \
		"$(grep -vE '^(192\.0\.2|198\.51\.100|203\.0\.113)\.' <<<"$addrs")" ""
}

# ---------------------------------------------------------------- completion

STUB_PIN="$WORK_DIR/pins"	# a folder the completion takes for a state

# complete_words WORD...: what the completion offers for the last WORD, one a
# line, sorted. The program word is a stub that prints two rules for
# `-j --pin-dir STUB_PIN list` and records its arguments.
complete_words() {
	local comp="$ROOT_DIR/packaging/xdpfwd.bash-completion"
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _xdpfwd
		printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$WORK_DIR/stub/xdpfwd" "$@" 2>/dev/null | sort
}

make_stub() {
	mkdir -p "$WORK_DIR/stub" "$STUB_PIN" || return 1
	cat > "$WORK_DIR/stub/xdpfwd" <<-EOF
	#!/bin/sh
	echo "\$*" >> "$WORK_DIR/stub/calls"
	[ "\$*" = "-j --pin-dir $STUB_PIN list" ] &&
		echo '[{"name":"web","proto":"tcp"},{"name":"ssh-in","proto":"tcp"}]'
	EOF
	chmod 755 "$WORK_DIR/stub/xdpfwd"
}

# offers DESC WANT WORD...: the completion of WORD... includes each of WANT.
offers() {
	local desc=$1 want=$2 got w missing=; shift 2
	got=$(complete_words "$@")
	for w in $want; do
		grep -qxF -e "$w" <<<"$got" || missing="$missing $w"
	done
	[ -z "$missing" ] && return 0
	err "$desc: 'xdpfwd $*' does not offer$missing (offers: $(paste -sd' ' <<<"$got"))"
}

case_completion() {
	local comp="$ROOT_DIR/packaging/xdpfwd.bash-completion" ifaces
	sources_parsed || return 1
	make_stub || return 1
	check "the completion parses (bash -n)" bash -n "$comp"
	check "sourcing the completion registers it for xdpfwd" \
		bash -c ". '$comp'; complete -p xdpfwd | grep -q -- '-F _xdpfwd'"
	offers "every command of user/main.c's table" "$COMMANDS" ""
	assert_eq "completion of 'xdpfwd co'" "$(complete_words co)" conntrack
	assert_eq "completion of 'xdpfwd st'" "$(complete_words st | paste -sd' ')" "stats status"
	offers "every global option of user/main.c" "$GLOBAL_OPTS" -
	offers "every conntrack subcommand of user/conntrack.c" "$CT_COMMANDS" conntrack ""
	offers "every connection state after an abbreviated 'conntrack timeout'" "$CT_STATES" con ti ""
	ifaces=$(find /sys/class/net -mindepth 1 -maxdepth 1 -printf '%f\n' | grep -vx lo)
	assert_eq "completion of 'xdpfwd load ' (interfaces but lo)" "$(complete_words load "")" "$(sort <<<"$ifaces")"
	offers "unload's interfaces" "$ifaces" unload ""
	# Commands xdpfwd takes only spelled out: an abbreviation is no command.
	for w in $EXACT_COMMANDS; do
		assert_eq "completion after 'xdpfwd ${w%?}' ($w is never abbreviated)" \
			"$(complete_words "${w%?}" "")" ""
	done
	assert_eq "completion of 'xdpfwd lo ' (lo is no command: load is never abbreviated)" \
		"$(complete_words lo "")" ""
	offers "load's options" "--mode --max-flows" load eth0 --
	assert_eq "completion of --mode" "$(complete_words load eth0 --mode "" | paste -sd' ')" "generic native"
	assert_eq "completion of 'xdpfwd add '" "$(complete_words add "" | paste -sd' ')" "tcp udp"
	offers "add's options" "--name --snat --allow" add tcp 8080 192.0.2.10:80 --
	offers "apply's '-' (standard input)" "-" apply ""
	offers "stats' --watch" "--watch" stats --
	offers "exporter's --listen" "--listen" exporter --
	# Rule names from the state named by --pin-dir, not for a new name.
	assert_eq "rule names after 'del --name'" \
		"$(complete_words --pin-dir "$STUB_PIN" del --name "" | paste -sd' ')" "ssh-in web"
	assert_eq "the completion asked the stub for the rules of --pin-dir" \
		"$(cat "$WORK_DIR/stub/calls" 2>/dev/null)" "-j --pin-dir $STUB_PIN list"
	assert_eq "rule names after 'conntrack flush --name w'" \
		"$(complete_words --pin-dir "$STUB_PIN" conntrack flush --name w)" web
	assert_eq "rule names after 'add ... --name' (a new name)" \
		"$(complete_words --pin-dir "$STUB_PIN" add tcp 80 192.0.2.1 --name "")" ""
	assert_eq "rule names with no state in the pin dir" \
		"$(complete_words --pin-dir "$WORK_DIR/no-such-state" check --name "")" ""
}

# ---------------------------------------------------------------- deb

# deb_field FIELD: a control field of the built package.
deb_field() {
	dpkg-deb -f "$BUILD_DIR/xdpfwd_${VERSION}_$ARCH.deb" "$1"
}

case_deb() {
	local deb="$BUILD_DIR/xdpfwd_${VERSION}_$ARCH.deb" x="$WORK_DIR/deb-x" so pkgs depends
	rm -f "$deb"
	check "make deb succeeds" mk deb || return 1
	[ -f "$deb" ] || { err "make deb made no $deb"; return 1; }
	assert_eq "files of the package (dpkg-deb -c: mode owner path)" \
		"$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort -k3)" \
		"$(sort -k3 <<-EOF
		-rw-r--r-- root/root ./etc/default/xdpfwd
		-rw-r--r-- root/root ./etc/xdpfwd/rules.conf
		-rw-r--r-- root/root ./lib/systemd/system/xdpfwd.service
		-rwxr-xr-x root/root ./usr/sbin/xdpfwd
		-rw-r--r-- root/root ./usr/share/bash-completion/completions/xdpfwd
		-rw-r--r-- root/root ./usr/share/doc/xdpfwd/copyright
		-rw-r--r-- root/root ./usr/share/man/man8/xdpfwd.8.gz
		EOF
		)"
	assert_eq "Package" "$(deb_field Package)" xdpfwd
	assert_eq "Version (XDPFWD_VERSION)" "$(deb_field Version)" "$VERSION"
	assert_eq "Architecture" "$(deb_field Architecture)" "$ARCH"
	assert_eq "Section" "$(deb_field Section)" net
	[ -n "$(deb_field Maintainer)" ] || err "the package has no Maintainer"
	[ -n "$(deb_field Description)" ] || err "the package has no Description"
	assert_eq "conffiles" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" \
		"/etc/default/xdpfwd
/etc/xdpfwd/rules.conf"

	# Each library the packaged binary links comes from a package in Depends.
	mkdir -p "$x" && dpkg-deb -x "$deb" "$x" || return 1
	depends=$(deb_field Depends)
	for so in $(readelf -d "$x/usr/sbin/xdpfwd" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		pkgs=$(dpkg -S "*/$so" 2>/dev/null | cut -d: -f1 | sort -u)
		[ -n "$pkgs" ] || { err "no installed package ships $so"; continue; }
		grep -qE "(^|, )($(paste -sd'|' <<<"$pkgs"))( |,|$)" <<<"$depends" ||
			err "Depends ($depends) names no package of $so ($(paste -sd' ' <<<"$pkgs"))"
	done
	check "the packaged unit runs /usr/sbin/xdpfwd" \
		grep -q '^ExecStart=/usr/sbin/xdpfwd load ' "$x/lib/systemd/system/xdpfwd.service"
	check "the packaged man page renders" render "$x/usr/share/man/man8/xdpfwd.8.gz" "$WORK_DIR/deb-man.txt"
	assert_eq "warnings of the packaged man page" "$(cat "$WORK_DIR/deb-man.txt.err")" ""
}

# ---------------------------------------------------------------- main

CASES="install install_as_user man unit completion deb"
FILTER=${1:-}
for c in $CASES; do
	[ -n "$FILTER" ] && [[ "$c" != *"$FILTER"* ]] && continue
	run_case "$c" "case_$c"
done
finish e2e-install
