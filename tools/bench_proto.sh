#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted code for bash -c
# bench_proto.sh: machnet (msg_gen over machnet-proto + machnet-nicd) against
# the kernel's UDP, in one run, at the same message size and window.
#
#   machnet:  msg_gen client (host 1) -> proto -> nicd -> veth -> nicd -> proto -> msg_gen server (host 2)
#   kernel:   sockperf ping-pong (host 1) <-> veth <-> sockperf server (host 2)
#             and, at window 1, udp_pingpong ping <-> udp_pingpong echo
#
# Two test beds (tests/netns/testbed.sh), one after the other: a kernel one
# (both hosts with kernel addresses) and a machnet one (both DPDK-owned,
# nicd on net_af_xdp --no-huge, one machnet-proto per host, tenant
# "default"). Prints, per size and window: messages per second, RTT
# p50/p99/p99.9 in microseconds, and the CPU each process used over the row
# (utime+stime from /proc/PID/stat, in % of one core; the client's own from
# its summary, or from its parent's cutime+cstime). "mean" is the mean RTT:
# with rare long stalls it shows what the percentiles hide (the rate does too).
#
# Windows: msg_gen keeps W messages in flight per flow (a sliding window;
# RTT per message). sockperf's "-b W" is burst-synchronous: it sends W
# messages, waits for all W replies, and its RTT is that of the burst (so
# at W > 1 its RTT covers W messages, msg_gen's one). udp_pingpong only does
# window 1. sockperf is optional (apt-get install sockperf); without it the
# kernel baseline is udp_pingpong at window 1 only.
#
# Needs root and a build (MN_BUILD, default ./build). Options:
#   --duration S      seconds per row (default 5)
#   --sizes "A B"     message sizes in bytes (default "64 1024")
#   --windows "A B"   messages in flight (default "1 8")
#   --proto-args "…"  extra machnet-proto options (e.g. "--cc fixed")
#   --no-kernel       machnet rows only
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MN_BUILD:-$top/build}
duration=5 sizes="64 1024" windows="1 8" proto_args="" kernel=1
while [ $# -gt 0 ]; do
	case $1 in
	--duration) duration=$2; shift 2 ;;
	--sizes) sizes=$2; shift 2 ;;
	--windows) windows=$2; shift 2 ;;
	--proto-args) proto_args=$2; shift 2 ;;
	--no-kernel) kernel=0; shift ;;
	-h|--help) sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_proto.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
for b in drivers/machnet-nicd servers/machnet-proto tools/msg_gen tools/udp_pingpong; do
	[ -x "$build/$b" ] || { echo "bench_proto.sh: $build/$b missing: build first (ninja -C $build)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench_proto.sh: run as root (network namespaces)" >&2; exit 2; }
have_sockperf=0
command -v sockperf >/dev/null 2>&1 && have_sockperf=1
# shellcheck source=../tests/netns/testbed.sh
. "$top/tests/netns/testbed.sh"

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pct() { # TICKS SECONDS -> "N%" of one core
	awk -v t="$1" -v hz="$hz" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f%%", 100 * t / hz / s; else print "?" }'
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

out=$(mktemp -d /tmp/mn-bench-proto.XXXXXX)
trap 'rm -rf "$out"' EXIT
rows=$out/rows
: >"$rows"
row() { # SIZE WINDOW PATH RATE P50 P99 P999 MEAN CPU
	printf '%7s %4s  %-22s %10s %9s %9s %9s %9s   %s\n' "$@" >>"$rows"
}

# ---------------------------------------------------------------------------
kernel_rows() {
	tb_up 2 >/dev/null || { echo "bench_proto.sh: kernel test bed failed" >&2; return 1; }
	local size win res rate p50 p99 p999 mean t0 secs e0 e1 cli srv spid epid
	ip netns exec "$TB_NS_2" "$build/tools/udp_pingpong" echo --port 7001 --duration 3600 &
	epid=$!
	if [ "$have_sockperf" = 1 ]; then
		ip netns exec "$TB_NS_2" sockperf server -i "$TB_IP_2" -p 7000 >"$out/sp_srv.log" 2>&1 &
		spid=$!
	fi
	sleep 0.5
	for size in $sizes; do
		for win in $windows; do
			if [ "$win" = 1 ]; then
				# udp_pingpong: blocking sockets, one datagram at a time.
				e0=$(ticks "$epid") t0=$(now)
				res=$(ip netns exec "$TB_NS_1" "$build/tools/udp_pingpong" ping \
					--to "$TB_IP_2:7001" --count 30000 --size "$size" | grep RESULT)
				secs=$(since "$t0") e1=$(ticks "$epid")
				field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$res"; }
				row "$size" "$win" "kernel udp_pingpong" "$(field rate)" "$(field p50_us)" \
					"$(field p99_us)" "$(field p999_us)" - \
					"client $(field cpu_pct)%, echo $(pct $((e1 - e0)) "$secs")"
			fi
			[ "$have_sockperf" = 1 ] || continue
			# sockperf: the client's CPU from its parent's cutime+cstime.
			e0=$(ticks "$spid") t0=$(now)
			ip netns exec "$TB_NS_1" bash -c 'sockperf ping-pong -i "$1" -p 7000 -m "$2" -t "$3" \
				--full-rtt -b "$4" >"$5" 2>&1; awk "{print \$16 + \$17}" /proc/$$/stat' \
				_ "$TB_IP_2" "$size" "$duration" "$win" "$out/sp.log" >"$out/sp.cpu"
			secs=$(since "$t0") e1=$(ticks "$spid")
			cli=$(cat "$out/sp.cpu")
			rate=$(sed -n 's/.*Valid Duration\] RunTime=\([0-9.]*\) sec; SentMessages=[0-9]*; ReceivedMessages=\([0-9]*\).*/\2 \1/p' "$out/sp.log" |
				awk '{ if ($2 > 0) printf "%.0f", $1 / $2 }')
			pq() { sed -n "s/.*percentile $1 = *\\([0-9.]*\\).*/\\1/p" "$out/sp.log" | head -n 1; }
			p50=$(pq 50.000) p99=$(pq 99.000) p999=$(pq 99.900)
			mean=$(sed -n 's/.*avg-rtt=\([0-9.]*\).*/\1/p' "$out/sp.log" | head -n 1)
			srv=$(pct $((e1 - e0)) "$secs")
			row "$size" "$win" "kernel sockperf -b $win" "${rate:-?}" "${p50:-?}" "${p99:-?}" "${p999:-?}" "${mean:-?}" \
				"client $(pct "${cli:-0}" "$secs"), server $srv"
		done
	done
	kill "$epid" ${spid:-} 2>/dev/null
	wait 2>/dev/null
	tb_down
}

# ---------------------------------------------------------------------------
machnet_rows() {
	tb_up 2 --dpdk-hosts 1,2 >/dev/null || { echo "bench_proto.sh: machnet test bed failed" >&2; return 1; }
	local i ns rt size win t0 secs srvpid
	local -a nicd proto
	for i in 1 2; do
		ns=TB_NS_$i rt=$out/rt$i
		tb_machnet_configs "$i" "$rt" "$rt/tenant.ini" || return 1
		ip netns exec "${!ns}" "$build/drivers/machnet-nicd" -c "$rt/nicd.ini" >"$rt/nicd.log" 2>&1 &
		nicd[i]=$!
		for _ in $(seq 100); do [ -S "$rt/nicd.sock" ] && break; sleep 0.1; done
		# shellcheck disable=SC2086  # proto_args: words
		ip netns exec "${!ns}" "$build/servers/machnet-proto" -c "$rt/tenant.ini" $proto_args \
			>"$rt/proto.log" 2>&1 &
		proto[i]=$!
		for _ in $(seq 100); do [ -S "$rt/default.sock" ] && break; sleep 0.1; done
	done
	sleep 1
	MACHNET_RUNTIME_DIR=$out/rt2 MACHNET_TENANT=default ip netns exec "$TB_NS_2" \
		"$build/tools/msg_gen" --local_ip "$TB_IP_2" --quiet >"$out/srv.log" 2>&1 &
	srvpid=$!
	sleep 0.5
	for size in $sizes; do
		for win in $windows; do
			declare -A c0 c1
			for p in "${nicd[1]}" "${nicd[2]}" "${proto[1]}" "${proto[2]}" "$srvpid"; do
				c0[$p]=$(ticks "$p")
			done
			t0=$(now)
			MACHNET_RUNTIME_DIR=$out/rt1 MACHNET_TENANT=default ip netns exec "$TB_NS_1" \
				timeout -k 5 $((duration + 60)) "$build/tools/msg_gen" --local_ip "$TB_IP_1" \
				--remote_ip "$TB_IP_2" --msg_size "$size" --msg_window "$win" \
				--duration "$duration" --json --quiet >"$out/mg.json" 2>"$out/mg.err"
			secs=$(since "$t0")
			for p in "${nicd[1]}" "${nicd[2]}" "${proto[1]}" "${proto[2]}" "$srvpid"; do
				c1[$p]=$(ticks "$p")
			done
			j() { python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2].split("."): v = v[k]
    print(v if not isinstance(v, float) else ("%.1f" % v))
except Exception: print("?")' "$out/mg.json" "$1"; }
			local ok
			ok=$(j ok)
			d() { pct $((c1[$1] - c0[$1])) "$secs"; }
			row "$size" "$win" "machnet msg_gen$([ "$ok" = True ] || echo ' FAILED')" \
				"$(j rate_msgs | cut -d. -f1)" "$(j rtt_us.p50)" "$(j rtt_us.p99)" "$(j rtt_us.p999)" "$(j rtt_us.mean)" \
				"client $(j cpu.pct | cut -d. -f1)%, server $(d "$srvpid"), proto $(d "${proto[1]}")+$(d "${proto[2]}"), nicd $(d "${nicd[1]}")+$(d "${nicd[2]}")"
			if [ "$ok" != True ]; then
				echo "bench_proto.sh: msg_gen $size B window $win did not complete:" >&2
				tail -n 5 "$out/mg.err" >&2
			fi
		done
	done
	kill "$srvpid" 2>/dev/null
	wait "$srvpid" 2>/dev/null
	tb_down
}

echo "machnet-proto benchmark: $(nproc) CPUs ($(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -n 1)), kernel $(uname -r)"
echo "$duration s per row; sizes $sizes; windows $windows${proto_args:+; machnet-proto $proto_args}"
[ "$have_sockperf" = 1 ] || echo "sockperf not installed: kernel baseline is udp_pingpong at window 1 only"
if [ "$kernel" = 1 ]; then (kernel_rows); fi
(machnet_rows)
printf '\n%7s %4s  %-22s %10s %9s %9s %9s %9s   %s\n' size win path "msg/s" "p50 us" "p99 us" "p99.9 us" "mean us" \
	"cpu (% of one core, over the row)"
sort -s -n -k1,1 -k2,2 "$rows"
