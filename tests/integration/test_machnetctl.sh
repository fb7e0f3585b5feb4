#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # single-quoted code for bash -c; functions used via check/trap
# shellcheck source-path=SCRIPTDIR
#
# Integration test of `machnetctl tenant start|stop|restart|list`, `ports`,
# `arp` and `stats --watch` (issue 5), and `ping` (ICMP echo sent by nicd
# through its port: replies, --json, an unused address, a host that ignores
# echo, 40 at once against the 32-slot table, an unasked reply, refusals,
# usage errors, nicd's counters at exit, nicd down).
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

tb_machnet_configs 1 "$RT" "$CONF/default.ini"
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
NICD_PID=$!
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

# ping: nicd sends ICMP echo requests through its port (host 1 has no kernel
# address: nothing else there could answer) to host 2's kernel, whose own
# ICMP counters show what crossed the wire.
icmp_in_echos() {   # host 2's kernel: echo requests received
    ip netns exec "$TB_NS_2" "$PY" -c 'import sys
L = [l.split() for l in open("/proc/net/snmp") if l.startswith("Icmp:")]
print(dict(zip(L[0][1:], L[1][1:]))["InEchos"])'
}
ping_lines_ok() {   # OUT COUNT : a line per reply, seq 1..COUNT, and the summary
    local s
    for s in $(seq 1 "$2"); do
        grep -Eq "^[0-9]+ bytes from $TB_IP_2: seq=$s ttl=[0-9]+ time=[0-9]+\.[0-9]{3} ms$" "$1" || { show "$1"; return 1; }
    done
    grep -Eq "^$2 sent, $2 received, 0% loss, rtt min/avg/max = [0-9.]+/[0-9.]+/[0-9.]+ ms$" "$1" && return 0
    show "$1"
    return 1
}
echos0=$(icmp_in_echos)
check "ping -c 3 $TB_IP_2: exit 0" rc_is 0 "$TMP/ping3" ping -c 3 -i 100 "$TB_IP_2"
show "$TMP/ping3"
check "ping -c 3: a line per reply (seq 1..3) and the summary" ping_lines_ok "$TMP/ping3" 3
echos1=$(icmp_in_echos)
check "ping -c 3: host 2's kernel received 3 echo requests ($echos0 -> $echos1)" \
    test "$((echos1 - echos0))" -eq 3
check "ping --json -c 2 -s 200: exit 0" rc_is 0 "$TMP/ping.json" ping --json -c 2 -i 50 -s 200 "$TB_IP_2"
check "ping --json parses: 2 replies of 208 ICMP bytes, 0 < rtt < 100 ms, min <= avg <= max" \
    test "$(json_get "$TMP/ping.json" 'j["sent"]==2 and j["received"]==2 and j["loss_pct"]==0 and j["error"] is None and [r["seq"] for r in j["results"]]==[1,2] and all(r["status"]=="reply" and r["bytes"]==208 and 0<r["time_ms"]<100 for r in j["results"]) and j["rtt_ms"]["min"]<=j["rtt_ms"]["avg"]<=j["rtt_ms"]["max"]')" == True
check "ping -s 1472 (IPv4 1500 = the MTU): exit 0" rc_is 0 "$TMP/ping_big" ping -c 1 -s 1472 "$TB_IP_2"

UNUSED=${TB_IP_2%.*}.250    # in the test bed's subnet, no host: no ARP answer
unused_ok() {
    rc_is 1 "$TMP/ping_unused" ping -c 2 -i 100 "$UNUSED" &&
        grep -q "seq=1 unreachable: no ARP answer" "$TMP/ping_unused" &&
        grep -q "no reply from $UNUSED" "$TMP/ping_unused" &&
        grep -q "^2 sent, 0 received, 100% loss" "$TMP/ping_unused" && return 0
    show "$TMP/ping_unused"
    return 1
}
check "ping $UNUSED (unused): exit 1, says no ARP answer, 100% loss" unused_ok

# Host 2 ignores echo requests: ARP works, the reply never comes.
ip netns exec "$TB_NS_2" sysctl -qw net.ipv4.icmp_echo_ignore_all=1
timeout_ok() {
    rc_is 1 "$TMP/ping_to" ping -c 1 -W 300 "$TB_IP_2" &&
        grep -q "seq=1 no reply within 300 ms" "$TMP/ping_to" && return 0
    show "$TMP/ping_to"
    return 1
}
check "ping -W 300 a host that ignores echo: exit 1, no reply within 300 ms" timeout_ok
# 40 at once: nicd keeps 32 in flight and refuses the rest (-EBUSY).
busy_pids=()
for k in $(seq 1 40); do
    ctl "$TMP/busy.$k" ping -c 1 -W 4000 "$TB_IP_2" &
    busy_pids+=($!)
done
wait "${busy_pids[@]}"     # not nicd, also a job of this shell
busy=$(cat "$TMP"/busy.* | grep -c "too many pings in flight")
late=$(cat "$TMP"/busy.* | grep -c "no reply within 4000 ms")
check "40 pings at once: $late time out, $busy refused as busy (32 in flight at most)" \
    test "$late" -le 32 -a "$busy" -ge 8 -a "$((busy + late))" -eq 40
ip netns exec "$TB_NS_2" sysctl -qw net.ipv4.icmp_echo_ignore_all=0

# An echo reply nobody asked for: counted and dropped (rx_bad_icmp).
ip netns exec "$TB_NS_2" "$PY" -c 'import socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
body = struct.pack("!BBHHH", 0, 0, 0, 0x7777, 1) + b"unasked"
pkt = body[:2] + struct.pack("!H", csum(body + b"\0")) + body[4:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(pkt, (sys.argv[1], 0))' "$TB_IP_1"
unmatched_ok() {
    for _ in $(seq 1 20); do
        rc_is 0 "$TMP/stats_icmp.json" stats --json &&
            [[ $(json_get "$TMP/stats_icmp.json" 'j["port"]["drops"]["rx_bad_icmp"]') -ge 1 ]] && return 0
        sleep 0.1
    done
    show "$TMP/stats_icmp.json"
    return 1
}
check "an unasked echo reply is dropped as rx_bad_icmp" unmatched_ok

rc_says() {     # WANT OUT REGEX CMD... : exit status WANT and OUT matches REGEX
    local want=$1 out=$2 re=$3
    shift 3
    rc_is "$want" "$out" "$@" && grep -Eq "$re" "$out" && return 0
    show "$out"
    return 1
}
check "ping -s 1473 (beyond the MTU): exit 1, names the MTU" \
    rc_says 1 "$TMP/ping_mtu" "MTU" ping -c 1 -s 1473 "$TB_IP_2"
check "ping 192.0.2.1 (no route, no gateway): exit 1, says so" \
    rc_says 1 "$TMP/ping_route" "no gateway" ping -c 1 192.0.2.1
check "ping nicd's own address: exit 1" rc_is 1 "$TMP/ping_self" ping -c 1 "$TB_IP_1"
for bad in "-c 0" "-W 0" "-W 10001" "-s 70000" "-i -1" "-x" "not.an.ip" "" "$TB_IP_2 $TB_IP_2" "-c"; do
    # shellcheck disable=SC2086  # split on purpose
    check "ping ${bad:-(nothing)}: usage error (2)" rc_is 2 "$TMP/ping_usage" ping $bad
done
check "--help lists ping" bash -c '"$1" --help | grep -q "ping \[-c COUNT\]"' _ "$MN_CTL"
perm_ok() {     # a user who may not open nicd.sock: exit 4, and what to do about it
    ip netns exec "$TB_NS_1" setpriv --reuid=65534 --regid=65534 --clear-groups \
        timeout -k 2 20 "$MN_CTL" --runtime-dir "$RT" ping -c 1 "$TB_IP_2" >"$TMP/ping_perm" 2>&1
    [[ $? -eq 4 ]] && grep -q "run as root" "$TMP/ping_perm" && return 0
    show "$TMP/ping_perm"
    return 1
}
if command -v setpriv >/dev/null; then
    check "ping as nobody: permission denied (4)" perm_ok
fi

# A slow or stalled peer holds only its own connection: nicd and
# machnet-proto read requests without waiting. One client opens a request
# and stops half-way; another sends a HELLO in two halves 300 ms apart (a
# server that waited with a timeout would have hung up); both are served,
# as is machnetctl.
slow_peer_ok() {    # SOCKET ROLE NAME PEER_NAME OUT
    ip netns exec "$TB_NS_1" timeout -k 2 20 "$PY" - "$@" >"$5" 2>&1 <<'PYEOF'
import socket, struct, sys, time
path, role, name, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
MAGIC, HELLO = 0x54434e4d, 1
def hello():
    body = struct.pack('<HHI32s', 1, 1, role, name.encode())
    return struct.pack('<IHHIIiI', MAGIC, 1, HELLO, len(body), 7, 0, 0) + body
stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
stalled.connect(path)
stalled.sendall(hello()[:10])          # and never the rest
slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
slow.connect(path)
msg = hello()
slow.sendall(msg[:13])
time.sleep(0.3)
slow.sendall(msg[13:])
slow.settimeout(5)
hdr = slow.recv(24, socket.MSG_WAITALL)
magic, ver, typ, ln, req, status, nfds = struct.unpack('<IHHIIiI', hdr)
body = slow.recv(ln, socket.MSG_WAITALL)
got = body[8:].split(b'\0')[0]
print('answer: type', typ, 'req', req, 'status', status, 'name', got)
sys.exit(0 if (magic, typ, req, status) == (MAGIC, HELLO, 7, 0) and got == peer else 1)
PYEOF
}
check "machnet-proto: a HELLO sent in two halves 300 ms apart is answered" \
    slow_peer_ok "$RT/default.sock" 3 default default "$TMP/slow_proto"
show "$TMP/slow_proto"
check "machnet-proto: with a peer stalled mid-request, machnetctl flows default still answers" \
    rc_is 0 "$TMP/slow_flows" flows default
check "machnet-nicd: a HELLO sent in two halves 300 ms apart is answered" \
    slow_peer_ok "$RT/nicd.sock" 2 machnetctl machnet-nicd "$TMP/slow_nicd"
show "$TMP/slow_nicd"
check "machnet-nicd: with a client stalled mid-request, machnetctl status still answers" \
    rc_is 0 "$TMP/slow_status" status

# A client that connects and never says HELLO does not keep its slot:
# both servers close it (after 5 s).
silent_closed() {
    ip netns exec "$TB_NS_1" timeout -k 2 20 "$PY" - "$RT/nicd.sock" "$RT/default.sock" \
        >"$TMP/silent" 2>&1 <<'PYEOF'
import select, socket, sys, time
socks = {}
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks[s] = path
t0, closed = time.monotonic(), {}
while socks and time.monotonic() - t0 < 9:
    r, _, _ = select.select(list(socks), [], [], 0.2)
    for s in r:
        if s.recv(64) == b'':
            closed[socks.pop(s)] = time.monotonic() - t0
for path, t in closed.items():
    print('%s closed after %.1f s' % (path, t))
for path in socks.values():
    print('%s still open after 9 s' % path)
sys.exit(1 if socks else 0)
PYEOF
}
check "a connection that never says HELLO is closed by nicd and by machnet-proto" silent_closed
show "$TMP/silent"

# A broken config: machnet-proto refuses it; machnetctl exits 1 and shows why.
check "tenant start broken: exit 1" rc_is 1 "$TMP/broken" tenant start broken
check "tenant start broken: the error names the key (bogus_key)" grep -q bogus_key "$TMP/broken"
show "$TMP/broken"
check "tenant start broken: no pid file left" test ! -e "$RT/broken.pid"
missing_ok() { rc_is 1 "$TMP/missing" tenant start missing && grep -q "$CONF/missing.ini" "$TMP/missing"; }
check "tenant start missing: exit 1, names the file" missing_ok

check "tenant stop default (final): exit 0" rc_is 0 "$TMP/stop3" tenant stop default
check "tenant stop (final): process gone" gone "$PID3"

# nicd stops: it logs its ping counters; ping then finds nobody (exit 3).
kill -TERM "$NICD_PID"
for _ in $(seq 1 50); do kill -0 "$NICD_PID" 2>/dev/null || break; sleep 0.1; done
grep "PING requests" "$TMP/nicd.log" | sed 's/^/# /'
counters_ok() {   # what the checks above did, as nicd counted it
    local l
    l=$(grep -Eo '[0-9]+ PING requests: [0-9]+ echo requests sent, [0-9]+ replies matched, [0-9]+ unmatched replies dropped, [0-9]+ timed out, [0-9]+ unreachable' "$TMP/nicd.log") || return 1
    read -r req sent matched unmatched timedout unreach < <(echo "$l" | grep -Eo '[0-9]+' | tr '\n' ' ')
    [[ $sent -eq $((matched + timedout)) && $matched -eq 6 && $timedout -eq $((late + 1)) &&
        $unmatched -ge 1 && $unreach -eq 2 && $req -eq $((sent + unreach)) ]]
}
check "nicd's exit log: ping counters add up (6 matched, $((late + 1)) timed out, 2 unreachable, >= 1 unmatched)" counters_ok
check "ping with nicd down: exit 3, says is it running" \
    rc_says 3 "$TMP/ping_down" "is it running" ping -c 1 "$TB_IP_2"
down_json_ok() {    # stdout alone must be one JSON object naming the error
    ip netns exec "$TB_NS_1" timeout -k 2 20 "$MN_CTL" --runtime-dir "$RT" ping --json -c 1 "$TB_IP_2" \
        >"$TMP/ping_down.json" 2>/dev/null
    [[ $? -eq 3 && $(json_get "$TMP/ping_down.json" 'j["received"]==0 and "machnet-nicd" in j["error"]') == True ]] &&
        return 0
    show "$TMP/ping_down.json"
    return 1
}
check "ping --json with nicd down: exit 3, one JSON object with the error" down_json_ok

finish
