#!/usr/bin/env bash
# bench_nicd.sh: machnet-nicd alone, against the kernel, in one run.
#
#   path "kernel":  udp_pingpong client (host 2) <-> veth <-> udp_pingpong echo (host 1)
#   path "nicd":    test tenant (host 1) <-> machnet-nicd <-> veth <-> udp_pingpong echo (host 2)
#
# One request in flight; prints rate and RTT p50/p99/p99.9 per size, with
# the CPU each process used. Needs root and a build (MN_BUILD, default
# ./build). Options:
#   --count N        round trips per row (default 20000)
#   --sizes "A B"    UDP payload sizes (default "64 1024")
#   --vdev KIND      af_xdp (default) or af_packet
#   --poll MODE      nicd poll mode: adaptive (default), yield, busy
#   --busy           kernel sockets poll instead of blocking (both paths)
#   --cpus "A B C"   pin client, nicd, echo to these cores (default: no pinning)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MN_BUILD:-$top/build}
count=20000 sizes="64 1024" vdev=af_xdp poll=adaptive busy="" cpus=""
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--sizes) sizes=$2; shift 2 ;;
	--vdev) vdev=$2; shift 2 ;;
	--poll) poll=$2; shift 2 ;;
	--busy) busy=--busy; shift ;;
	--cpus) cpus=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_nicd.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
for b in drivers/machnet-nicd tests/integration/mn_test_tenant tools/udp_pingpong; do
	[ -x "$build/$b" ] || { echo "bench_nicd.sh: $build/$b missing: build first (ninja -C $build)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench_nicd.sh: run as root (network namespaces)" >&2; exit 2; }
# shellcheck source=../tests/netns/testbed.sh
. "$top/tests/netns/testbed.sh"

read -r cpu_client cpu_nicd cpu_echo <<<"${cpus:-}"
pin() { # pin CORE CMD...: taskset when a core was given
	local core=$1; shift
	if [ -n "$core" ]; then taskset -c "$core" "$@"; else "$@"; fi
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

rows=()
row() { # row SIZE PATH RESULT CPU...
	rows+=("$(printf '%6s  %-7s %9s %9s %9s %9s   %s' "$1" "$2" "$(field rate "$3")" \
		"$(field p50_us "$3")" "$(field p99_us "$3")" "$(field p999_us "$3")" "$4")")
}

bench_kernel() { # size
	local size=$1 echo_pid t0 t1 res
	(
		tb_up 2 >/dev/null
		pin "$cpu_echo" ip netns exec "$TB_NS_1" "$build/tools/udp_pingpong" echo --port 7000 \
			$busy --duration 600 &
		sleep 0.3
		echo_pid=$(ip netns pids "$TB_NS_1" | head -n 1)
		t0=$(cpu_ticks "$echo_pid")
		res=$(pin "$cpu_client" ip netns exec "$TB_NS_2" "$build/tools/udp_pingpong" ping \
			--to "$TB_IP_1:7000" --count "$count" --size "$size" $busy)
		t1=$(cpu_ticks "$echo_pid")
		echo "$res"
		echo "ECHO_TICKS $((t1 - t0))"
	)
}

bench_nicd() { # size
	local size=$1
	(
		tb_up 2 --dpdk-hosts 1 >/dev/null
		rt=$(mktemp -d /tmp/mn-bench.XXXXXX)
		trap 'rm -rf "$rt"; tb_down' EXIT
		cat >"$rt/nicd.ini" <<-INI
		[nicd]
		device = net_${vdev}0,iface=$TB_IF_1
		eal_args = --no-huge -m 256 --log-level=lib.eal:error
		file_prefix = $TB_FILE_PREFIX_1
		ip = $TB_IP_1/24
		runtime_dir = $rt
		poll_mode = $poll

		[tenant.bench]
		uid = 0
		ip = $TB_IP_1
		ports = 5000
		INI
		pin "$cpu_nicd" ip netns exec "$TB_NS_1" "$build/drivers/machnet-nicd" -c "$rt/nicd.ini" \
			>"$rt/nicd.log" 2>&1 &
		for _ in $(seq 100); do [ -S "$rt/nicd.sock" ] && break; sleep 0.1; done
		pin "$cpu_echo" ip netns exec "$TB_NS_2" "$build/tools/udp_pingpong" echo --port 7000 \
			$busy --duration 600 &
		sleep 0.3
		nicd_pid=$(pgrep -f "machnet-nicd -c $rt/nicd.ini" | head -n 1)
		echo_pid=$(ip netns pids "$TB_NS_2" | head -n 1)
		n0=$(cpu_ticks "$nicd_pid") e0=$(cpu_ticks "$echo_pid")
		res=$(pin "$cpu_client" ip netns exec "$TB_NS_1" "$build/tests/integration/mn_test_tenant" \
			--mode pingpong --tenant bench --ip "$TB_IP_1" --port 5000 --runtime-dir "$rt" \
			--to "$TB_IP_2:7000" --count "$count" --min-size "$size" --max-size "$size" | tail -n 1)
		n1=$(cpu_ticks "$nicd_pid") e1=$(cpu_ticks "$echo_pid")
		echo "$res"
		echo "NICD_TICKS $((n1 - n0))"
		echo "ECHO_TICKS $((e1 - e0))"
	)
}

pct() { # ticks seconds -> percent of one core
	awk -v t="$1" -v hz="$hz" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f%%", 100 * t / hz / s; else print "?" }'
}

echo "machnet-nicd benchmark: $(nproc) CPUs ($(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -n 1))"
sockets=blocking
[ -z "$busy" ] || sockets=busy-polling
echo "vdev $vdev, nicd poll $poll, kernel sockets $sockets, $count round trips per row, 1 in flight${cpus:+, cores client/nicd/echo $cpus}"
for size in $sizes; do
	out=$(bench_kernel "$size")
	res=$(grep RESULT <<<"$out")
	secs=$(awk -v n="$(field rtts "$res")" -v r="$(field rate "$res")" 'BEGIN { print (r > 0 ? n / r : 0) }')
	row "$size" kernel "$res" "client $(field cpu_pct "$res")%, echo $(pct "$(awk '/ECHO_TICKS/ {print $2}' <<<"$out")" "$secs")"
	out=$(bench_nicd "$size")
	res=$(grep RESULT <<<"$out")
	secs=$(awk -v n="$(field rtts "$res")" -v r="$(field rate "$res")" 'BEGIN { print (r > 0 ? n / r : 0) }')
	row "$size" nicd "$res" "tenant $(field cpu_pct "$res")%, nicd $(pct "$(awk '/NICD_TICKS/ {print $2}' <<<"$out")" "$secs"), echo $(pct "$(awk '/ECHO_TICKS/ {print $2}' <<<"$out")" "$secs")"
done
printf '\n%6s  %-7s %9s %9s %9s %9s   %s\n' size path "rtt/s" "p50 us" "p99 us" "p99.9 us" "cpu (of one core)"
printf '%s\n' "${rows[@]}"
