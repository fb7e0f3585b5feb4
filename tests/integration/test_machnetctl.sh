#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # single-quoted code for bash -c; functions used via check/trap
# shellcheck source-path=SCRIPTDIR
#
# Integration test of `machnetctl tenant start|stop|restart|list`, `ports`,
# `arp` and `stats --watch` (issue 5).
#
# Host 1 of a two-host test bed (tests/netns/testbed.sh) runs machnet-nicd
# on a net_af_xdp vdev (--no-huge); machnetctl, run inside that namespace,
# starts and stops the protocol server (machnet-proto) of tenant "default"
# from CONF/default.ini, and `stats --json` shows it registered with nicd.
#
# Binaries: $MN_NICD, $MN_PROTO, $MN_CTL (meson passes them; the defaults
# are the build tree next to this source tree). Needs root; exits 77 (skip)
# otherwise. Prints TAP-like "ok N - ..." lines and ends with the line
# "N passed, M failed"; exits 1 if anything failed. Every wait is bounded.

set -u

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TB="$HERE/../netns/testbed.sh"
BUILD=$HERE/../../build
MN_NICD=${MN_NICD:-$BUILD/drivers/machnet-nicd}
MN_PROTO=${MN_PROTO:-$BUILD/servers/machnet-proto}
MN_CTL=${MN_CTL:-$BUILD/tools/machnetctl}

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
    echo "# SKIP: needs root (network namespaces, veth, AF_XDP)"
    echo "0 passed, 0 failed"
    exit 77
fi
for b in "$MN_NICD" "$MN_PROTO" "$MN_CTL"; do
    if [[ ! -x $b ]]; then
        echo "# SKIP: $b not built"
        echo "0 passed, 0 failed"
        exit 77
    fi
done
PY=$(command -v python3) || { echo "# SKIP: needs python3"; echo "0 passed, 0 failed"; exit 77; }

TMP=$(mktemp -d /tmp/mn_ctl.XXXXXX)
RT=$TMP/rt          # runtime dir: nicd.sock, default.sock/.pid/.log
CONF=$TMP/conf      # tenant configs
mkdir -p "$RT" "$CONF"
cleanup() {
    local p
    for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
    p=$(cat "$RT/default.pid" 2>/dev/null) && [[ -n $p ]] && kill -KILL "$p" 2>/dev/null
    rm -rf -- "$TMP"
}
trap cleanup EXIT

# shellcheck source=../netns/testbed.sh
. "$TB"
if ! tb_up 2 --dpdk-hosts 1 >/dev/null; then
    nok "tb_up 2 --dpdk-hosts 1"
    finish
fi

cat >"$RT/nicd.ini" <<EOF
[nicd]
device = net_af_xdp0,iface=$TB_IF_1
eal_args = --no-huge -m 256 --log-level=lib.eal:error
file_prefix = $TB_FILE_PREFIX_1
ip = $TB_IP_1/$TB_PREFIXLEN
runtime_dir = $RT

[tenant.default]
uid = 0
ip = $TB_IP_1
ports = 800-999, 40000-40999
EOF
cat >"$CONF/default.ini" <<EOF
[tenant]
name = default
runtime_dir = $RT
ip = $TB_IP_1
listen_ports = 800-999
ephemeral_ports = 40000-40999
EOF
# The same tenant with a key that does not exist.
sed 's/^listen_ports = .*/listen_ports = 800-999\nbogus_key = 1/' "$CONF/default.ini" >"$CONF/broken.ini"

ctl() {     # OUT CMD... : machnetctl in host 1 (bounded); stdout+stderr to OUT; its exit status
    local out=$1
    shift
    ip netns exec "$TB_NS_1" timeout -k 2 20 "$MN_CTL" --proto "$MN_PROTO" --runtime-dir "$RT" \
        --config-dir "$CONF" "$@" >"$out" 2>&1
}
show() { sed 's/^/#   /' "$1"; }
rc_is() {   # WANT OUT CMD... : passes if the exit status is WANT (shows output otherwise)
    local want=$1 out=$2 rc
    shift 2
    ctl "$out" "$@"
    rc=$?
    if [[ $rc -eq $want ]]; then return 0; fi
    diag "machnetctl $* exited $rc, wanted $want:"
    show "$out"
    return 1
}
json_get() {    # FILE EXPR : python expression on j (the parsed JSON)
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}
tenant_state() {    # FILE : the state of "default" in a `tenant list --json`
    json_get "$1" '[t["state"] for t in j["tenants"] if t["name"]=="default"][0]'
}
proto_pid() { cat "$RT/default.pid" 2>/dev/null; }
is_proto() { [[ -n ${1:-} ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q machnet-proto; }
gone() {    # PID : exits within 5 s
    for _ in $(seq 1 50); do
        is_proto "$1" || return 0
        sleep 0.1
    done
    return 1
}
connected() {   # default is registered with nicd
    ip netns exec "$TB_NS_1" timeout -k 1 5 "$MN_CTL" --runtime-dir "$RT" stats --json \
        >"$TMP/stats.json" 2>&1 &&
        [[ $(json_get "$TMP/stats.json" '[t["connected"] for t in j["tenants"] if t["name"]=="default"][0]') == True ]]
}
wait_connected() {
    for _ in $(seq 1 50); do
        connected && return 0
        sleep 0.2
    done
    show "$TMP/stats.json"
    return 1
}

# nicd in host 1.
ip netns exec "$TB_NS_1" "$MN_NICD" -c "$RT/nicd.ini" >"$TMP/nicd.log" 2>&1 &
for _ in $(seq 1 100); do [[ -S $RT/nicd.sock ]] && break; sleep 0.1; done
if [[ ! -S $RT/nicd.sock ]]; then
    nok "machnet-nicd starts"
    show "$TMP/nicd.log"
    finish
fi
ok "machnet-nicd starts"

check "--help lists the tenant commands" \
    bash -c '"$1" --help | grep -q "tenant start NAME" && "$1" --help | grep -q "tenant list"' _ "$MN_CTL"
check "tenant without a verb: usage error (2)" rc_is 2 "$TMP/o" tenant
check "tenant start with a bad name: usage error (2)" rc_is 2 "$TMP/o" tenant start 'Bad/Name'

list_has() {    # OUT REGEX : `tenant list` exits 0 and has a line matching REGEX
    rc_is 0 "$1" tenant list && grep -Eq "$2" "$1" && return 0
    show "$1"
    return 1
}
check "tenant list: default is listed, down" list_has "$TMP/list0" '^default +down'

if rc_is 0 "$TMP/start" tenant start default; then
    ok "tenant start default: exit 0"
else
    nok "tenant start default: exit 0"
fi
show "$TMP/start"
PID1=$(proto_pid)
check "pid file written, names a live machnet-proto ($PID1)" is_proto "$PID1"
check "default.sock exists" test -S "$RT/default.sock"
check "tenant list: default up with its pid" list_has "$TMP/list1" "^default +up +$PID1 "
rc_is 0 "$TMP/list1.json" tenant list --json
check "tenant list --json parses; default is up with pid and uptime" \
    test "$(json_get "$TMP/list1.json" '[(t["state"], t["pid"], t["uptime_s"] is not None) for t in j["tenants"] if t["name"]=="default"][0]')" \
    == "('up', $PID1, True)"
rc_is 0 "$TMP/list1d.json" tenant list default --json
check "tenant list default --json: one tenant" test "$(json_get "$TMP/list1d.json" 'len(j["tenants"])')" == 1
check "stats --json: tenant default connected to nicd" wait_connected
check "stats --json: the connected pid is machnet-proto's" \
    test "$(json_get "$TMP/stats.json" '[t["pid"] for t in j["tenants"] if t["name"]=="default"][0]')" == "$PID1"

check "tenant start again: exit 0" rc_is 0 "$TMP/start2" tenant start default
check "tenant start again: says it already runs" grep -q "already running" "$TMP/start2"
check "tenant start again: same process" test "$(proto_pid)" == "$PID1"

check "tenant stop default: exit 0" rc_is 0 "$TMP/stop" tenant stop default
check "tenant stop: the process is gone" gone "$PID1"
check "tenant stop: pid file removed" test ! -e "$RT/default.pid"
rc_is 0 "$TMP/list2.json" tenant list --json
check "tenant list --json: default down after stop" test "$(tenant_state "$TMP/list2.json")" == down
check "tenant stop again: exit 3 (not running)" rc_is 3 "$TMP/stop2" tenant stop default
check "tenant stop again: says not running" grep -q "not running" "$TMP/stop2"

check "tenant restart (not running): exit 0" rc_is 0 "$TMP/restart1" tenant restart default
PID2=$(proto_pid)
check "tenant restart (not running): machnet-proto runs ($PID2)" is_proto "$PID2"
check "tenant restart (running): exit 0" rc_is 0 "$TMP/restart2" tenant restart default
PID3=$(proto_pid)
check "tenant restart (running): a new process ($PID2 -> $PID3), the old one gone" \
    bash -c '[[ -n $1 && $1 != "$2" ]] && ! tr "\0" " " <"/proc/$2/cmdline" 2>/dev/null | grep -q machnet-proto' _ "$PID3" "$PID2"
rc_is 0 "$TMP/list3.json" tenant list --json
check "tenant restart: socket answers (list says up)" test "$(tenant_state "$TMP/list3.json")" == up
check "after restart: stats --json shows default connected again" wait_connected

# ports: the tenant's claims in nicd.
rc_is 0 "$TMP/ports" ports
show "$TMP/ports"
check "ports: lists tenant default on $TB_IP_1" grep -Eq "^default +$TB_IP_1 " "$TMP/ports"
rc_is 0 "$TMP/ports.json" ports --json
check "ports --json parses; every claim is default's, on $TB_IP_1, within its ranges" \
    test "$(json_get "$TMP/ports.json" 'all(c["tenant"]=="default" and c["ip"]=="'"$TB_IP_1"'" and (800<=c["port_lo"]<=c["port_hi"]<=999 or 40000<=c["port_lo"]<=c["port_hi"]<=40999) for c in j["ports"]) and len(j["ports"])>0 and not j["truncated"]')" == True
check "ports --json: the ephemeral range 40000-40999 is claimed" \
    test "$(json_get "$TMP/ports.json" 'sum(c["port_hi"]-c["port_lo"]+1 for c in j["ports"] if c["port_lo"]>=40000)')" == 1000

# arp: host 2 (kernel) pings host 1 (nicd answers ARP and echo); nicd learns host 2.
ip netns exec "$TB_NS_2" ping -c 2 -i 0.2 -W 1 "$TB_IP_1" >"$TMP/ping" 2>&1
show "$TMP/ping"
arp_has() {
    for _ in $(seq 1 20); do
        rc_is 0 "$TMP/arp.json" arp --json &&
            [[ $(json_get "$TMP/arp.json" '[n["state"] for n in j["neighbours"] if n["ip"]=="'"$TB_IP_2"'"]') == "['reachable']" ]] &&
            return 0
        sleep 0.2
    done
    show "$TMP/arp.json"
    return 1
}
check "arp --json: $TB_IP_2 reachable after traffic" arp_has
rc_is 0 "$TMP/arp" arp
show "$TMP/arp"
check "arp: a line for $TB_IP_2 with a MAC" grep -Eq "^$TB_IP_2 +([0-9a-f]{2}:){5}[0-9a-f]{2} +reachable" "$TMP/arp"

# stats --watch: one JSON object per interval until SIGINT.
watch_ok() {
    ip netns exec "$TB_NS_1" timeout -s INT 1.3 "$MN_CTL" --runtime-dir "$RT" stats --watch 0.2 --json \
        >"$TMP/watch.json" 2>&1
    "$PY" -c 'import json,sys; L=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; sys.exit(0 if len(L)>=3 and all("tenants" in o for o in L) else 1)' "$TMP/watch.json" && return 0
    show "$TMP/watch.json"
    return 1
}
check "stats --watch 0.2 --json: several objects, each parses" watch_ok
check "stats --watch with bad seconds: usage error (2)" rc_is 2 "$TMP/o" stats --watch abc

# A broken config: machnet-proto refuses it; machnetctl exits 1 and shows why.
check "tenant start broken: exit 1" rc_is 1 "$TMP/broken" tenant start broken
check "tenant start broken: the error names the key (bogus_key)" grep -q bogus_key "$TMP/broken"
show "$TMP/broken"
check "tenant start broken: no pid file left" test ! -e "$RT/broken.pid"
missing_ok() { rc_is 1 "$TMP/missing" tenant start missing && grep -q "$CONF/missing.ini" "$TMP/missing"; }
check "tenant start missing: exit 1, names the file" missing_ok

check "tenant stop default (final): exit 0" rc_is 0 "$TMP/stop3" tenant stop default
check "tenant stop (final): process gone" gone "$PID3"

finish
