#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions used via check/trap
# shellcheck source-path=SCRIPTDIR
#
# End-to-end test of machnet-proto and libmachnet (issue 4), real binaries.
#
# Two hosts of a test bed (tests/netns/testbed.sh), joined through a bridge
# in a switch namespace, both DPDK-owned: each runs machnet-nicd on a
# net_af_xdp vdev (--no-huge -m 256) and one machnet-proto for the tenant
# "default" (listen ports 800-999, ephemeral ports 40000-40999). The
# applications (hello_world, msg_gen) get MACHNET_RUNTIME_DIR and
# MACHNET_TENANT in their environment.
#
#   a. hello_world: the server in host 2 prints the client's message; the
#      client gets its echo
#   b. msg_gen --verify, 64 B, 1 KiB, 64 KiB and 8 MiB at windows 1 and 32;
#      and --verify itself catches a server that corrupts echoes
#   c. 1 % loss, 1 ms delay, 25 % reordering on the wire: every message
#      still verified. This kernel has no sch_netem, so when
#      `tc qdisc ... netem` is refused the wire is a userspace relay in the
#      switch namespace doing what that netem line does (loss 1%, delay 1ms,
#      reorder 25% 50%) on IPv4 frames; its counters prove it dropped and
#      reordered
#   d. many flows and channels at once: 4 clients x 4 flows into two
#      servers in host 2, and one client the other way, all verified
#   e. kill -9 machnet-nicd mid-run (host 2, then host 1) and restart it:
#      the run spanning the restart completes with every message verified
#   f. machnetctl stats: the tenant is connected and its counters move;
#      machnet-proto's idle CPU after the traffic
#
# Binaries: $MN_NICD, $MN_PROTO, $MN_HELLO, $MN_MSG_GEN, $MN_CTL (meson
# passes them; the defaults are the build tree next to this source tree).
# $MN_PROTO_ARGS: extra machnet-proto options for experiments (e.g.
# "--cc fixed"); empty by default, so the product defaults are tested.
# Needs root; exits 77 (skip) otherwise. Prints TAP-like "ok N - ..." lines,
# ends with "N passed, M failed", exits 1 if anything failed. Every wait is
# bounded (timeout), so a hang fails a check instead of blocking.

set -u

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TB="$HERE/../netns/testbed.sh"
BUILD=$HERE/../../build
MN_NICD=${MN_NICD:-$BUILD/drivers/machnet-nicd}
MN_PROTO=${MN_PROTO:-$BUILD/servers/machnet-proto}
MN_HELLO=${MN_HELLO:-$BUILD/tools/hello_world}
MN_MSG_GEN=${MN_MSG_GEN:-$BUILD/tools/msg_gen}
MN_CTL=${MN_CTL:-$BUILD/tools/machnetctl}
MN_PROTO_ARGS=${MN_PROTO_ARGS:-}

pass=0 fail=0 num=0
ok()   { num=$((num + 1)); pass=$((pass + 1)); echo "ok $num - $*"; }
nok()  { num=$((num + 1)); fail=$((fail + 1)); echo "not ok $num - $*"; }
diag() { echo "# $*"; }
check() {   # DESCRIPTION CMD... : passes if CMD succeeds
    local d=$1
    shift
    if "$@"; then ok "$d"; else nok "$d"; fi
}
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

if [[ $EUID -ne 0 ]]; then
    echo "# SKIP: needs root (network namespaces, veth, AF_XDP)"
    echo "0 passed, 0 failed"
    exit 77
fi

# ---------------------------------------------------------------------------
# Scratch space, cleanup. This EXIT trap is set before tb_up, so the test
# bed's trap keeps it and runs it after its own teardown, which kills
# whatever is still running in the namespaces (nicd, proto, apps, relay).
TMP=$(mktemp -d /tmp/mn_proto.XXXXXX)
cleanup() {
    local p
    for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
    if [[ -n ${MN_KEEP_TMP:-} ]]; then echo "# kept $TMP"; else rm -rf -- "$TMP"; fi
}
trap cleanup EXIT

finish() {
    if (( fail > 0 )); then
        for i in 1 2; do
            [[ -e $TMP/rt$i/nicd.log ]] && log_tail "$TMP/rt$i/nicd.log" 15
            [[ -e $TMP/rt$i/proto.log ]] && log_tail "$TMP/rt$i/proto.log" 20
        done
    fi
    diag "total $(elapsed)s"
    echo "1..$num"
    echo "$pass passed, $fail failed"
    if (( fail > 0 )); then exit 1; fi
    exit 0
}

log_tail() {    # FILE [LINES]
    diag "--- tail of ${1#"$TMP"/} ---"
    grep -v '^libxdp\|^libbpf\| INFO config' "$1" 2>/dev/null | tail -n "${2:-15}" | sed 's/^/#   /'
}

for t in ip timeout python3 awk; do
    if ! command -v "$t" >/dev/null 2>&1; then nok "'$t' is installed"; finish; fi
done
for b in "$MN_NICD" "$MN_PROTO" "$MN_HELLO" "$MN_MSG_GEN" "$MN_CTL"; do
    if [[ ! -x $b ]]; then nok "binary $b exists"; finish; fi
done
PY=$(python3 -c 'import sys; print(sys.executable)')

# shellcheck source=../netns/testbed.sh
. "$TB"

# ---------------------------------------------------------------------------
# Helpers in python3: JSON fields, and the impaired wire (a relay).
cat >"$TMP/util.py" <<'PYEOF'
import heapq, json, os, random, select, signal, socket, sys, time

def cmd_get(args):
    # get FILE KEY... : print each (dotted) key of the JSON object in FILE;
    # name[key] picks the element of list `name` whose "name" is key.
    try:
        j = json.load(open(args[0]))
    except (OSError, ValueError):
        print('MISSING')
        sys.exit(1)
    for path in args[1:]:
        v = j
        try:
            for part in path.split('.'):
                if '[' in part:
                    name, sel = part[:-1].split('[')
                    v = next(x for x in v[name] if x.get('name') == sel)
                else:
                    v = v[part]
        except (KeyError, TypeError, StopIteration):
            v = 'MISSING'
        print(json.dumps(v) if not isinstance(v, str) else v)

def cmd_relay(args):
    # relay IF_A IF_B STATS READY LOSS_PCT DELAY_MS REORDER_PCT CORR_PCT
    # Forwards every frame between two interfaces (AF_PACKET) and applies to
    # IPv4 frames what `netem loss L% delay Dms reorder R% C%` does: drop
    # with probability L; send R% (correlated C%) at once, delay the rest by
    # D ms, so that the immediate ones overtake the delayed. ARP passes.
    ia, ib, stats, ready = args[:4]
    loss, delay, reorder, corr = (float(x) for x in args[4:8])
    loss /= 100.0; delay /= 1000.0; reorder /= 100.0; corr /= 100.0
    socks = {}
    for a, b in ((ia, ib), (ib, ia)):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((a, 0))
        s.setblocking(False)
        socks[a] = s
    peer = {socks[ia]: socks[ib], socks[ib]: socks[ia]}
    c = dict(frames=0, ipv4=0, dropped=0, delayed=0, immediate=0, sent=0, send_err=0)
    q, seq = [], 0
    last = [random.random()]
    stop = [False]
    def on_term(*_):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    def corr_rand():
        r = (1 - corr) * random.random() + corr * last[0]
        last[0] = r
        return r
    def out(s, data):
        try:
            s.send(data)
            c['sent'] += 1
        except OSError:
            c['send_err'] += 1
    def dump():
        with open(stats + '.tmp', 'w') as f:
            json.dump(c, f)
        os.replace(stats + '.tmp', stats)
    open(ready, 'w').close()
    next_dump = time.monotonic() + 0.2
    while not stop[0]:
        now = time.monotonic()
        while q and q[0][0] <= now:
            _, _, s, data = heapq.heappop(q)
            out(s, data)
        timeout = 0.05 if not q else max(0.0, q[0][0] - now)
        try:
            r, _, _ = select.select(list(peer), [], [], timeout)
        except InterruptedError:
            continue
        for s in r:
            for _ in range(64):
                try:
                    data, addr = s.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                c['frames'] += 1
                o = peer[s]
                if data[12:14] != b'\x08\x00':
                    out(o, data)
                    continue
                c['ipv4'] += 1
                if random.random() < loss:
                    c['dropped'] += 1
                    continue
                if delay <= 0 or corr_rand() < reorder:
                    c['immediate'] += 1
                    out(o, data)
                else:
                    c['delayed'] += 1
                    seq += 1
                    heapq.heappush(q, (time.monotonic() + delay, seq, o, data))
        if time.monotonic() >= next_dump:
            dump()
            next_dump = time.monotonic() + 0.2
    for _, _, s, data in sorted(q):
        out(s, data)
    dump()

{'get': cmd_get, 'relay': cmd_relay}[sys.argv[1]](sys.argv[2:])
PYEOF
jget() { "$PY" "$TMP/util.py" get "$@" 2>/dev/null; }    # FILE KEY...

# ---------------------------------------------------------------------------
# nicd and machnet-proto per host. Runtime dir of host i: $TMP/rt$i.
declare -A NICD_PID PROTO_PID
write_cfgs() {  # I
    tb_machnet_configs "$1" "$TMP/rt$1" "$TMP/rt$1/tenant.ini"
}

sock_id() { stat -c '%i %.9Y' "$1" 2>/dev/null || echo none; }

start_nicd() {  # I : start nicd in host I, wait (10 s) for a new nicd.sock
    local i=$1 rt=$TMP/rt$1 ns old
    ns=TB_NS_$i
    old=$(sock_id "$rt/nicd.sock")
    echo "=== start $(date +%T.%N)" >>"$rt/nicd.log"
    ip netns exec "${!ns}" "$MN_NICD" -c "$rt/nicd.ini" >>"$rt/nicd.log" 2>&1 &
    NICD_PID[$i]=$!
    for _ in $(seq 1 100); do
        if [[ -S $rt/nicd.sock && $(sock_id "$rt/nicd.sock") != "$old" ]]; then return 0; fi
        if ! kill -0 "${NICD_PID[$i]}" 2>/dev/null; then
            diag "nicd $i exited during start-up"
            return 1
        fi
        sleep 0.1
    done
    diag "no new $rt/nicd.sock after 10 s"
    return 1
}

stats() {   # I OUT : machnetctl stats --json of host I into OUT
    local ns=TB_NS_$1
    ip netns exec "${!ns}" timeout -k 1 5 "$MN_CTL" --runtime-dir "$TMP/rt$1" stats --json \
        >"$2" 2>"$2.err"
}
connected() {   # I : the tenant is registered with nicd of host I
    stats "$1" "$TMP/st$1.json" && [[ $(jget "$TMP/st$1.json" 'tenants[default].connected') == true ]]
}
wait_connected() {  # I SECS
    for _ in $(seq 1 $(($2 * 5))); do
        if connected "$1"; then return 0; fi
        sleep 0.2
    done
    return 1
}

start_proto() { # I : start machnet-proto in host I; wait for default.sock + registration
    local i=$1 rt=$TMP/rt$1 ns old
    ns=TB_NS_$i
    old=$(sock_id "$rt/default.sock")
    echo "=== start $(date +%T.%N)" >>"$rt/proto.log"
    # shellcheck disable=SC2086  # MN_PROTO_ARGS: words
    ip netns exec "${!ns}" "$MN_PROTO" -c "$rt/tenant.ini" $MN_PROTO_ARGS >>"$rt/proto.log" 2>&1 &
    PROTO_PID[$i]=$!
    for _ in $(seq 1 100); do
        if [[ -S $rt/default.sock && $(sock_id "$rt/default.sock") != "$old" ]]; then break; fi
        if ! kill -0 "${PROTO_PID[$i]}" 2>/dev/null; then
            diag "machnet-proto $i exited during start-up"
            return 1
        fi
        sleep 0.1
    done
    wait_connected "$i" 10
}

# app I SECS CMD... : run an application in host I with the tenant's
# environment, under timeout SECS.
app() {
    local i=$1 secs=$2 ns
    ns=TB_NS_$i
    shift 2
    MACHNET_RUNTIME_DIR=$TMP/rt$i MACHNET_TENANT=default \
        ip netns exec "${!ns}" timeout -k 5 "$secs" "$@"
}

# app_bg I SECS OUT CMD... : the same in the background, output to OUT;
# BG_PID is the pid of `timeout` (ip netns exec execs it), which passes a
# SIGTERM on to the application.
BG_PID=""
app_bg() {
    local i=$1 secs=$2 out=$3 ns
    ns=TB_NS_$i
    shift 3
    MACHNET_RUNTIME_DIR=$TMP/rt$i MACHNET_TENANT=default \
        ip netns exec "${!ns}" timeout -k 5 "$secs" "$@" >"$out" 2>&1 &
    BG_PID=$!
}

# A msg_gen server in host I on PORT, in the background; waits for it to
# listen. Sets SRV_PID (the pid of its `timeout`).
SRV_PID=""
start_server() {    # I PORT NAME [ARGS...]
    local i=$1 ip=TB_IP_$1 port=$2 name=$3
    shift 3
    app_bg "$i" 500 "$TMP/$name.log" "$MN_MSG_GEN" --local_ip "${!ip}" --local_port "$port" "$@"
    SRV_PID=$BG_PID
    for _ in $(seq 1 100); do
        if grep -q 'listening' "$TMP/$name.log" 2>/dev/null; then return 0; fi
        if ! kill -0 "$SRV_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    diag "msg_gen server $name did not listen: $(head -c 300 "$TMP/$name.log")"
    return 1
}

# mg NAME FROM TO PORT SECS ARGS... : a msg_gen client in host FROM to host
# TO:PORT with --verify --json, under timeout SECS; JSON in $TMP/NAME.json,
# stderr in $TMP/NAME.err. Returns its status.
mg() {
    local name=$1 from=$2 to=$3 port=$4 secs=$5 lip rip
    shift 5
    lip=TB_IP_$from rip=TB_IP_$to
    app "$from" "$secs" "$MN_MSG_GEN" --local_ip "${!lip}" --remote_ip "${!rip}" \
        --remote_port "$port" --verify --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
}
# summary NAME : one line from the JSON of a run
summary() {
    local f=$TMP/$1.json
    if [[ ! -s $f ]]; then
        echo "no summary"
        return
    fi
    echo "sent $(jget "$f" sent) verified $(jget "$f" verified) bad $(jget "$f" bad)" \
        "lost $(jget "$f" lost) flow_errors $(jget "$f" flow_errors)," \
        "$(jget "$f" rate_msgs) msg/s, RTT p50 $(jget "$f" rtt_us.p50) us"
}
# mg_ok NAME N : the run exited 0 and verified exactly N messages
mg_ok() {
    local f=$TMP/$1.json
    [[ -s $f && $(jget "$f" ok) == true && $(jget "$f" sent) == "$2" &&
        $(jget "$f" verified) == "$2" ]]
}
mg_fail_diag() {    # NAME
    grep -v '^\[TX' "$TMP/$1.err" 2>/dev/null | tail -n 6 | sed 's/^/#   /'
}

# ---------------------------------------------------------------------------
diag "machnet-proto end to end: 2 hosts, nicd on net_af_xdp + machnet-proto each"
if ! tb_up 2 --bridge --dpdk-hosts 1,2 >/dev/null; then
    nok "tb_up 2 --bridge --dpdk-hosts 1,2"
    finish
fi
diag "test bed $TB_PREFIX: host 1 $TB_IP_1, host 2 $TB_IP_2, switch $TB_SW_NS (ports $TB_PEER_IF_1, $TB_PEER_IF_2)"
[[ -n $MN_PROTO_ARGS ]] && diag "machnet-proto extra options: $MN_PROTO_ARGS"
up=1
for i in 1 2; do
    write_cfgs "$i"
    if start_nicd "$i"; then
        ok "host $i: nicd starts (pid ${NICD_PID[$i]})"
    else
        nok "host $i: nicd starts"
        log_tail "$TMP/rt$i/nicd.log"
        up=0
        continue
    fi
    if start_proto "$i"; then
        ok "host $i: machnet-proto starts and registers with nicd (pid ${PROTO_PID[$i]})"
    else
        nok "host $i: machnet-proto starts and registers with nicd"
        log_tail "$TMP/rt$i/proto.log"
        up=0
    fi
done
if (( !up )); then finish; fi

# ---------------------------------------------------------------------------
diag "a. hello_world ($(elapsed)s)"
app_bg 2 60 "$TMP/hw_srv.log" "$MN_HELLO" --local_ip "$TB_IP_2" --port 801
hw_srv=$BG_PID
for _ in $(seq 1 50); do
    if grep -q listening "$TMP/hw_srv.log" 2>/dev/null; then break; fi
    sleep 0.1
done
app 1 20 "$MN_HELLO" --local_ip "$TB_IP_1" --remote_ip "$TB_IP_2" --port 801 \
    --msg "hello from host 1" --count 3 >"$TMP/hw_cli.log" 2>&1
rc=$?
check "hello_world client gets its 3 echoes (rc $rc: $(tr '\n' ' ' <"$TMP/hw_cli.log" | head -c 200))" \
    test "$rc" = 0 -a "$(grep -c '^echo [0-9]*: hello from host 1$' "$TMP/hw_cli.log")" = 3
# A peer that never answers (host 2's nicd drops datagrams to a port no
# tenant claimed): machnet_connect() fails with ETIMEDOUT after its 5 s
# (MACHNET_CONNECT_TIMEOUT_MS), answered by the server, not cut off by the
# library's own wait (7 s).
t1=$(date +%s.%N)
app 1 20 "$MN_HELLO" --local_ip "$TB_IP_1" --remote_ip "$TB_IP_2" --port 5555 \
    >"$TMP/hw_silent.log" 2>&1
rc=$?
secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
check "connect to a silent port: ETIMEDOUT from the server within 6.5 s (rc $rc, ${secs}s: $(head -c 160 "$TMP/hw_silent.log"))" \
    bash -c '[[ $1 == 1 ]] && grep -q "Connection timed out" "$2" && awk -v s="$3" "BEGIN { exit !(s < 6.5) }"' \
    _ "$rc" "$TMP/hw_silent.log" "$secs"
sleep 0.2
check "hello_world server printed the client's message ($(grep -m1 received "$TMP/hw_srv.log"))" \
    test "$(grep -c '^received 17 bytes: hello from host 1$' "$TMP/hw_srv.log")" = 3
kill "$hw_srv" 2>/dev/null
wait "$hw_srv" 2>/dev/null

# ---------------------------------------------------------------------------
diag "f. machnetctl stats: tenant connected, counters move ($(elapsed)s)"
srv_ok=1
if start_server 2 888 srv888; then srv888=$SRV_PID; else srv_ok=0; nok "msg_gen server on host 2 port 888"; fi
if stats 1 "$TMP/f0.json"; then
    check "machnetctl stats (host 1): tenant default connected, pid = machnet-proto's" \
        test "$(jget "$TMP/f0.json" 'tenants[default].connected')" = true \
        -a "$(jget "$TMP/f0.json" 'tenants[default].pid')" = "${PROTO_PID[1]}"
    rx0=$(jget "$TMP/f0.json" 'tenants[default].rx_pkts')
    tx0=$(jget "$TMP/f0.json" 'tenants[default].tx_pkts')
    mg f 1 2 888 30 --msg_size 64 --msg_window 4 --msg_nr 1000
    sleep 0.3
    stats 1 "$TMP/f1.json"
    rx1=$(jget "$TMP/f1.json" 'tenants[default].rx_pkts')
    tx1=$(jget "$TMP/f1.json" 'tenants[default].tx_pkts')
    check "counters move with 1000 messages: tenant rx_pkts $rx0 -> $rx1, tx_pkts $tx0 -> $tx1 ($(summary f))" \
        awk -v a="$rx0" -v b="$rx1" -v c="$tx0" -v d="$tx1" \
        'BEGIN { exit !(a ~ /^[0-9]+$/ && b - a >= 1000 && d - c >= 1000) }'
else
    nok "machnetctl stats answers in host 1 ($(head -c 200 "$TMP/f0.json.err"))"
fi

# machnetctl flows / stats / status against the protocol servers, while a
# client with 3 flows runs: both ends list the flows with live figures.
ctl_json() {    # I OUT CMD... : machnetctl CMD --json in host I
    local i=$1 ns=TB_NS_$1 out=$2
    shift 2
    ip netns exec "${!ns}" timeout -k 1 5 "$MN_CTL" --runtime-dir "$TMP/rt$i" "$@" --json \
        >"$out" 2>"$out.err"
}
pyq() {     # FILE EXPR : EXPR on j (FILE parsed) is true; shows FILE otherwise
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$@" 2>/dev/null && return 0
    head -c 1500 "$1" | sed 's/^/#   /'
    echo
    head -c 300 "$1.err" 2>/dev/null | sed 's/^/#   /'
    return 1
}
if (( srv_ok )); then
    lip=$TB_IP_1 rip=$TB_IP_2
    app_bg 1 30 "$TMP/fl.log" "$MN_MSG_GEN" --local_ip "$lip" --remote_ip "$rip" \
        --remote_port 888 --flows 3 --msg_window 2 --duration 20 --quiet
    fl_pid=$BG_PID
    fl_app=""
    for _ in $(seq 1 40); do
        sleep 0.25
        ctl_json 1 "$TMP/fl1.json" flows &&
            pyq "$TMP/fl1.json" 'sum(1 for f in j["tenants"][0]["flows"] if f["remote"]=="'"$rip"':888" and f["state"]=="established" and f["tx_msgs"]>0)==3' &&
            break
    done
    ctl_json 2 "$TMP/fl2.json" flows
    fl_app=$(pgrep -f -- "^$MN_MSG_GEN .*--flows 3" | head -n 1)
    check "machnetctl flows (host 1): 3 established flows to $rip:888 with RTT, cwnd, messages, the app's pid" \
        pyq "$TMP/fl1.json" 'len([f for f in j["tenants"][0]["flows"] if f["remote"]=="'"$rip"':888" and f["state"]=="established" and f["srtt_us"]>0 and f["min_rtt_us"]>0 and f["cwnd_bytes"]>0 and f["tx_msgs"]>0 and f["rx_bytes"]>0 and f["channel"]>0 and f["app_pid"]=='"${fl_app:-0}"' and f["age_s"]>0])==3'
    check "machnetctl flows (host 2): the 3 accepted flows from $lip, owned by the listening channel" \
        pyq "$TMP/fl2.json" 'len([f for f in j["tenants"][0]["flows"] if f["remote"].startswith("'"$lip"':") and f["local"]=="'"$rip"':888" and f["state"]=="established" and f["rx_msgs"]>0 and f["channel"]>0])==3'
    ip netns exec "$TB_NS_1" timeout -k 1 5 "$MN_CTL" --runtime-dir "$TMP/rt1" flows \
        >"$TMP/fl1.txt" 2>&1
    check "machnetctl flows (table): a header and a line per flow to $rip:888" \
        test "$(grep -c " $rip:888 *established" "$TMP/fl1.txt")" = 3 -a "$(head -c 6 "$TMP/fl1.txt")" = tenant
    ctl_json 1 "$TMP/fl1s.json" stats
    check "machnetctl stats --json: servers[default] up, version, channels, rx_pkts and flows from machnet-proto" \
        pyq "$TMP/fl1s.json" '[s for s in j["servers"] if s["name"]=="default" and s["up"] and s["pid"]=='"${PROTO_PID[1]}"' and s["version"] and s["channels"]>=1 and s["counters"]["rx_pkts"]>0 and s["nicd_connected"] and len(s["flows"])>=3]'
    ctl_json 2 "$TMP/fl2st.json" status
    check "machnetctl status --json: nicd up, protocol server default up with uptime" \
        pyq "$TMP/fl2st.json" 'j["nicd"]["pid"]>0 and [s for s in j["servers"] if s["name"]=="default" and s["up"] and s["uptime_s"]>0]'
    ctl_json 1 "$TMP/flx.json" flows nosuch
    rc=$?
    check "machnetctl flows nosuch: exit 3 (not running), says so (rc $rc)" \
        test "$rc" = 3 -a "$(grep -c "not running" "$TMP/flx.json.err")" = 1
    kill -TERM "$fl_pid" 2>/dev/null # done looking: it stops and reports
    wait "$fl_pid" 2>/dev/null
else
    nok "machnetctl flows (no msg_gen server)"
fi

# ---------------------------------------------------------------------------
diag "b. msg_gen --verify, sizes x windows ($(elapsed)s)"
# 8 MiB at window 32 once deadlocked (both ends' pools full of their own
# queued sends); half of each pool is now kept for receiving. MN_E2E_ROWS
# adds SIZE:WINDOW:COUNT rows, e.g. MN_E2E_ROWS=8388608:32:40.
for row in 64:1:2000 64:32:20000 1024:1:2000 1024:32:20000 65536:1:200 65536:32:500 \
        8388608:1:10 8388608:32:20 ${MN_E2E_ROWS:-}; do
    IFS=: read -r size win n <<<"$row"
    name=b_${size}_$win
    if (( !srv_ok )); then nok "msg_gen ${size} B x $n, window $win (no server)"; continue; fi
    t1=$(date +%s.%N)
    mg "$name" 1 2 888 60 --msg_size "$size" --msg_window "$win" --msg_nr "$n" --timeout 10
    rc=$?
    secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if mg_ok "$name" "$n"; then
        ok "msg_gen $size B x $n, window $win: all verified (${secs}s; $(summary "$name"))"
    else
        nok "msg_gen $size B x $n, window $win: all verified (rc $rc, ${secs}s; $(summary "$name"))"
        mg_fail_diag "$name"
    fi
done

# The check itself: a server that flips a byte in every 100th echo.
if start_server 2 891 srv891 --corrupt_every 100; then
    srv891=$SRV_PID
    mg b_corrupt 1 2 891 30 --msg_size 1024 --msg_nr 1000 --timeout 10
    rc=$?
    check "msg_gen --verify catches a corrupting server: exit 1, 10 of 1000 bad (rc $rc; $(summary b_corrupt))" \
        test "$rc" = 1 -a "$(jget "$TMP/b_corrupt.json" bad)" = 10 \
        -a "$(jget "$TMP/b_corrupt.json" verified)" = 990
    kill -TERM "$srv891" 2>/dev/null
    wait "$srv891" 2>/dev/null
else
    nok "msg_gen server --corrupt_every 100 on host 2 port 891"
fi

# ---------------------------------------------------------------------------
diag "c. loss 1%, delay 1 ms, reorder 25% 50% on the wire ($(elapsed)s)"
SW=$TB_SW_NS
impair=""
if ip netns exec "$SW" tc qdisc add dev "$TB_PEER_IF_1" root netem loss 1% delay 1ms \
        reorder 25% 50% 2>"$TMP/netem.err" &&
   ip netns exec "$SW" tc qdisc add dev "$TB_PEER_IF_2" root netem loss 1% delay 1ms \
        reorder 25% 50% 2>>"$TMP/netem.err"; then
    impair=netem
    diag "netem on $TB_PEER_IF_1 and $TB_PEER_IF_2 (switch ports, egress towards each host)"
else
    ip netns exec "$SW" tc qdisc del dev "$TB_PEER_IF_1" root 2>/dev/null
    diag "tc netem refused ($(head -n 1 "$TMP/netem.err")): using the relay instead"
    # Take both switch ports off the bridge; the relay joins them.
    ip -n "$SW" link set dev "$TB_PEER_IF_1" nomaster
    ip -n "$SW" link set dev "$TB_PEER_IF_2" nomaster
    ip netns exec "$SW" timeout -k 2 200 "$PY" "$TMP/util.py" relay "$TB_PEER_IF_1" \
        "$TB_PEER_IF_2" "$TMP/relay.json" "$TMP/relay.ready" 1 1 25 50 2>"$TMP/relay.err" &
    relay_pid=$!
    for _ in $(seq 1 50); do
        if [[ -e $TMP/relay.ready ]]; then impair=relay; break; fi
        sleep 0.1
    done
    [[ -n $impair ]] || diag "relay did not start: $(head -c 300 "$TMP/relay.err")"
fi
if [[ -n $impair ]]; then
    ok "impaired wire set up ($impair)"
    for row in 1024:8:3000 65536:4:100; do
        IFS=: read -r size win n <<<"$row"
        name=c_${size}
        t1=$(date +%s.%N)
        mg "$name" 1 2 888 45 --msg_size "$size" --msg_window "$win" --msg_nr "$n" --timeout 20
        rc=$?
        secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        if mg_ok "$name" "$n"; then
            ok "lossy wire: msg_gen $size B x $n, window $win: all verified (${secs}s; $(summary "$name"))"
        else
            nok "lossy wire: msg_gen $size B x $n, window $win: all verified (rc $rc, ${secs}s; $(summary "$name"))"
            mg_fail_diag "$name"
        fi
    done
    if [[ $impair == netem ]]; then
        d=$(ip netns exec "$SW" tc -s qdisc show dev "$TB_PEER_IF_1" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -n 1)
        check "netem dropped packets (dropped $d)" test "${d:-0}" -gt 0
        ip netns exec "$SW" tc qdisc del dev "$TB_PEER_IF_1" root 2>/dev/null
        ip netns exec "$SW" tc qdisc del dev "$TB_PEER_IF_2" root 2>/dev/null
    else
        kill -TERM "$relay_pid" 2>/dev/null
        wait "$relay_pid" 2>/dev/null
        diag "relay: $(cat "$TMP/relay.json" 2>/dev/null)"
        drop=$(jget "$TMP/relay.json" dropped) imm=$(jget "$TMP/relay.json" immediate)
        del=$(jget "$TMP/relay.json" delayed)
        check "the relay dropped (${drop}), delayed (${del}) and reordered (${imm} sent ahead) frames" \
            awk -v a="$drop" -v b="$imm" -v c="$del" 'BEGIN { exit !(a > 0 && b > 0 && c > 0) }'
        ip -n "$SW" link set dev "$TB_PEER_IF_1" master "$TB_BRIDGE"
        ip -n "$SW" link set dev "$TB_PEER_IF_2" master "$TB_BRIDGE"
    fi
    mg c_after 1 2 888 30 --msg_size 64 --msg_nr 100 --timeout 10
    check "the clean wire is back: msg_gen 64 B x 100 ($(summary c_after))" mg_ok c_after 100
else
    nok "impaired wire set up (netem or relay)"
fi

# ---------------------------------------------------------------------------
diag "d. many flows and channels at once ($(elapsed)s)"
srv2_ok=0 srv3_ok=0
if start_server 2 889 srv889; then srv889=$SRV_PID srv2_ok=1; fi
if start_server 1 890 srv890; then srv890=$SRV_PID srv3_ok=1; fi
if (( srv_ok && srv2_ok && srv3_ok )); then
    pids=()
    for k in 1 2 3 4; do
        port=$((k % 2 ? 888 : 889))
        mg "d$k" 1 2 "$port" 120 --msg_size 1024 --msg_window 8 --flows 4 --msg_nr 4000 \
            --timeout 20 &
        pids+=($!)
    done
    mg d5 2 1 890 120 --msg_size 512 --msg_window 8 --flows 4 --msg_nr 4000 --timeout 20 &
    pids+=($!)
    k=0
    for p in "${pids[@]}"; do
        k=$((k + 1))
        wait "$p"
        rc=$?
        if (( k < 5 )); then what="host 1 -> host 2:$((k % 2 ? 888 : 889))"; else what="host 2 -> host 1:890"; fi
        if mg_ok "d$k" 4000; then
            ok "client $k ($what, 4 flows, 1 channel): 4000 verified ($(summary "d$k"))"
        else
            nok "client $k ($what, 4 flows, 1 channel): 4000 verified (rc $rc; $(summary "d$k"))"
            mg_fail_diag "d$k"
        fi
    done
else
    nok "msg_gen servers on host 2 ports 888, 889 and host 1 port 890"
fi

# ---------------------------------------------------------------------------
for victim in 2 1; do
    diag "e. kill -9 nicd in host $victim mid-run, restart it ($(elapsed)s)"
    name=e$victim
    mg "$name" 1 2 888 90 --msg_size 1024 --msg_window 8 --duration 7 --timeout 30 &
    mgp=$!
    sleep 2
    old=${NICD_PID[$victim]}
    kill -KILL "$old" 2>/dev/null
    wait "$old" 2>/dev/null
    rc=$?
    check "nicd $victim killed with SIGKILL (status $rc)" test "$rc" = 137
    sleep 0.5
    if start_nicd "$victim"; then
        ok "nicd $victim restarts (pid $old -> ${NICD_PID[$victim]})"
        if wait_connected "$victim" 15; then
            ok "machnet-proto $victim re-registered with the new nicd by itself"
        else
            nok "machnet-proto $victim re-registered with the new nicd within 15 s"
        fi
    else
        nok "nicd $victim restarts"
        log_tail "$TMP/rt$victim/nicd.log"
    fi
    wait "$mgp"
    rc=$?
    n=$(jget "$TMP/$name.json" sent)
    if [[ $n =~ ^[0-9]+$ ]] && (( n > 0 )) && mg_ok "$name" "$n"; then
        ok "the run across the restart completes, every message verified ($(summary "$name"))"
    else
        nok "the run across the restart completes, every message verified (rc $rc; $(summary "$name"))"
        mg_fail_diag "$name"
    fi
    check "machnet-proto $victim still runs" kill -0 "${PROTO_PID[$victim]}"
done

# ---------------------------------------------------------------------------
diag "f. end state ($(elapsed)s)"
alive_connected() {  # I
    kill -0 "${NICD_PID[$1]}" 2>/dev/null && kill -0 "${PROTO_PID[$1]}" 2>/dev/null && connected "$1"
}
for i in 1 2; do
    check "host $i: nicd and machnet-proto alive, tenant connected" alive_connected "$i"
done
all_alive() { local p; for p; do kill -0 "$p" 2>/dev/null || return 1; done; }
check "msg_gen servers survived everything" all_alive "${srv888:-0}" "${srv889:-0}" "${srv890:-0}"
for p in ${srv888:-} ${srv889:-} ${srv890:-}; do kill -TERM "$p" 2>/dev/null; done
for p in ${srv888:-} ${srv889:-} ${srv890:-}; do wait "$p" 2>/dev/null; done
for name in srv888 srv889 srv890; do
    sum=$(grep -m1 'server summary' "$TMP/$name.log" 2>/dev/null)
    check "msg_gen $name exits on SIGTERM with its summary, no echo failed ($sum)" \
        test -n "$(grep -F '(0 failed,' <<<"$sum")"
done
# Idle CPU: after the traffic, with no application attached.
sleep 1
hz=$(getconf CLK_TCK)
for i in 1 2; do
    p=${PROTO_PID[$i]}
    a=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null)
    w_a=$(date +%s.%N)
    sleep 2
    b=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null)
    w_b=$(date +%s.%N)
    cpu=$(awk -v a="${a:-0}" -v b="${b:-0}" -v x="$w_a" -v y="$w_b" -v hz="$hz" \
        'BEGIN { printf "%.0f", (b - a) / hz / (y - x) * 100 }')
    check "host $i: machnet-proto idle after the traffic: $cpu % of a core (< 20 %)" \
        test "$cpu" -lt 20
done

# A clean stop: SIGTERM, exit status 0 (under ASan a leak makes it 23), and
# no sanitizer report in any server's or application's log.
stopped_ok() {  # PID
    local rc
    kill -TERM "$1" 2>/dev/null || return 1
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    wait "$1" 2>/dev/null
    rc=$?
    [[ $rc -eq 0 ]] || diag "pid $1 exited $rc"
    return "$rc"
}
for i in 1 2; do
    check "host $i: machnet-proto stops on SIGTERM, exit 0" stopped_ok "${PROTO_PID[$i]}"
    check "host $i: machnet-nicd stops on SIGTERM, exit 0" stopped_ok "${NICD_PID[$i]}"
done
no_sanitizer_reports() {
    local hits
    hits=$(grep -rlE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP" 2>/dev/null)
    [[ -z $hits ]] && return 0
    for f in $hits; do diag "$f:"; grep -m 5 -E 'ERROR|runtime error|#[0-9] ' "$f" | sed 's/^/#   /'; done
    return 1
}
check "no sanitizer report in any log (servers, applications)" no_sanitizer_reports

finish
