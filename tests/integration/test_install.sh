#!/usr/bin/env bash
# meson install into a temporary DESTDIR: every file lands where it should,
# and the systemd units pass systemd-analyze verify (with ExecStart pointed
# at the installed binaries, since nothing is installed in the real root).
# Usage: test_install.sh BUILD_DIR
set -uo pipefail

build=${1:?usage: test_install.sh BUILD_DIR}
dest=$(mktemp -d /tmp/mn-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
pass=0 fail=0
check() { # check NAME CMD...
	local name=$1; shift
	if "$@" >/dev/null 2>&1; then
		pass=$((pass + 1)); echo "ok - $name"
	else
		fail=$((fail + 1)); echo "not ok - $name"
	fi
}

check "meson install into DESTDIR" meson install -C "$build" --destdir "$dest" --no-rebuild
prefix=$(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
print({o["name"]: o["value"] for o in json.load(sys.stdin)}["prefix"])')
for f in bin/machnet-nicd bin/machnet-proto bin/machnetctl bin/hello_world bin/msg_gen \
	etc/machnet/nicd.ini.example etc/machnet/tenant.ini.example \
	share/doc/machnet/nicd.md share/doc/machnet/config-nicd.md; do
	check "installs $f" test -e "$dest$prefix/$f"
done
check "binaries are executable" test -x "$dest$prefix/bin/machnet-nicd"
check "installs include/machnet.h" test -e "$dest$prefix/include/machnet.h"
pcdir=$(dirname "$(find "$dest" -name libmachnet.pc | head -n 1)")
check "installs libmachnet.pc" test -f "$pcdir/libmachnet.pc"
check "installs libmachnet.so" test -n "$(find "$dest" -name 'libmachnet.so*' | head -n 1)"
cat >"$dest/app.c" <<'APP'
#include <machnet.h>
#include <stdio.h>
int main(void)
{
	MachnetFlow_t flow = { 0 };

	printf("%d %d\n", machnet_init(), (int)sizeof(flow));
	return 0;
}
APP
# An application builds with pkg-config alone, as the README says.
check "an application builds with pkg-config --cflags --libs libmachnet" \
	env PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest" \
	sh -c 'cc -Wall -Werror -o "$0/app" "$0/app.c" $(pkg-config --cflags --libs libmachnet)' "$dest"
# Every installed program explains itself: --help prints a usage line on
# stdout and exits 0 (the examples find libmachnet.so in DESTDIR).
libdir=$(dirname "$(find "$dest" -name 'libmachnet.so*' | head -n 1)")
for b in "$dest$prefix"/bin/*; do
	check "$(basename "$b") --help: exit 0, usage on stdout" \
		env LD_LIBRARY_PATH="$libdir" sh -c 'out=$("$0" --help 2>/dev/null) && echo "$out" | grep -qi usage' "$b"
done

units=$(find "$dest" -name '*.service' -o -name '*@.service' | sort -u)
check "a systemd unit is installed" test -n "$units"
for u in $units; do
	# A template is verified as one of its instances.
	base=$(basename "$u")
	copy="$dest/verify-${base/@.service/@demo.service}"
	sed "s#^ExecStart=$prefix#ExecStart=$dest$prefix#" "$u" >"$copy"
	out=$(systemd-analyze verify "$copy" 2>&1)
	# verify has no exit status for warnings: any output about our unit fails.
	if [ $? -eq 0 ] && ! grep -q "$(basename "$copy")" <<<"$out"; then
		pass=$((pass + 1)); echo "ok - systemd-analyze verify $(basename "$u")"
	else
		fail=$((fail + 1)); echo "not ok - systemd-analyze verify $(basename "$u")"
		echo "$out" | sed 's/^/#   /'
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
