#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # single-quoted code for bash -c / sh -c; functions used via check
# shellcheck source-path=SCRIPTDIR
#
# Integration test of the network test bed (tests/netns/testbed.sh).
# Needs root; exits 77 (skip) otherwise. Prints TAP-like "ok N - ..." lines
# and ends with the line "N passed, M failed"; exits 1 if anything failed.
#
# Only addresses inside the namespaces the test bed makes are ever used.

set -u

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TB="$HERE/../netns/testbed.sh"
HP=/sys/kernel/mm/hugepages/hugepages-2048kB

pass=0 fail=0 num=0
ok()   { num=$((num + 1)); pass=$((pass + 1)); echo "ok $num - $*"; }
nok()  { num=$((num + 1)); fail=$((fail + 1)); echo "not ok $num - $*"; }
diag() { echo "# $*"; }
check() {   # DESCRIPTION CMD... : passes if CMD succeeds
    local d=$1
    shift
    if "$@"; then ok "$d"; else nok "$d"; fi
}
finish() {
    echo "1..$num"
    echo "$pass passed, $fail failed"
    if (( fail > 0 )); then exit 1; fi
    exit 0
}

if [[ $EUID -ne 0 ]]; then
    echo "# SKIP: the test bed needs root (network namespaces, veth, hugepages)"
    echo "0 passed, 0 failed"
    exit 77
fi
for t in ip ethtool; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "# SKIP: '$t' is not installed"
        echo "0 passed, 0 failed"
        exit 77
    fi
done
HAVE_PING=1
if ! command -v ping >/dev/null 2>&1; then
    HAVE_PING=0
    diag "ping is not installed (apt-get install iputils-ping): the ping checks fail"
fi

TMP=$(mktemp -d /tmp/test_testbed.XXXXXX)
SEEN=()                         # every prefix brought up by this test
START_NR=$(cat /proc/sys/vm/nr_hugepages)
START_LINKS=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort)
DECOYS=()                       # files this test made that teardown must NOT remove
MADE_DPDK_RUNDIR=0

cleanup() {
    local p
    # Safety net: anything of ours still up goes (normally nothing).
    for p in "${SEEN[@]}"; do
        if [[ -n $(remains "$p") ]]; then "$TB" down "$p" >/dev/null 2>&1 || true; fi
    done
    for p in "${DECOYS[@]}"; do rm -rf -- "$p"; done
    if (( MADE_DPDK_RUNDIR )); then rmdir /var/run/dpdk 2>/dev/null || true; fi
    rm -rf -- "$TMP"
}
trap cleanup EXIT              # tb_trap keeps it and runs it after tb_down

# shellcheck source=../netns/testbed.sh
. "$TB"

# What is left of run PREFIX: namespaces, root-namespace links, state dir.
remains() {
    local p=$1
    {
        ip netns list | awk '{print $1}' | grep "^$p"
        ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$p"
        if [[ -e $TB_STATE_DIR/$p ]]; then echo "$TB_STATE_DIR/$p"; fi
    } 2>/dev/null
    return 0
}
gone() {
    local r
    r=$(remains "$1")
    if [[ -n $r ]]; then diag "left over from $1: $(echo "$r" | tr '\n' ' ')"; return 1; fi
    return 0
}
is_prefix() { [[ ${1:-} =~ ^mnt[0-9a-f]{6}$ ]]; }
seen()      { if is_prefix "${1:-}"; then SEEN+=("$1"); fi; }

pingc() {   # NS IP
    if (( !HAVE_PING )); then return 1; fi
    ip netns exec "$1" ping -q -c 3 -W 1 -i 0.2 "$2" >"$TMP/ping.out" 2>&1 && return 0
    diag "ping $1 -> $2 failed: $(tail -n 2 "$TMP/ping.out" | tr '\n' ' ')"
    return 1
}
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
offloads_off() {    # NS IF
    local out k
    out=$(ip netns exec "$1" ethtool -k "$2" 2>&1) || return 1
    for k in tx-checksumming tcp-segmentation-offload generic-segmentation-offload; do
        if ! grep -Eq "^$k: off" <<<"$out"; then
            diag "$1/$2: $(grep -E "^$k:" <<<"$out")"
            return 1
        fi
    done
    return 0
}
ipv6_off() {        # NS IF
    local k v
    for k in all default "$2"; do
        v=$(ip netns exec "$1" cat "/proc/sys/net/ipv6/conf/$k/disable_ipv6" 2>/dev/null) || return 1
        if [[ $v != 1 ]]; then diag "$1: $k.disable_ipv6=$v"; return 1; fi
    done
    [[ -z $(ip -n "$1" -6 -o addr show 2>/dev/null) ]]
}
ipv4_of()  { ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null | awk '{print $4}'; }
link_has() { [[ $(ip -n "$1" -o link show dev "$2" 2>/dev/null) == *"$3"* ]]; }
hp_nr()    { cat "$HP/nr_hugepages"; }
hp_free()  { cat "$HP/free_hugepages"; }

# ---------------------------------------------------------------------------
diag "static checks"
check "testbed.sh passes bash -n" bash -n "$TB"
check "testbed.sh help exits 0 and shows usage" \
    bash -c '"$1" help | grep -q "tb_up N"' _ "$TB"
check "testbed.sh --help exits 0" bash -c '"$1" --help >/dev/null' _ "$TB"
"$TB" frobnicate >/dev/null 2>"$TMP/err"
check "unknown command is refused with a message" \
    grep -q "unknown command" "$TMP/err"

# ---------------------------------------------------------------------------
diag "argument and environment errors"
nstate() { find "$TB_STATE_DIR" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }
before=$(nstate)
tb_up 1 2>"$TMP/err"; rc=$?
check "tb_up 1 fails (need at least 2 hosts)" \
    test "$rc" -ne 0 -a -n "$(grep 'at least 2' "$TMP/err")"
tb_up 3 2>"$TMP/err"; rc=$?
check "tb_up 3 without --bridge fails with a message" \
    test "$rc" -ne 0 -a -n "$(grep -- '--bridge' "$TMP/err")"
tb_up 2 --dpdk-hosts 3 2>"$TMP/err"; rc=$?
check "tb_up 2 --dpdk-hosts 3 fails" test "$rc" -ne 0 -a -s "$TMP/err"
tb_up 2 --mtu 10 2>"$TMP/err"; rc=$?
check "tb_up 2 --mtu 10 fails" test "$rc" -ne 0 -a -s "$TMP/err"
check "failed argument checks made nothing" test "$(nstate)" -eq "$before" -a -z "${TB_PREFIX:-}"
tb_down >/dev/null 2>&1
check "tb_down with nothing up succeeds" test $? -eq 0
tb_down mntNOTOURS >/dev/null 2>&1
check "tb_down refuses a name that is not a test-bed prefix" test $? -ne 0
if command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid=65534 --regid=65534 --clear-groups "$TB" up 2 >/dev/null 2>"$TMP/err"; rc=$?
    check "non-root is refused with a message" \
        test "$rc" -ne 0 -a -n "$(grep -i 'root' "$TMP/err")"
fi
env PATH=/nonexistent /bin/bash "$TB" up 2 >/dev/null 2>"$TMP/err"; rc=$?
check "missing 'ip' is reported" test "$rc" -ne 0 -a -n "$(grep "'ip' not found" "$TMP/err")"

# ---------------------------------------------------------------------------
diag "two hosts, direct veth"
if tb_up 2; then ok "tb_up 2"; else nok "tb_up 2"; fi
P=${TB_PREFIX:-}
seen "$P"
check "prefix $P is mnt + 6 hex digits" is_prefix "$P"
check "interface names fit IFNAMSIZ" test "${#TB_IF_1}" -le 15 -a "${#TB_IF_2}" -le 15
check "TB_MODE is direct" test "${TB_MODE:-}" = direct
check "both namespaces exist" ns_exists "${TB_NS_1:-x}"
check "... second namespace" ns_exists "${TB_NS_2:-x}"
for i in 1 2; do
    ns_v=TB_NS_$i if_v=TB_IF_$i mac_v=TB_MAC_$i ip_v=TB_IP_$i
    ns=${!ns_v:-x} ifn=${!if_v:-x} mac=${!mac_v:-x} ip=${!ip_v:-x}
    check "host $i: $ifn is up in $ns" link_has "$ns" "$ifn" "state UP"
    check "host $i: MAC is TB_MAC_$i ($mac)" link_has "$ns" "$ifn" "link/ether $mac "
    check "host $i: mtu 1500" link_has "$ns" "$ifn" "mtu 1500 "
    check "host $i: lo is up" link_has "$ns" lo "UP"
    check "host $i: has kernel address $ip/24" test "$(ipv4_of "$ns" "$ifn")" = "$ip/24"
    check "host $i: tx checksum/TSO/GSO offloads off" offloads_off "$ns" "$ifn"
    check "host $i: IPv6 disabled (all, default, $ifn; no inet6 addresses)" ipv6_off "$ns" "$ifn"
done
check "address is in 10.77.0.0/16" bash -c '[[ $1 == 10.77.* ]]' _ "${TB_IP_1:-}"
check "ping host 1 -> host 2" pingc "${TB_NS_1:-x}" "${TB_IP_2:-x}"
check "ping host 2 -> host 1" pingc "${TB_NS_2:-x}" "${TB_IP_1:-x}"
check "the veth ends are not in the root namespace" test -z "$(ip -o link show | grep "$P")"
check "state file records the namespaces" grep -q "^ns $P-h2\$" "${TB_STATE_FILE:-/x}"
check "tb_exec runs in the host's namespace" \
    test "$(tb_exec 1 ip -o link show | grep -c "$P")" -eq 1
"$TB" list >"$TMP/list" 2>&1
check "testbed.sh list shows the run as running" grep -q "^$P .*running" "$TMP/list"
tb_down
check "tb_down unsets TB_PREFIX and TB_NS_1" test -z "${TB_PREFIX:-}${TB_NS_1:-}"
check "after tb_down nothing of $P remains" gone "$P"

# ---------------------------------------------------------------------------
diag "DPDK-owned host, MTU"
if tb_up 2 --dpdk-hosts 1 --mtu 3000; then ok "tb_up 2 --dpdk-hosts 1 --mtu 3000"; else nok "tb_up --dpdk-hosts 1"; fi
P=${TB_PREFIX:-}
seen "$P"
check "host 1 (DPDK) has no IPv4 address" test -z "$(ipv4_of "${TB_NS_1:-x}" "${TB_IF_1:-x}")"
check "TB_IP_1 is still exported" bash -c '[[ $1 == 10.77.*.1 ]]' _ "${TB_IP_1:-}"
check "TB_DPDK_1=1 TB_DPDK_2=0 TB_DPDK_HOSTS=1" test "${TB_DPDK_1:-}${TB_DPDK_2:-}${TB_DPDK_HOSTS:-}" = 101
check "host 2 (kernel) has its address" test "$(ipv4_of "${TB_NS_2:-x}" "${TB_IF_2:-x}")" = "${TB_IP_2:-}/24"
check "mtu 3000 on host 1" link_has "${TB_NS_1:-x}" "${TB_IF_1:-x}" "mtu 3000 "
check "mtu 3000 on host 2" link_has "${TB_NS_2:-x}" "${TB_IF_2:-x}" "mtu 3000 "
check "offloads off on the DPDK host's interface too" offloads_off "${TB_NS_1:-x}" "${TB_IF_1:-x}"
check "IPv6 off on the DPDK host" ipv6_off "${TB_NS_1:-x}" "${TB_IF_1:-x}"
if (( HAVE_PING )); then
    check "the kernel does not answer for the DPDK host (ping host 2 -> TB_IP_1 fails)" \
        bash -c '! ip netns exec "$1" ping -q -c 1 -W 1 "$2" >/dev/null 2>&1' _ "${TB_NS_2:-x}" "${TB_IP_1:-x}"
else
    nok "kernel does not answer for the DPDK host (no ping)"
fi
tb_down
check "after tb_down nothing of $P remains" gone "$P"

# ---------------------------------------------------------------------------
diag "three hosts through a bridge"
if tb_up 3 --bridge; then ok "tb_up 3 --bridge"; else nok "tb_up 3 --bridge"; fi
P=${TB_PREFIX:-}
seen "$P"
check "TB_MODE is bridge" test "${TB_MODE:-}" = bridge
check "switch namespace exists" ns_exists "${TB_SW_NS:-x}"
check "bridge is up in the switch namespace" link_has "${TB_SW_NS:-x}" "${TB_BRIDGE:-x}" "UP"
check "3 ports on the bridge" \
    test "$(ip -n "${TB_SW_NS:-x}" -o link show master "${TB_BRIDGE:-x}" 2>/dev/null | wc -l)" -eq 3
for i in 1 2 3; do
    ns_v=TB_NS_$i if_v=TB_IF_$i pif_v=TB_PEER_IF_$i
    check "host $i namespace exists" ns_exists "${!ns_v:-x}"
    check "host $i: offloads off (host end)" offloads_off "${!ns_v:-x}" "${!if_v:-x}"
    check "host $i: offloads off (switch end)" offloads_off "${TB_SW_NS:-x}" "${!pif_v:-x}"
done
check "IPv6 off in the switch namespace" ipv6_off "${TB_SW_NS:-x}" "${TB_BRIDGE:-x}"
for i in 1 2 3; do
    for j in 1 2 3; do
        if (( i == j )); then continue; fi
        ns_v=TB_NS_$i ip_v=TB_IP_$j
        check "ping host $i -> host $j" pingc "${!ns_v:-x}" "${!ip_v:-x}"
    done
done
tb_down
check "after tb_down nothing of $P remains (switch included)" gone "$P"

diag "two hosts through a bridge"
if tb_up 2 --bridge; then ok "tb_up 2 --bridge"; else nok "tb_up 2 --bridge"; fi
P=${TB_PREFIX:-}
seen "$P"
check "ping host 1 -> host 2 through the bridge" pingc "${TB_NS_1:-x}" "${TB_IP_2:-x}"
tb_down
check "after tb_down nothing of $P remains" gone "$P"

# ---------------------------------------------------------------------------
diag "collision and leftovers"
if tb_up 2; then ok "tb_up 2"; else nok "tb_up 2"; fi
P=${TB_PREFIX:-}
seen "$P"
( tb_up 2 --prefix "$P" ) >/dev/null 2>"$TMP/err"; rc=$?
check "a second run with the same prefix fails with 'name collision'" \
    test "$rc" -ne 0 -a -n "$(grep 'collision' "$TMP/err")"
check "... and the first run is untouched (namespace still there)" ns_exists "${TB_NS_1:-x}"
check "... and still pings" pingc "${TB_NS_1:-x}" "${TB_IP_2:-x}"
( tb_up 2 >/dev/null 2>&1 || exit 3; echo "$TB_PREFIX" >"$TMP/p0" ); rc=$?
P0=$(cat "$TMP/p0" 2>/dev/null)
seen "$P0"
check "tb_up in a subshell makes a separate run ($P0)" test "$rc" -eq 0 -a -n "$P0" -a "$P0" != "$P"
check "... torn down when the subshell exits" gone "$P0"
check "... and the parent's run is untouched" ns_exists "${TB_NS_2:-x}"
check "... the parent's EXIT trap did not run in the subshell" test -d "$TMP"
tb_up 2 >/dev/null 2>"$TMP/err"; rc=$?
check "tb_up twice in the same shell is refused" test "$rc" -ne 0 -a "${TB_PREFIX:-}" = "$P"
tb_exec 1 sleep 300 &
spid=$!
for _ in $(seq 1 50); do
    if ip netns pids "${TB_NS_1:-x}" 2>/dev/null | grep -qx "$spid"; then break; fi
    sleep 0.1
done
tb_down 2>/dev/null
wait "$spid" 2>/dev/null; rc=$?
check "tb_down stops processes left in the namespaces (exit status $rc)" test "$rc" -ge 128
check "after tb_down nothing of $P remains" gone "$P"

# ---------------------------------------------------------------------------
diag "teardown when the test body fails"
( tb_up 2 >/dev/null 2>&1 || exit 3; echo "${TB_PREFIX:-}" >"$TMP/p1"; exit 1 ); rc=$?
P=$(cat "$TMP/p1" 2>/dev/null)
seen "$P"
check "subshell with tb_up then exit 1 exits 1" test "$rc" -eq 1 -a -n "$P"
check "... and nothing of $P remains" gone "$P"

( set -euo pipefail; tb_up 2 >/dev/null 2>&1; echo "$TB_PREFIX" >"$TMP/p2"
  tb_exec 2 ip link >/dev/null; false; echo "not reached" ); rc=$?
P=$(cat "$TMP/p2" 2>/dev/null)
seen "$P"
check "under set -euo pipefail a failing command exits (rc $rc)" test "$rc" -eq 1 -a -n "$P"
check "... and nothing of $P remains" gone "$P"

( tb_up 2 >/dev/null 2>&1 || exit 3; echo "$TB_PREFIX" >"$TMP/p3"
  sleep 60 & echo $! >"$TMP/p3.sleep"; wait ) &
bg=$!
for _ in $(seq 1 100); do if [[ -s $TMP/p3.sleep ]]; then break; fi; sleep 0.1; done
kill -TERM "$bg"
wait "$bg"; rc=$?
P=$(cat "$TMP/p3" 2>/dev/null)
seen "$P"
check "SIGTERM to a shell with a test bed: exit status 143 (got $rc)" test "$rc" -eq 143
check "... and nothing of $P remains" gone "$P"
if [[ -s $TMP/p3.sleep ]]; then kill "$(cat "$TMP/p3.sleep")" 2>/dev/null; fi

# ---------------------------------------------------------------------------
diag "testbed.sh run / up / down / list"
"$TB" run 2 -- sh -c 'echo "$TB_PREFIX" > "$1"; exit 7' _ "$TMP/p4" 2>/dev/null; rc=$?
P=$(cat "$TMP/p4" 2>/dev/null)
seen "$P"
check "testbed.sh run exits with the command's status (7)" test "$rc" -eq 7
check "... and nothing of $P remains" gone "$P"
if (( HAVE_PING )); then
    "$TB" run 2 --dpdk-hosts 2 -- sh -c \
        'echo "$TB_PREFIX" > "$1"; test -z "$(ip -n "$TB_NS_2" -4 -o addr show dev "$TB_IF_2")" &&
         ! ip netns exec "$TB_NS_1" ping -q -c 1 -W 1 "$TB_IP_2" >/dev/null' _ "$TMP/p5" 2>/dev/null
    rc=$?
    seen "$(cat "$TMP/p5" 2>/dev/null)"
    check "testbed.sh run passes options and the environment to CMD" test "$rc" -eq 0
fi

out=$("$TB" up 2 2>/dev/null); rc=$?
P=$(sed -n 's/^export TB_PREFIX=//p' <<<"$out")
seen "$P"
check "testbed.sh up leaves a run up and prints export lines" test "$rc" -eq 0 -a -n "$P"
check "... the exports can be eval'd" \
    bash -c 'eval "$1"; [[ $TB_NS_1 == "$2-h1" && -n $TB_IP_2 ]]' _ "$out" "$P"
"$TB" list >"$TMP/list" 2>&1
check "... testbed.sh list shows it as manual" grep -q "^$P .*manual" "$TMP/list"
check "... testbed.sh exec PREFIX 2 runs in host 2" \
    bash -c '"$1" exec "$2" 2 ip -o link show | grep -q "$2h2"' _ "$TB" "$P"
"$TB" down "$P" 2>/dev/null
check "testbed.sh down PREFIX removes it" gone "$P"
"$TB" down "$P" 2>/dev/null
check "testbed.sh down PREFIX again is harmless (rc $?)" test $? -eq 0

# a stale run: its owner exits without tearing down
bash -c '. "$1"; tb_up 2 --no-trap >/dev/null 2>&1; echo "$TB_PREFIX" > "$2"' _ "$TB" "$TMP/p6"
P=$(cat "$TMP/p6" 2>/dev/null)
seen "$P"
check "a run whose owner exited without teardown is left (stale)" ns_exists "$P-h1"
"$TB" list >"$TMP/list" 2>&1
check "... testbed.sh list marks it stale" grep -q "^$P .*stale" "$TMP/list"
"$TB" down "$P" 2>/dev/null
check "... testbed.sh down PREFIX cleans it" gone "$P"

# ---------------------------------------------------------------------------
diag "two concurrent runs"
body='
echo "$TB_PREFIX" > "$D/conc.$K.prefix"
for _ in $(seq 1 150); do [ -s "$D/conc.$O.prefix" ] && break; sleep 0.1; done
[ -s "$D/conc.$O.prefix" ] || exit 11
other=$(cat "$D/conc.$O.prefix")
[ "$other" != "$TB_PREFIX" ] || exit 12
ip netns exec "$TB_NS_1" ping -q -c 3 -W 1 -i 0.2 "$TB_IP_2" >/dev/null || exit 13
ip netns exec "$TB_NS_2" ping -q -c 3 -W 1 -i 0.2 "$TB_IP_1" >/dev/null || exit 14
if ip -n "$TB_NS_1" -o link show | grep -q "$other"; then exit 15; fi
touch "$D/conc.$K.done"
for _ in $(seq 1 150); do [ -e "$D/conc.$O.done" ] && break; sleep 0.1; done
exit 0'
K=a O=b D=$TMP "$TB" run 2 -- sh -c "$body" 2>/dev/null &
ja=$!
K=b O=a D=$TMP "$TB" run 2 --bridge -- sh -c "$body" 2>/dev/null &
jb=$!
wait "$ja"; ra=$?
wait "$jb"; rb=$?
Pa=$(cat "$TMP/conc.a.prefix" 2>/dev/null)
Pb=$(cat "$TMP/conc.b.prefix" 2>/dev/null)
seen "$Pa"
seen "$Pb"
check "concurrent runs both succeed, both pinging while both are up (rc $ra, $rb)" \
    test "$ra" -eq 0 -a "$rb" -eq 0
check "concurrent runs get different prefixes ($Pa, $Pb)" \
    test -n "$Pa" -a -n "$Pb" -a "$Pa" != "$Pb"
check "... nothing of either remains" gone "$Pa"
check "... (second)" gone "$Pb"

# ---------------------------------------------------------------------------
diag "hugepages"
if [[ ! -w $HP/nr_hugepages ]]; then
    nok "2 MiB hugepages are not available ($HP)"
else
    nr0=$(hp_nr) free0=$(hp_free)
    tb_up 2 >/dev/null 2>&1 || nok "tb_up 2 for hugepages"
    P=${TB_PREFIX:-}
    seen "$P"
    if tb_hugepages_reserve $((free0 + 16)); then ok "tb_hugepages_reserve $((free0 + 16))"; else nok "tb_hugepages_reserve"; fi
    check "nr_hugepages raised by exactly the shortfall ($nr0 -> $(hp_nr))" test "$(hp_nr)" -eq $((nr0 + 16))
    check "at least $((free0 + 16)) free" test "$(hp_free)" -ge $((free0 + 16))
    check "hugetlbfs is mounted at /dev/hugepages" \
        bash -c 'awk '\''$2 == "/dev/hugepages" && $3 == "hugetlbfs" {f = 1} END {exit !f}'\'' /proc/mounts'
    tb_hugepages_reserve $((free0 + 16)) 2>/dev/null
    check "reserving again adds nothing" test "$(hp_nr)" -eq $((nr0 + 16))
    # what a DPDK program with --file-prefix $TB_FILE_PREFIX_1 leaves behind
    f1=/dev/hugepages/${TB_FILE_PREFIX_1:-x}map_0
    fallocate -l 2M "$f1" 2>/dev/null
    check "a leftover hugepage file of the run holds a page" test "$(hp_free)" -eq $((free0 + 15))
    decoy=/dev/hugepages/testbed-decoy-$$
    touch "$decoy" && DECOYS+=("$decoy")
    if [[ ! -d /var/run/dpdk ]]; then mkdir -p /var/run/dpdk && MADE_DPDK_RUNDIR=1; fi
    mkdir -p "/var/run/dpdk/${TB_FILE_PREFIX_1:-x}" && touch "/var/run/dpdk/${TB_FILE_PREFIX_1:-x}/config"
    ddecoy=/var/run/dpdk/testbed-decoy-$$
    mkdir -p "$ddecoy" && DECOYS+=("$ddecoy")
    tb_down 2>/dev/null
    check "tb_down returns nr_hugepages to $nr0 (now $(hp_nr))" test "$(hp_nr)" -eq "$nr0"
    check "tb_down removed the run's hugepage file" test ! -e "$f1"
    check "tb_down removed the run's DPDK runtime dir" test ! -e "/var/run/dpdk/$P-h1"
    check "tb_down left other hugepage files and runtime dirs alone" test -e "$decoy" -a -d "$ddecoy"
    check "after tb_down nothing of $P remains" gone "$P"

    "$TB" run 2 --hugepages $((free0 + 8)) -- sh -c \
        'echo "$TB_PREFIX" > "$2"; test "$(cat /proc/sys/vm/nr_hugepages)" -eq "$1"' _ $((nr0 + 8)) "$TMP/p7" 2>/dev/null
    rc=$?
    seen "$(cat "$TMP/p7" 2>/dev/null)"
    check "testbed.sh run --hugepages: raised inside (rc $rc), back to $nr0 after ($(hp_nr))" \
        test "$rc" -eq 0 -a "$(hp_nr)" -eq "$nr0"

    # Run A adds 8 pages; run B wants the same count and finds them free.
    # A's teardown must not take them from B; B's gives them back.
    outa=$("$TB" up 2 --hugepages $((free0 + 8)) 2>/dev/null)
    Pa=$(sed -n 's/^export TB_PREFIX=//p' <<<"$outa")
    seen "$Pa"
    outb=$("$TB" up 2 --hugepages $((free0 + 8)) 2>/dev/null)
    Pb=$(sed -n 's/^export TB_PREFIX=//p' <<<"$outb")
    seen "$Pb"
    check "run A added 8 pages, run B none ($(hp_nr))" test -n "$Pa" -a -n "$Pb" -a "$(hp_nr)" -eq $((nr0 + 8))
    "$TB" down "$Pa" 2>/dev/null
    check "A's teardown leaves the pages B counts on ($(hp_nr))" test "$(hp_nr)" -eq $((nr0 + 8))
    "$TB" down "$Pb" 2>/dev/null
    check "B's teardown gives them back ($(hp_nr))" test "$(hp_nr)" -eq "$nr0"
    check "... nothing of A or B remains" gone "$Pa"
    check "... (B)" gone "$Pb"
fi

# ---------------------------------------------------------------------------
diag "nothing left over"
leftover=""
for p in "${SEEN[@]}"; do leftover+=$(remains "$p"); done
check "no namespace, link or state of the ${#SEEN[@]} runs remains" test -z "$leftover"
check "root-namespace links are as before" \
    test "$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort)" = "$START_LINKS"
check "nr_hugepages is as before ($START_NR)" test "$(cat /proc/sys/vm/nr_hugepages)" -eq "$START_NR"
check "no namespaces of these runs in 'ip netns list'" \
    bash -c '! ip netns list | grep -Eq "^($1)-"' _ "$(IFS='|'; echo "${SEEN[*]}")"

finish
