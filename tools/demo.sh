#!/usr/bin/env bash
# The machnet demo, one command on a fresh Debian 12 machine, as root:
#
#   tools/demo.sh
#
# installs the packages, builds, makes two hosts (network namespaces joined
# by a veth pair, both interfaces owned by DPDK through af_xdp), starts
# machnet-nicd and one protocol server (tenant "default", started with
# `machnetctl tenant start`) on each, runs
# hello_world and a 10-second msg_gen between them, shows the flow
# (machnetctl flows), prints the results and the counters of nicd and the
# protocol server (machnetctl stats), and tears everything down (also on
# Ctrl-C, a closed pipe or failure).
#
# Options (environment): MN_DEMO_SECONDS (msg_gen duration, default 10),
# MN_DEMO_SIZE (msg_gen message size, default 1024), MN_BUILD_DIR (default
# build-demo), MN_NO_INSTALL (skip the package step).
set -euo pipefail

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit 0 ;;
"") ;;
*)
	echo "demo.sh: no arguments (options come from the environment; see --help)" >&2
	exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MN_BUILD_DIR:-$top/build-demo}
seconds=${MN_DEMO_SECONDS:-10}
size=${MN_DEMO_SIZE:-1024}

say() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root: it creates network namespaces" >&2; exit 2; }
[ -n "${MN_NO_INSTALL:-}" ] || "$top/tools/install-deps.sh"

say "building in $build"
[ -d "$build" ] || meson setup "$build" "$top" -Dtests=false >/dev/null
ninja -C "$build" >/dev/null

# shellcheck source=../tests/netns/testbed.sh
. "$top/tests/netns/testbed.sh"
work=$(mktemp -d /tmp/machnet-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
tb_up 2 --dpdk-hosts 1,2
ctl() { # ctl I ARGS...: machnetctl for host I, inside its namespace
	local i=$1 ns; shift
	ns=TB_NS_$i
	ip netns exec "${!ns}" "$build/tools/machnetctl" --runtime-dir "$work/host$i" \
		--config-dir "$work/host$i" "$@"
}
stop_tenants() { # stop the protocol servers that machnetctl started
	local i
	for i in 1 2; do
		[ -e "$work/host$i/default.pid" ] && ctl "$i" tenant stop default >/dev/null 2>&1
	done
	return 0
}
trap 'stop_tenants; tb_down; rm -rf "$work"' EXIT
# A signal (Ctrl-C, a closed pipe, a hang-up) ends the script through the
# EXIT trap, so the test bed never outlives it.
trap 'exit 130' INT TERM HUP PIPE

start_host() { # start_host I: nicd and the tenant's protocol server in host I
	local i=$1 ns ifc ip rt
	ns=TB_NS_$i ifc=TB_IF_$i ip=TB_IP_$i rt=$work/host$i
	# nicd.ini, and default.ini for `machnetctl tenant start default`
	tb_machnet_configs "$i" "$rt" "$rt/default.ini"
	ip netns exec "${!ns}" "$build/drivers/machnet-nicd" -c "$rt/nicd.ini" >"$rt/nicd.log" 2>&1 &
	for _ in $(seq 100); do [ -S "$rt/nicd.sock" ] && break; sleep 0.1; done
	[ -S "$rt/nicd.sock" ] || { tail "$rt/nicd.log"; echo "demo.sh: nicd did not start" >&2; exit 1; }
	# machnet-proto for tenant "default" from $rt/default.ini; log in $rt/default.log
	ctl "$i" tenant start default | sed 's/^/  /' ||
		{ echo "demo.sh: machnet-proto did not start" >&2; exit 1; }
	echo "host $i: ${!ip} on ${!ifc} (namespace ${!ns}): machnet-nicd and machnet-proto up"
}

app() { # app I CMD...: run an application in host I against its tenant
	local i=$1 ns; shift
	ns=TB_NS_$i
	MACHNET_TENANT=default MACHNET_RUNTIME_DIR=$work/host$i ip netns exec "${!ns}" "$@"
}

say "starting two hosts"
start_host 1
start_host 2

say "hello_world: host 1 -> host 2"
app 2 timeout 30 "$build/tools/hello_world" --local_ip "$TB_IP_2" >"$work/hello.log" 2>&1 &
sleep 0.5
app 1 timeout 20 "$build/tools/hello_world" --local_ip "$TB_IP_1" --remote_ip "$TB_IP_2" --count 3
sleep 0.2
sed 's/^/  host 2 says: /' "$work/hello.log"

say "msg_gen: $size-byte messages, window 8, ${seconds} s, every echo verified"
app 2 timeout $((seconds + 30)) "$build/tools/msg_gen" --local_ip "$TB_IP_2" --local_port 900 \
	>"$work/msg_gen_server.log" 2>&1 &
sleep 0.5
app 1 timeout $((seconds + 20)) "$build/tools/msg_gen" --local_ip "$TB_IP_1" \
	--remote_ip "$TB_IP_2" --remote_port 900 --msg_size "$size" --msg_window 8 \
	--duration "$seconds" --verify &
mg_pid=$!
sleep $((seconds / 2))
say "machnetctl flows (host 2, while msg_gen runs)"
ctl 2 flows
wait "$mg_pid"

say "machnetctl stats (host 1: machnet-nicd, then the protocol server)"
"$build/tools/machnetctl" --runtime-dir "$work/host1" stats

say "machnetctl tenant list (host 1)"
ctl 1 tenant list

say "done: tearing down"
for i in 1 2; do ctl "$i" tenant stop default | sed 's/^/  /'; done
