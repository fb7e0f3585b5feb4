#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # single-quoted code for bash -c; functions used via check
#
# Integration test of machnetctl's systemd path (issue 5): `tenant start`
# asks systemd when machnet-proto@NAME is enabled or active, `stop` and
# `restart` when it is active, and a failing systemctl is reported.
#
# CI has no systemd running, so each case runs in a private mount namespace
# (unshare -m) where a tmpfs on /run holds /run/systemd/system (how
# machnetctl tells that systemd runs) and a stand-in `systemctl` on PATH
# records its arguments and keeps unit state in files. What is tested is
# machnetctl's side of the contract: which systemctl commands it runs, what
# it prints, its exit status. The units themselves are checked with
# systemd-analyze verify in test_install.sh.
#
# $MN_CTL: machnetctl (meson passes it). Needs root (mount namespaces);
# exits 77 (skip) otherwise. Prints "ok N - ..." lines and "N passed, M
# failed"; exits 1 if anything failed.

set -u

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
MN_CTL=${MN_CTL:-$HERE/../../build/tools/machnetctl}

pass=0 fail=0 num=0
ok()   { num=$((num + 1)); pass=$((pass + 1)); echo "ok $num - $*"; }
nok()  { num=$((num + 1)); fail=$((fail + 1)); echo "not ok $num - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

if [[ $EUID -ne 0 ]] || ! command -v unshare >/dev/null; then
    echo "# SKIP: needs root and unshare (mount namespaces)"
    echo "0 passed, 0 failed"
    exit 77
fi
if [[ ! -x $MN_CTL ]]; then
    echo "# SKIP: $MN_CTL not built"
    echo "0 passed, 0 failed"
    exit 77
fi

TMP=$(mktemp -d /tmp/mn_ctl_sd.XXXXXX)
trap 'rm -rf -- "$TMP"' EXIT
mkdir -p "$TMP/bin" "$TMP/units" "$TMP/rt" "$TMP/conf"

# The stand-in: every call appended to calls; state files units/{active,enabled}-UNIT;
# FAKE_FAIL=1 makes start/stop/restart fail like a unit that does not start.
cat >"$TMP/bin/systemctl" <<EOF
#!/usr/bin/env bash
echo "\$*" >>"$TMP/calls"
verb=\$1; shift
[[ \${1:-} == --quiet ]] && shift
unit=\$1
case \$verb in
    is-active)  [[ -e $TMP/units/active-\$unit ]] ;;
    is-enabled) [[ -e $TMP/units/enabled-\$unit ]] ;;
    start|restart)
        [[ \${FAKE_FAIL:-0} == 1 ]] && { echo "Job for \$unit failed." >&2; exit 1; }
        touch "$TMP/units/active-\$unit" ;;
    stop) rm -f "$TMP/units/active-\$unit" ;;
    *) exit 2 ;;
esac
EOF
chmod +x "$TMP/bin/systemctl"

# ctl SYSTEMD OUT ARGS... : machnetctl in a mount namespace; SYSTEMD=1 makes
# /run/systemd/system exist there. Returns machnetctl's status.
ctl() {
    local sd=$1 out=$2
    shift 2
    : >"$TMP/calls"
    unshare -m --propagation private bash -c '
        mount -t tmpfs tmpfs /run || exit 90
        if [[ $1 == 1 ]]; then mkdir -p /run/systemd/system; fi
        shift
        PATH=$0:$PATH timeout -k 2 20 "$@"
    ' "$TMP/bin" "$sd" "$MN_CTL" --runtime-dir "$TMP/rt" --config-dir "$TMP/conf" "$@" \
        >"$out" 2>&1
}
called() { grep -qx -- "$1" "$TMP/calls"; }          # LINE : systemctl got exactly these args
not_called() { ! grep -q -- "$1" "$TMP/calls"; }     # WORD
says() { grep -q -- "$2" "$1" || { sed 's/^/#   /' "$1"; return 1; }; }    # OUT TEXT
U=machnet-proto@t1

# 1. Enabled, not active: start goes through systemctl.
touch "$TMP/units/enabled-$U"
ctl 1 "$TMP/o1" tenant start t1
rc=$?
check "enabled unit: tenant start exits 0 (rc $rc)" test "$rc" = 0
check "enabled unit: systemctl start $U" called "start $U"
check "enabled unit: says it is managed by systemd" says "$TMP/o1" "managed by systemd: systemctl start $U"

# 2. Active: start does nothing more.
ctl 1 "$TMP/o2" tenant start t1
rc=$?
check "active unit: tenant start exits 0, already running (rc $rc)" \
    test "$rc" = 0 -a "$(grep -c 'already running under systemd' "$TMP/o2")" = 1
check "active unit: no second systemctl start" not_called "^start"

# 3. Active: restart and stop go through systemctl.
ctl 1 "$TMP/o3" tenant restart t1
rc=$?
check "active unit: tenant restart -> systemctl restart $U (rc $rc)" \
    bash -c '[[ $1 == 0 ]] && grep -qx "restart $2" "$3"' _ "$rc" "$U" "$TMP/calls"
ctl 1 "$TMP/o4" tenant stop t1
rc=$?
check "active unit: tenant stop -> systemctl stop $U (rc $rc)" \
    bash -c '[[ $1 == 0 ]] && grep -qx "stop $2" "$3"' _ "$rc" "$U" "$TMP/calls"
check "after stop: the unit is inactive" test ! -e "$TMP/units/active-$U"

# 3b. Enabled, not active, but a server started by hand runs (its pid file
# names a machnet-proto): start leaves systemd alone, or the unit's server
# would fail on the taken socket and restart in a loop.
rm -f "$TMP/units/active-$U"
bash -c 'exec -a machnet-proto sleep 30' &
fake=$!
echo "$fake" >"$TMP/rt/t1.pid"
ctl 1 "$TMP/o4b" tenant start t1
rc=$?
check "enabled unit, server running by hand: exit 0, already running, no systemctl start (rc $rc)" \
    bash -c '[[ $1 == 0 ]] && grep -q "already running (pid $2)" "$3" && ! grep -q "^start" "$4"' \
    _ "$rc" "$fake" "$TMP/o4b" "$TMP/calls"
kill "$fake" 2>/dev/null
wait "$fake" 2>/dev/null
rm -f "$TMP/rt/t1.pid"

# 4. systemctl fails: exit 1, the journal is named.
FAKE_FAIL=1 ctl 1 "$TMP/o5" tenant start t1
rc=$?
check "failing unit: tenant start exits 1 (rc $rc)" test "$rc" = 1
check "failing unit: the error names the unit and journalctl" \
    says "$TMP/o5" "systemctl start $U failed (status 1); see journalctl -u $U"

# 5. Not enabled, not active: machnetctl spawns the server itself (here the
# config is missing, so it fails naming the file) and never calls start.
ctl 1 "$TMP/o6" tenant start t2
rc=$?
check "no unit: tenant start spawns itself (missing config: exit 1, names it) (rc $rc)" \
    bash -c '[[ $1 == 1 ]] && grep -q "$2" "$3"' _ "$rc" "$TMP/conf/t2.ini" "$TMP/o6"
check "no unit: systemctl asked only is-active/is-enabled" not_called "^start"

# 6. No systemd at all: systemctl is never run.
ctl 0 "$TMP/o7" tenant start t1
rc=$?
check "no systemd: spawns itself (missing config: exit 1, names it), systemctl never called (rc $rc)" \
    bash -c '[[ $1 == 1 && ! -s $2 ]] && grep -q "$3" "$4"' _ "$rc" "$TMP/calls" "$TMP/conf/t1.ini" "$TMP/o7"

echo "1..$num"
echo "$pass passed, $fail failed"
(( fail == 0 ))
