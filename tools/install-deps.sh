#!/usr/bin/env bash
# Install the Debian 12 packages machnet needs to build, test and run its
# demo (only those missing). Run as root. Used by tests/run-all and
# tools/demo.sh.
set -euo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	sed -n '2,4{s/^# \{0,1\}//;p}' "$0"
	exit 0
fi

packages=(
	build-essential pkg-config meson ninja-build python3
	dpdk libdpdk-dev libbpf-dev libxdp-dev libcmocka-dev libiniparser-dev
	iproute2 iputils-ping ethtool procps kmod systemd
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
