#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # single-quoted code for bash -c; functions used via check/trap
# shellcheck source-path=SCRIPTDIR
#
# Integration test of machnet-nicd, the NIC driver server (issue 3).
#
#   test_nicd.sh af_xdp|af_packet
#
# Host 1 of a two-host test bed (tests/netns/testbed.sh) runs machnet-nicd
# on a net_af_xdp or net_af_packet vdev bound to its veth end; host 2 is a
# kernel peer (python3 UDP sockets, ping). Test tenants (mn_test_tenant, a
# stand-in protocol server) register with nicd in host 1 and move raw UDP
# frames through their ports. Counters come from `machnetctl stats --json`.
#
# Binaries: $MN_NICD, $MN_TENANT, $MN_CTL (meson passes them; the defaults
# are the build tree next to this source tree). Needs root; exits 77 (skip)
# otherwise. Prints TAP-like "ok N - ..." lines and ends with the line
# "N passed, M failed"; exits 1 if anything failed. Every wait is bounded,
# so a hang fails a check instead of blocking.
#
# Only addresses inside the namespaces the test bed makes are ever used.

set -u

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TB="$HERE/../netns/testbed.sh"
MN_NICD=${MN_NICD:-$HERE/../../build/drivers/machnet-nicd}
MN_TENANT=${MN_TENANT:-$HERE/../../build/tests/integration/mn_test_tenant}
MN_CTL=${MN_CTL:-$HERE/../../build/tools/machnetctl}

KIND=${1:-}
case $KIND in
    af_xdp) VDEV_DRV=net_af_xdp0 ;;
    af_packet) VDEV_DRV=net_af_packet0 ;;
    *)
        echo "usage: $0 af_xdp|af_packet" >&2
        exit 2
        ;;
esac

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
    diag "total $(elapsed)s ($KIND)"
    echo "1..$num"
    echo "$pass passed, $fail failed"
    if (( fail > 0 )); then exit 1; fi
    exit 0
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
# bed's trap (tb_trap) keeps it and runs it after its own teardown, which
# kills whatever is still running in the namespaces (nicd, tenants, peers).
TMP=$(mktemp -d /tmp/mn_nicd.XXXXXX)
RT=$TMP/rt                      # nicd's runtime dir (<= 70 chars)
mkdir -p "$RT"
cleanup() {
    local p
    # Safety net for our own background jobs (normally gone already).
    for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
    rm -rf -- "$TMP"
}
trap cleanup EXIT

for t in ip ethtool timeout python3 ping; do
    if ! command -v "$t" >/dev/null 2>&1; then nok "'$t' is installed"; finish; fi
done
for b in "$MN_NICD" "$MN_TENANT"; do
    if [[ ! -x $b ]]; then nok "binary $b exists"; finish; fi
done
HAVE_CTL=1
if [[ ! -x $MN_CTL ]]; then
    HAVE_CTL=0
    diag "machnetctl not found ($MN_CTL): every check that needs counters fails"
fi
# The interpreter itself, not a shim (pyenv): fast start, same in every netns.
PY=$(python3 -c 'import sys; print(sys.executable)')

# shellcheck source=../netns/testbed.sh
. "$TB"

# ---------------------------------------------------------------------------
# Kernel peer and JSON helper (python3).
cat >"$TMP/peer.py" <<'PYEOF'
import argparse, collections, json, os, socket, struct, sys, time

RAMP = bytes(j & 0xff for j in range(256 + 2048))

def payload(seq, size):
    if size < 8:
        return bytes((0xa5 + i) & 0xff for i in range(size))
    s = (seq + 8) & 0xff
    return struct.pack('<II', seq & 0xffffffff, size) + RAMP[s:s + size - 8]

def size_of(seq, lo, hi):
    return lo + seq % (hi - lo + 1)

def key_of(seq, size):
    return (seq, size) if size >= 8 else (None, size)

def cmd_send(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    targets = []
    for t in a.target:
        port, count = t.split(':')
        targets.append([int(port), int(count), 0])
    sent = 0
    while any(t[2] < t[1] for t in targets):
        for t in targets:
            if t[2] < t[1]:
                seq = a.seq0 + t[2]
                s.sendto(payload(seq, size_of(seq, a.min, a.max)), (a.dst, t[0]))
                t[2] += 1
                sent += 1
                if a.pace and sent % a.pace == 0:
                    time.sleep(0.002)
    print('SENT %d' % sent)

def cmd_recv(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)    # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(('0.0.0.0', a.port))
    open(a.ready, 'w').close()
    expect = collections.Counter(key_of(q, size_of(q, a.min, a.max)) for q in range(a.count))
    got = collections.Counter()
    bad = n = 0
    end = time.monotonic() + a.timeout
    while n < a.count or a.count == 0:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        n += 1
        if len(d) < 8:
            if d != payload(0, len(d)):
                bad += 1
                continue
            got[(None, len(d))] += 1
            continue
        seq, size = struct.unpack_from('<II', d)
        if size != len(d) or d != payload(seq, size):
            bad += 1
            continue
        got[(seq, size)] += 1
    ok = sum(min(c, expect[k]) for k, c in got.items())
    missing = sum((expect - got).values())
    extra = sum((got - expect).values())
    print('RESULT got=%d ok=%d bad=%d missing=%d extra=%d' % (n, ok, bad, missing, extra))
    sys.exit(0 if ok == a.count and bad == 0 and extra == 0 else 1)

def cmd_get(a):
    # PATH: dotted keys; name[key] picks the element of list `name` whose
    # "name" is key, name[3] the fourth element.
    try:
        j = json.load(sys.stdin)
    except ValueError as e:
        print('bad JSON: %s' % e, file=sys.stderr)
        sys.exit(1)
    rc = 0
    for path in a.path:
        v = j
        try:
            for part in path.split('.'):
                if '[' in part:
                    name, sel = part[:-1].split('[')
                    v = v[name]
                    v = v[int(sel)] if sel.isdigit() else next(x for x in v if x.get('name') == sel)
                else:
                    v = v[part]
        except (KeyError, IndexError, TypeError, StopIteration, ValueError):
            print('MISSING')
            rc = 1
            continue
        print(json.dumps(v) if not isinstance(v, str) else v)
    sys.exit(rc)

def cmd_nonzero(a):
    # Every nonzero counter, flattened, on one line (for diagnostics).
    j = json.load(sys.stdin)
    out = []
    def walk(p, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(p + '.' + k if p else k, x)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                n = x.get('name', str(i)) if isinstance(x, dict) else str(i)
                walk('%s[%s]' % (p, n), x)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v and \
                not p.startswith('nicd.'):
            out.append('%s=%s' % (p, v))
    walk('', j)
    print(' '.join(out))

p = argparse.ArgumentParser()
sub = p.add_subparsers(dest='cmd', required=True)
q = sub.add_parser('send')
q.add_argument('--dst', required=True)
q.add_argument('--target', action='append', required=True, help='PORT:COUNT')
q.add_argument('--min', type=int, default=1)
q.add_argument('--max', type=int, default=1472)
q.add_argument('--seq0', type=int, default=0)
q.add_argument('--pace', type=int, default=32, help='pause 2 ms every N datagrams')
q.set_defaults(f=cmd_send)
q = sub.add_parser('recv')
q.add_argument('--port', type=int, required=True)
q.add_argument('--count', type=int, required=True)
q.add_argument('--min', type=int, default=1)
q.add_argument('--max', type=int, default=1472)
q.add_argument('--timeout', type=float, default=20)
q.add_argument('--ready', required=True)
q.set_defaults(f=cmd_recv)
q = sub.add_parser('get')
q.add_argument('path', nargs='+')
q.set_defaults(f=cmd_get)
q = sub.add_parser('nonzero')
q.set_defaults(f=cmd_nonzero)
a = p.parse_args()
a.f(a)
PYEOF

peer() {    # HOST ARGS... : run peer.py in host HOST, at most 60 s
    local h=$1
    shift
    tb_exec "$h" timeout -k 2 60 "$PY" "$TMP/peer.py" "$@"
}

# ---------------------------------------------------------------------------
# nicd, machnetctl, tenants.
NICD_PID=""
NICD_CFG=$TMP/nicd.ini
NICD_LOG=$RT/nicd.log

write_cfg() {   # FILE [EXTRA [nicd] LINE]
    cat >"$1" <<EOF
[nicd]
device = $VDEV_DRV,iface=$TB_IF_1
eal_args = --no-huge -m 256 --log-level=lib.eal:error
file_prefix = $TB_FILE_PREFIX_1
ip = $TB_IP_1/$TB_PREFIXLEN
runtime_dir = $RT
poll_mode = adaptive
${2:-}

[tenant.t1]
uid = 0
ip = $TB_IP_1
ports = 5000-5010

[tenant.t2]
uid = 0
ip = $TB_IP_1
ports = 6000-6010
EOF
}

sock_id() { stat -c '%i %.9Y' "$RT/nicd.sock" 2>/dev/null || echo none; }

log_tail() {    # FILE [LINES]
    diag "--- tail of $(basename "$1") ---"
    tail -n "${2:-15}" "$1" 2>/dev/null | grep -v '^libxdp\|^libbpf' | sed 's/^/#   /'
}

# Starts nicd in host 1 and waits (10 s) for a new nicd.sock. Returns 1 if
# nicd died or no socket came.
start_nicd() {
    local old
    old=$(sock_id)
    echo "=== start $(date +%T.%N)" >>"$NICD_LOG"
    # Not tb_exec (a shell function: $! would be a subshell): `ip netns
    # exec` execs the command, so $! is nicd itself.
    ip netns exec "$TB_NS_1" "$MN_NICD" -c "$NICD_CFG" >>"$NICD_LOG" 2>&1 &
    NICD_PID=$!
    for _ in $(seq 1 100); do
        if [[ -S $RT/nicd.sock && $(sock_id) != "$old" ]]; then return 0; fi
        if ! kill -0 "$NICD_PID" 2>/dev/null; then
            diag "nicd exited during start-up"
            log_tail "$NICD_LOG"
            return 1
        fi
        sleep 0.1
    done
    diag "no new $RT/nicd.sock after 10 s"
    log_tail "$NICD_LOG"
    return 1
}

# stop_nicd SIGNAL: signal nicd and reap it (5 s, then SIGKILL). Sets NICD_RC.
NICD_RC=""
stop_nicd() {
    NICD_RC=""
    if [[ -z $NICD_PID ]]; then return 1; fi
    {   # stderr off: no "Killed" job notice from bash
        kill -"$1" "$NICD_PID"
        for _ in $(seq 1 50); do
            if ! kill -0 "$NICD_PID"; then break; fi
            sleep 0.1
        done
        if kill -0 "$NICD_PID"; then
            diag "nicd still running 5 s after SIG$1: SIGKILL"
            kill -KILL "$NICD_PID"
        fi
        wait "$NICD_PID"
        NICD_RC=$?
    } 2>/dev/null
    NICD_PID=""
    return 0
}

STATS=$TMP/stats.json
stats() {   # fetch the counters into $STATS; 1 on failure
    rm -f "$STATS"
    if (( !HAVE_CTL )); then return 1; fi
    tb_exec 1 timeout -k 1 5 "$MN_CTL" --runtime-dir "$RT" stats --json >"$STATS" 2>"$TMP/ctl.err"
}
sget() {    # PATH... : print values from $STATS
    if [[ ! -s $STATS ]]; then return 1; fi
    "$PY" "$TMP/peer.py" get "$@" <"$STATS" 2>/dev/null
}
stat1() {   # PATH : fetch and print one integer, or nothing
    local v
    stats || return 1
    v=$(sget "$1") || return 1
    [[ $v =~ ^[0-9]+$ ]] || return 1
    echo "$v"
}
stats_diag() {  # print every nonzero counter
    if stats; then
        diag "stats: $("$PY" "$TMP/peer.py" nonzero <"$STATS" 2>&1)"
    else
        diag "stats unavailable: $(head -c 300 "$TMP/ctl.err" 2>/dev/null)"
    fi
}
# settle PATH MIN : poll PATH until it is >= MIN and unchanged for 0.6 s
# (at most 8 s); prints the last value.
settle() {
    local v last="" same=0
    for _ in $(seq 1 40); do
        v=$(stat1 "$1") || v=""
        if [[ -n $v && $v -ge $2 ]]; then
            if [[ $v == "$last" ]]; then
                same=$((same + 1))
                if (( same >= 3 )); then break; fi
            else
                same=0
            fi
        fi
        last=$v
        sleep 0.2
    done
    echo "$last"
}
# wait_stat PATH VALUE SECS : poll until PATH == VALUE (string compare)
wait_stat() {
    for _ in $(seq 1 $(($3 * 5))); do
        if stats && [[ $(sget "$1") == "$2" ]]; then return 0; fi
        sleep 0.2
    done
    return 1
}

# start_tenant OUT SECS ARGS... : mn_test_tenant in host 1 under timeout SECS,
# stdout+stderr to OUT; waits (10 s) for READY. Sets TPID (the pid of
# `timeout`, which passes SIGTERM on to the tenant); 1 if no READY.
TPID=""
start_tenant() {
    local out=$1 secs=$2
    shift 2
    ip netns exec "$TB_NS_1" timeout -k 2 "$secs" "$MN_TENANT" --runtime-dir "$RT" "$@" \
        >"$out" 2>&1 &
    TPID=$!
    for _ in $(seq 1 100); do
        if grep -q '^READY' "$out" 2>/dev/null; then return 0; fi
        if ! kill -0 "$TPID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    diag "tenant ($*) never printed READY: $(tr '\n' ' ' <"$out" | head -c 400)"
    return 1
}
result() { grep '^RESULT' "$1" 2>/dev/null | tail -n 1; }
field() {   # FILE KEY : value of KEY=... in the RESULT line
    result "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# ---------------------------------------------------------------------------
diag "machnet-nicd on $VDEV_DRV"
if ! tb_up 2 --dpdk-hosts 1 >/dev/null; then
    nok "tb_up 2 --dpdk-hosts 1"
    finish
fi
diag "test bed $TB_PREFIX: host 1 $TB_IP_1 ($TB_MAC_1, nicd), host 2 $TB_IP_2 (kernel)"
write_cfg "$NICD_CFG"
if start_nicd; then
    ok "nicd starts on $VDEV_DRV,iface=$TB_IF_1 and listens on nicd.sock"
else
    nok "nicd starts on $VDEV_DRV,iface=$TB_IF_1 and listens on nicd.sock"
    finish
fi
if stats; then
    ok "machnetctl stats --json answers"
    diag "nicd: $(sget nicd.version nicd.driver nicd.device nicd.mac nicd.mtu nicd.poll_mode | tr '\n' ' ')"
    check "stats: nicd.pid is the process started ($NICD_PID, $(cat "/proc/$NICD_PID/comm" 2>/dev/null))" \
        test "$(sget nicd.pid)" = "$NICD_PID"
else
    nok "machnetctl stats --json answers ($(head -c 200 "$TMP/ctl.err" 2>/dev/null))"
fi

# ---------------------------------------------------------------------------
diag "1. ARP and ping ($(elapsed)s)"
tb_exec 2 ip neigh flush dev "$TB_IF_2" >/dev/null 2>&1
peer 2 send --dst "$TB_IP_1" --target 9:1 --min 16 --max 16 >/dev/null
neigh=""
for _ in $(seq 1 30); do
    neigh=$(tb_exec 2 ip neigh show "$TB_IP_1" dev "$TB_IF_2" 2>/dev/null)
    if [[ $neigh == *"lladdr $TB_MAC_1"* ]]; then break; fi
    sleep 0.1
done
check "host 2 learned nicd's MAC by ARP ($neigh)" \
    test -n "$(grep -F "lladdr $TB_MAC_1" <<<"$neigh" | grep -v 'FAILED\|INCOMPLETE')"
if tb_exec 2 timeout 15 ping -q -c 3 -W 1 -i 0.2 "$TB_IP_1" >"$TMP/ping.out" 2>&1; then
    ok "ping -c 3 $TB_IP_1 from host 2 is answered"
else
    nok "ping -c 3 $TB_IP_1 from host 2 is answered: $(tail -n 2 "$TMP/ping.out" | tr '\n' ' ')"
fi
if stats; then
    read -r arp_rx arp_reply icmp_tx < <(sget arp.rx arp.reply_tx icmp_echo_tx | tr '\n' ' ')
    check "stats count ARP (rx $arp_rx, reply_tx $arp_reply) and echo replies ($icmp_tx >= 3)" \
        test "${arp_rx:-0}" -ge 1 -a "${arp_reply:-0}" -ge 1 -a "${icmp_tx:-0}" -ge 3
else
    nok "stats count ARP and echo replies (no stats)"
fi

# ---------------------------------------------------------------------------
diag "2. kernel -> tenant, sizes 1..1472 ($(elapsed)s)"
N=1472
r0=$(stat1 'tenants[t1].rx_pkts') || r0=""
if start_tenant "$TMP/c2.out" 40 --mode recv --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --count $N --timeout-ms 25000; then
    peer 2 send --dst "$TB_IP_1" --target "5000:$N" --min 1 --max 1472 >/dev/null
    wait "$TPID" 2>/dev/null; rc=$?
    res=$(result "$TMP/c2.out")
    if [[ $rc == 0 && $res == "RESULT ok=$N bad=0"* ]]; then
        ok "tenant t1 received $N datagrams of 1..1472 bytes, all verified ($res)"
    else
        nok "tenant t1 received $N datagrams of 1..1472 bytes, all verified (rc $rc, ${res:-no RESULT})"
        stats_diag
    fi
    if [[ -n $r0 ]]; then
        r1=$(settle 'tenants[t1].rx_pkts' $((r0 + N)))
        check "stats: t1 rx_pkts +$N (+$((${r1:-0} - r0)))" test "${r1:-0}" -eq $((r0 + N))
    else
        nok "stats: t1 rx_pkts +$N (no stats)"
    fi
else
    nok "tenant t1 registers (recv)"
fi

# ---------------------------------------------------------------------------
diag "3. tenant -> kernel, sizes 1..1472 ($(elapsed)s)"
rm -f "$TMP/c3.ready"
peer 2 recv --port 7000 --count $N --min 1 --max 1472 --timeout 25 --ready "$TMP/c3.ready" \
    >"$TMP/c3.peer" 2>&1 &
ppid=$!
for _ in $(seq 1 50); do if [[ -e $TMP/c3.ready ]]; then break; fi; sleep 0.1; done
if start_tenant "$TMP/c3.out" 40 --mode send --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --to "$TB_IP_2:7000" --count $N --min-size 1 --max-size 1472 --timeout-ms 10000; then
    wait "$TPID" 2>/dev/null; rc=$?
    res=$(result "$TMP/c3.out")
    check "tenant t1 sent $N datagrams, none refused (rc $rc, ${res:-no RESULT})" \
        test "$rc" = 0 -a "$res" = "RESULT sent=$N refused=0"
else
    nok "tenant t1 registers (send)"
fi
wait "$ppid" 2>/dev/null; prc=$?
pres=$(result "$TMP/c3.peer")
if [[ $prc == 0 ]]; then
    ok "host 2 received all $N, payloads and sizes verified ($pres)"
else
    nok "host 2 received all $N, payloads and sizes verified (rc $prc, ${pres:-$(tail -n 3 "$TMP/c3.peer")})"
    diag "host 2 $(tb_exec 2 grep '^Udp:' /proc/net/snmp | tail -n 1)"
    stats_diag
fi

# ---------------------------------------------------------------------------
diag "4. unclaimed ports ($(elapsed)s)"
K1=37 K2=23 K3=5
if start_tenant "$TMP/c4.out" 30 --mode recv --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --count $K3 --timeout-ms 15000; then
    n0=$(stat1 port.drops.rx_no_port) || n0=""
    peer 2 send --dst "$TB_IP_1" --target "5001:$K1" --target "7777:$K2" --target "5000:$K3" \
        --min 8 --max 200 >/dev/null
    wait "$TPID" 2>/dev/null; rc=$?
    check "the tenant on port 5000 gets its $K3 ($(result "$TMP/c4.out"))" \
        test "$rc" = 0 -a "$(field "$TMP/c4.out" ok)" = $K3
    if [[ -n $n0 ]]; then
        n1=$(settle port.drops.rx_no_port $((n0 + K1 + K2)))
        check "rx_no_port +$((K1 + K2)) for $K1 to 5001 (t1's, unclaimed) and $K2 to 7777 (nobody's) (+$((${n1:-0} - n0)))" \
            test "${n1:-0}" -eq $((n0 + K1 + K2))
    else
        nok "rx_no_port counts datagrams to unclaimed ports (no stats)"
    fi
else
    nok "tenant t1 registers (recv, case 4)"
fi

# ---------------------------------------------------------------------------
diag "5. spoofed source ($(elapsed)s)"
if stats; then
    read -r sip0 smac0 < <(sget 'tenants[t1].drops.tx_src_ip' 'tenants[t1].drops.tx_src_mac' | tr '\n' ' ')
else
    sip0="" smac0=""
fi
rm -f "$TMP/c5.ready"
peer 2 recv --port 7000 --count 0 --timeout 2 --ready "$TMP/c5.ready" >"$TMP/c5.peer" 2>&1 &
ppid=$!
for _ in $(seq 1 50); do if [[ -e $TMP/c5.ready ]]; then break; fi; sleep 0.1; done
if start_tenant "$TMP/c5.out" 20 --mode spoof --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --to "$TB_IP_2:7000" --spoof-ip "$TB_IP_2"; then
    wait "$TPID" 2>/dev/null; rc=$?
    res=$(result "$TMP/c5.out")
    check "nicd refuses both spoofed frames ($res)" \
        test "$rc" = 0 -a "$res" = "RESULT sent=2 refused=2"
else
    nok "tenant t1 registers (spoof)"
fi
wait "$ppid" 2>/dev/null
check "host 2 received none of them ($(result "$TMP/c5.peer"))" \
    test "$(field "$TMP/c5.peer" got)" = 0
if [[ $sip0 =~ ^[0-9]+$ && $smac0 =~ ^[0-9]+$ ]]; then
    sip1=$(settle 'tenants[t1].drops.tx_src_ip' $((sip0 + 1)))
    smac1=$(settle 'tenants[t1].drops.tx_src_mac' $((smac0 + 1)))
    check "stats: t1 tx_src_ip +1 (+$((${sip1:-0} - sip0)))" test "${sip1:-0}" -eq $((sip0 + 1))
    check "stats: t1 tx_src_mac +1 (+$((${smac1:-0} - smac0)))" test "${smac1:-0}" -eq $((smac0 + 1))
else
    nok "stats: t1 tx_src_ip and tx_src_mac count the refusals (no stats)"
fi

# ---------------------------------------------------------------------------
diag "6. two tenants at once ($(elapsed)s)"
N1=300 N2=500
a0=$(stat1 'tenants[t1].rx_pkts') || a0=""
b0=$(sget 'tenants[t2].rx_pkts') || b0=""
t1ok=0
if start_tenant "$TMP/c6a.out" 40 --mode recv --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --count $N1 --timeout-ms 25000; then
    t1pid=$TPID t1ok=1
fi
if start_tenant "$TMP/c6b.out" 40 --mode recv --tenant t2 --ip "$TB_IP_1" --port 6000 \
        --count $N2 --timeout-ms 25000 && (( t1ok )); then
    t2pid=$TPID
    peer 2 send --dst "$TB_IP_1" --target "5000:$N1" --target "6000:$N2" >/dev/null
    wait "$t1pid" 2>/dev/null; rc1=$?
    wait "$t2pid" 2>/dev/null; rc2=$?
    check "t1 (port 5000) got its $N1, verified (rc $rc1, $(result "$TMP/c6a.out"))" \
        test "$rc1" = 0 -a "$(field "$TMP/c6a.out" ok)" = $N1 -a "$(field "$TMP/c6a.out" bad)" = 0
    check "t2 (port 6000) got its $N2, verified (rc $rc2, $(result "$TMP/c6b.out"))" \
        test "$rc2" = 0 -a "$(field "$TMP/c6b.out" ok)" = $N2 -a "$(field "$TMP/c6b.out" bad)" = 0
    if [[ $a0 =~ ^[0-9]+$ && $b0 =~ ^[0-9]+$ ]]; then
        a1=$(settle 'tenants[t1].rx_pkts' $((a0 + N1)))
        b1=$(settle 'tenants[t2].rx_pkts' $((b0 + N2)))
        check "stats: t1 rx_pkts +$N1 (+$((${a1:-0} - a0))), t2 rx_pkts +$N2 (+$((${b1:-0} - b0)))" \
            test "${a1:-0}" -eq $((a0 + N1)) -a "${b1:-0}" -eq $((b0 + N2))
    else
        nok "stats: per-tenant rx_pkts (no stats)"
    fi
else
    nok "tenants t1 and t2 register at once"
fi

# ---------------------------------------------------------------------------
diag "8. idle CPU ($(elapsed)s)"
if start_tenant "$TMP/c8.out" 30 --mode recv --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --count 1 --timeout-ms 20000; then
    sleep 0.5
    hz=$(getconf CLK_TCK)
    # utime + stime (fields 14, 15 of /proc/PID/stat; comm has no blanks)
    t_a=$(awk '{print $14 + $15}' "/proc/$NICD_PID/stat" 2>/dev/null)
    w_a=$(date +%s.%N)
    sleep 3
    t_b=$(awk '{print $14 + $15}' "/proc/$NICD_PID/stat" 2>/dev/null)
    w_b=$(date +%s.%N)
    kill -TERM "$TPID" 2>/dev/null
    wait "$TPID" 2>/dev/null
    if [[ -n $t_a && -n $t_b ]]; then
        cpu=$(awk -v a="$t_a" -v b="$t_b" -v x="$w_a" -v y="$w_b" -v hz="$hz" \
            'BEGIN { printf "%.2f", (b - a) / hz / (y - x) * 100 }')
        diag "nicd idle CPU (adaptive, 1 tenant registered, no traffic): $cpu % of a core over $(awk -v x="$w_a" -v y="$w_b" 'BEGIN { printf "%.2f", y - x }') s"
        check "nicd idle CPU $cpu % < 10 % (target 2 %)" \
            awk -v c="$cpu" 'BEGIN { exit !(c < 10) }'
    else
        nok "nicd idle CPU (cannot read /proc/$NICD_PID/stat)"
    fi
else
    nok "tenant t1 registers (idle)"
fi

# ---------------------------------------------------------------------------
diag "7. nicd killed and restarted under a running tenant ($(elapsed)s)"
N1=400 N2=600
if start_tenant "$TMP/c7.out" 90 --mode recv --tenant t1 --ip "$TB_IP_1" --port 5000 \
        --count $((N1 + N2)) --timeout-ms 60000; then
    tp7=$TPID
    d0=$(stat1 'tenants[t1].rx_pkts') || d0=""
    gen0=$(sget nicd.generation 2>/dev/null) || gen0=""
    peer 2 send --dst "$TB_IP_1" --target "5000:$N1" --seq0 0 >/dev/null
    if [[ -n $d0 ]]; then
        d1=$(settle 'tenants[t1].rx_pkts' $((d0 + N1)))
        check "first $N1 delivered before the kill (stats +$((${d1:-0} - d0)))" \
            test "${d1:-0}" -eq $((d0 + N1))
    else
        sleep 1
        nok "first $N1 delivered before the kill (no stats)"
    fi
    old_pid=$NICD_PID
    stop_nicd KILL
    check "nicd killed with SIGKILL (status $NICD_RC)" test "$NICD_RC" = 137
    if start_nicd; then
        ok "nicd restarts with the same config (pid $old_pid -> $NICD_PID)"
        if (( HAVE_CTL )); then
            if wait_stat 'tenants[t1].connected' true 10; then
                ok "tenant t1 re-registered with the new nicd"
            else
                nok "tenant t1 re-registered with the new nicd within 10 s"
                log_tail "$NICD_LOG"
            fi
            gen1=$(sget nicd.generation)
            check "the new nicd has a new generation ($gen0 -> $gen1)" \
                test -n "$gen1" -a "$gen1" != "$gen0" -a "$gen1" != MISSING
        else
            sleep 2
            nok "tenant t1 re-registered with the new nicd (no stats)"
        fi
        peer 2 send --dst "$TB_IP_1" --target "5000:$N2" --seq0 $N1 >/dev/null
    else
        nok "nicd restarts with the same config"
    fi
    wait "$tp7" 2>/dev/null; rc=$?
    res=$(result "$TMP/c7.out")
    rec=$(field "$TMP/c7.out" reconnects)
    if [[ $rc == 0 && $res == "RESULT ok=$((N1 + N2)) bad=0 "* && ${rec:-0} -ge 1 ]]; then
        ok "the tenant got all $((N1 + N2)) across the restart ($res)"
    else
        nok "the tenant got all $((N1 + N2)) across the restart (rc $rc, ${res:-no RESULT})"
        log_tail "$TMP/c7.out" 5
        stats_diag
    fi
    if tb_exec 2 timeout 10 ping -q -c 1 -W 2 "$TB_IP_1" >/dev/null 2>&1; then
        ok "the restarted nicd answers ping"
    else
        nok "the restarted nicd answers ping"
    fi
else
    nok "tenant t1 registers (restart)"
fi

# ---------------------------------------------------------------------------
diag "9. command line and config errors ($(elapsed)s)"
if stats; then
    check "stats: no tenant left connected ($(sget 'tenants[t1].connected' 'tenants[t2].connected' | tr '\n' ' '))" \
        test "$(sget 'tenants[t1].connected' 'tenants[t2].connected' | tr '\n' ' ')" = "false false "
fi
stop_nicd TERM
check "nicd exits 0 on SIGTERM (status $NICD_RC)" test "$NICD_RC" = 0
check "no nicd.sock left after a clean exit" test ! -e "$RT/nicd.sock"

timeout 10 "$MN_NICD" --help >"$TMP/help.out" 2>&1; rc=$?
check "machnet-nicd --help exits 0 (rc $rc) and mentions --config" \
    test "$rc" = 0 -a -n "$(grep -e '--config' "$TMP/help.out")"
write_cfg "$TMP/bad.ini" "mtu = 70000"
tb_exec 1 timeout 10 "$MN_NICD" -c "$TMP/bad.ini" >"$TMP/bad.out" 2>&1; rc=$?
msg=$(grep -m1 'mtu' "$TMP/bad.out")
check "a config with mtu = 70000 is refused (rc $rc): $msg" \
    test "$rc" != 0 -a "$rc" != 124 -a -n "$msg"
check "... the message names the file and the key" \
    bash -c '[[ $1 == *"$2"* && $1 == *"mtu"* && $1 == *70000* ]]' _ "$msg" "$TMP/bad.ini"

if (( fail > 0 )); then log_tail "$NICD_LOG" 40; fi
finish
