#!/usr/bin/env bash
#
# testbed.sh - throw-away network test beds for machnet integration tests.
#
# Hosts are network namespaces joined by veth pairs (two hosts directly, or any
# number through a Linux bridge in a third "switch" namespace). Every name this
# script makes starts with a per-run prefix (mnt + 6 hex digits), a state file
# records what was made, and teardown only ever touches names with that prefix.
#
# As a library (bash):
#     . tests/netns/testbed.sh
#     tb_up 2 --dpdk-hosts 1          # installs an EXIT/INT/TERM trap -> tb_down
#     tb_exec 2 ping -c 1 "$TB_IP_1"
#     tb_down
# As a command:
#     tests/netns/testbed.sh help
#
# Usage notes and the precautions it applies: tests/netns/README.md.
# Needs root, iproute2 (ip with netns support) and ethtool.
#
# The functions are written to work under a caller's `set -euo pipefail`.

# ---------------------------------------------------------------------------
# Configuration (may be set by the caller before sourcing or running)
# ---------------------------------------------------------------------------
: "${TB_STATE_DIR:=/run/machnet-testbed}"   # one directory per run: state, env

TB__PREFIX_RE='^mnt[0-9a-f]{6}$'
TB__NSNAME_RE='^(mnt[0-9a-f]{6})-(h[0-9]+|sw)$'
TB__HP_DIR=/sys/kernel/mm/hugepages/hugepages-2048kB
TB__HP_MNT=/dev/hugepages
TB__NET=10.77            # hosts get 10.77.<run octet>.<i>/24, inside the namespaces only
TB__MAX_HOSTS=64

# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------
tb__say()  { printf 'testbed: %s\n' "$*" >&2; }
tb__warn() { printf 'testbed: warning: %s\n' "$*" >&2; }
tb__err()  { printf 'testbed: error: %s\n' "$*" >&2; return 1; }
tb__dbg()  {
    if [[ -n ${TB_VERBOSE:-} ]]; then printf 'testbed: + %s\n' "$*" >&2; fi
    return 0
}

# Run a command quietly; on failure print it with its output and return 1.
tb__run() {
    local out
    tb__dbg "$*"
    if ! out=$("$@" 2>&1); then
        tb__err "command failed: $*${out:+: $out}"
        return 1
    fi
    return 0
}

tb_usage() {
    cat <<'EOF'
testbed.sh - network-namespace test beds for machnet integration tests

Library (bash):  . tests/netns/testbed.sh
  tb_up N [options]          bring up N hosts (N >= 2); exports TB_* variables
                             and installs an EXIT/INT/TERM trap calling tb_down
  tb_down [PREFIX]           tear down this shell's test bed (or run PREFIX);
                             idempotent, never touches names without the prefix
  tb_exec I CMD...           run CMD inside host I's namespace (I = 1..N, or sw)
  tb_hugepages_reserve COUNT ensure COUNT free 2 MiB hugepages (given back by tb_down)
  tb_trap                    (re)install the teardown trap
  tb_machnet_configs I RUNDIR TENANT_INI
                             write RUNDIR/nicd.ini and TENANT_INI for host I
                             (nicd on net_af_xdp, tenant "default")

Command:
  testbed.sh run N [options] -- CMD...   up, run CMD (root namespace, TB_* in
                                         its environment), down; exits with CMD's status
  testbed.sh up N [options]      bring up and leave up; prints `export TB_...`
                                 lines (eval them); tear down with `down PREFIX`
  testbed.sh down PREFIX...      tear down the named runs (stale or manual)
  testbed.sh down --stale        tear down every run whose owner process is gone
  testbed.sh list                show runs left on this machine
  testbed.sh env PREFIX          print the export lines of a run
  testbed.sh exec PREFIX I CMD...  run CMD in host I of run PREFIX
  testbed.sh help                this text

Options of tb_up / up / run:
  --bridge               hosts joined through a Linux bridge in a 'switch'
                         namespace (required for N >= 3; allowed for N = 2)
  --dpdk-hosts LIST      e.g. 1 or 1,2: those hosts' interfaces get NO kernel
                         IP address (the DPDK program owns them); TB_IP_i is
                         still exported for the program to use
  --mtu M                MTU of every interface (default 1500; XDP/af_xdp will
                         not attach to a veth whose peer MTU is >= 3520)
  --hugepages COUNT      also tb_hugepages_reserve COUNT
  --prefix mntXXXXXX     use this prefix (fails if it is in use) instead of a
                         random one
  --no-trap              do not install the teardown trap (library use)

Exported: TB_PREFIX TB_N TB_MODE(direct|bridge) TB_MTU TB_SUBNET TB_PREFIXLEN
  TB_DPDK_HOSTS TB_SW_NS TB_BRIDGE TB_STATE_FILE TB_ENV_FILE, and per host i:
  TB_NS_i TB_IF_i TB_MAC_i TB_IP_i TB_DPDK_i TB_PEER_NS_i TB_PEER_IF_i
  TB_FILE_PREFIX_i (use as DPDK --file-prefix so teardown removes its files)

Needs root, iproute2 and ethtool. State: $TB_STATE_DIR (default /run/machnet-testbed).
EOF
}

# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------
tb__need_root() {
    if [[ ${EUID:-1} -ne 0 ]]; then
        tb__err "must be run as root (it creates network namespaces, veth pairs and hugepages); re-run with sudo"
        return 1
    fi
    return 0
}

tb__need_tools() {
    local t pkg
    for t in ip ethtool; do
        if ! command -v "$t" >/dev/null 2>&1; then
            case $t in ip) pkg=iproute2 ;; *) pkg=$t ;; esac
            tb__err "required command '$t' not found in PATH (Debian: apt-get install $pkg)"
            return 1
        fi
    done
    if ! ip netns list >/dev/null 2>&1; then
        tb__err "'ip netns list' fails: this iproute2/kernel has no network-namespace support"
        return 1
    fi
    return 0
}

tb__is_uint() { [[ ${1:-} =~ ^[0-9]+$ ]]; }

# ---------------------------------------------------------------------------
# Names and state
# ---------------------------------------------------------------------------
tb__rand_hex6() {
    local h=""
    if [[ -r /dev/urandom ]] && command -v od >/dev/null 2>&1; then
        h=$(od -An -N3 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n') || h=""
    fi
    if [[ ! $h =~ ^[0-9a-f]{6}$ ]]; then
        h=$(printf '%06x' $(( ((RANDOM << 15) ^ RANDOM ^ BASHPID) & 0xffffff )))
    fi
    printf '%s' "$h"
}

tb__state_dir()  { printf '%s/%s' "$TB_STATE_DIR" "$1"; }
tb__state_file() { printf '%s/%s/state' "$TB_STATE_DIR" "$1"; }

tb__state_add() {   # PREFIX KEY VALUE...
    local p=$1
    shift
    printf '%s\n' "$*" >>"$(tb__state_file "$p")" 2>/dev/null || true
    return 0
}

tb__state_get() {   # PREFIX KEY -> every value of KEY, one per line
    local sf key val
    sf=$(tb__state_file "$1")
    if [[ -r $sf ]]; then
        while read -r key val; do
            if [[ $key == "$2" ]]; then printf '%s\n' "$val"; fi
        done <"$sf"
    fi
    return 0
}

tb__state_sum() {   # PREFIX KEY -> sum of the integer values of KEY
    local v s=0
    while read -r v; do
        if tb__is_uint "$v"; then s=$((s + 10#$v)); fi
    done < <(tb__state_get "$1" "$2")
    printf '%s' "$s"
}

tb__state_max() {   # PREFIX KEY -> max of the integer values of KEY (0 if none)
    local v m=0
    while read -r v; do
        if tb__is_uint "$v" && (( 10#$v > m )); then m=$((10#$v)); fi
    done < <(tb__state_get "$1" "$2")
    printf '%s' "$m"
}

tb__netns_names() {
    { ip netns list 2>/dev/null || true; } | awk '{print $1}'
    return 0
}

tb__netns_of() {    # PREFIX -> namespaces named PREFIX-*
    local n
    while read -r n; do
        if [[ $n == "$1"-* ]]; then printf '%s\n' "$n"; fi
    done < <(tb__netns_names)
    return 0
}

tb__netns_exists() {
    local n
    while read -r n; do
        if [[ $n == "$1" ]]; then return 0; fi
    done < <(tb__netns_names)
    return 1
}

tb__root_links_of() {   # PREFIX -> links in the root namespace named PREFIX*
    local n
    while read -r n; do
        n=${n%%@*}
        if [[ -n $n && $n == "$1"* ]]; then printf '%s\n' "$n"; fi
    done < <({ ip -o link show 2>/dev/null || true; } | awk -F': ' '{print $2}')
    return 0
}

tb__starttime() {   # PID -> start time in clock ticks (field 22 of stat)
    local s f
    s=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra f <<<"$s"
    printf '%s' "${f[19]:-}"
}

tb__alive() {       # PID alive and not a zombie
    local st
    [[ -r /proc/$1/status ]] || return 1
    st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# Owner of a run: "manual" (testbed.sh up) is always alive; otherwise the
# recorded PID must still be the same process (start time matches).
tb__owner_alive() {
    local o pid start
    o=$(tb__state_get "$1" owner | head -n 1)
    [[ -n $o ]] || return 1
    if [[ $o == manual ]]; then return 0; fi
    read -r pid start <<<"$o"
    tb__is_uint "$pid" || return 1
    tb__alive "$pid" || return 1
    [[ -z $start || $(tb__starttime "$pid") == "$start" ]]
}

tb__owner_desc() {
    local o pid
    if [[ ! -f $(tb__state_file "$1") ]]; then printf 'no state file (stale)'; return 0; fi
    o=$(tb__state_get "$1" owner | head -n 1)
    if [[ $o == manual ]]; then printf 'manual (testbed.sh up)'; return 0; fi
    pid=${o%% *}
    if tb__owner_alive "$1"; then printf 'pid %s (running)' "$pid"; else printf 'pid %s (gone: stale)' "$pid"; fi
    return 0
}

# PIDs of this shell and its ancestors (never killed by teardown).
tb__self_pids() {
    local p=$BASHPID
    while tb__is_uint "$p" && (( p > 1 )); do
        printf '%s\n' "$p"
        p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null) || break
    done
    return 0
}

tb__unset_vars() {
    local v
    for v in "${!TB_@}"; do
        case $v in
            TB_PREFIX|TB_N|TB_MODE|TB_MTU|TB_SUBNET|TB_PREFIXLEN|TB_STATE_FILE|TB_ENV_FILE|\
TB_SW_NS|TB_BRIDGE|TB_DPDK_HOSTS|TB_HUGEPAGES_ADDED)
                unset "$v" ;;
            *)
                if [[ $v =~ ^TB_(NS|IF|MAC|IP|DPDK|PEER_NS|PEER_IF|FILE_PREFIX)_[0-9]+$ ]]; then
                    unset "$v"
                fi ;;
        esac
    done
    unset TB__OWNER_PID
    return 0
}

# ---------------------------------------------------------------------------
# Hugepages (2 MiB pool; /sys/kernel/mm/hugepages/hugepages-2048kB, which is
# /proc/sys/vm/nr_hugepages when 2 MiB is the default size)
# ---------------------------------------------------------------------------
tb__hp_read() {
    local v
    v=$(cat "$TB__HP_DIR/$1" 2>/dev/null) || v=0
    printf '%s' "${v:-0}"
}

tb__hp_lock() {
    TB__HP_LOCK_FD=""
    mkdir -p "$TB_STATE_DIR" 2>/dev/null || true
    if command -v flock >/dev/null 2>&1 &&
        exec {TB__HP_LOCK_FD}>>"$TB_STATE_DIR/.hugepages.lock"; then
        flock -w 60 "$TB__HP_LOCK_FD" || tb__warn "hugepage lock not acquired in 60 s; going on"
    fi
    return 0
}

tb__hp_unlock() {
    if [[ -n ${TB__HP_LOCK_FD:-} ]]; then
        exec {TB__HP_LOCK_FD}>&-
        TB__HP_LOCK_FD=""
    fi
    return 0
}

tb__hp_mounted() {
    awk -v m="$TB__HP_MNT" '$2 == m && $3 == "hugetlbfs" {f = 1} END {exit !f}' /proc/mounts 2>/dev/null
}

tb__hp_mount() {
    if tb__hp_mounted; then return 0; fi
    if ! mkdir -p "$TB__HP_MNT" || ! mount -t hugetlbfs -o pagesize=2M nodev "$TB__HP_MNT"; then
        tb__err "could not mount hugetlbfs at $TB__HP_MNT"
        return 1
    fi
    tb__say "mounted hugetlbfs at $TB__HP_MNT (it stays mounted: other DPDK programs may use it)"
    return 0
}

# Sum of the hugepage reservations of the other live runs (they may still
# need the free pages they counted on).
tb__hp_demand_others() {
    local me=$1 p total=0
    while read -r p; do
        if [[ $p =~ $TB__PREFIX_RE && $p != "$me" ]] && tb__owner_alive "$p"; then
            total=$((total + $(tb__state_max "$p" huge_reserved)))
        fi
    done < <(find "$TB_STATE_DIR" -mindepth 1 -maxdepth 1 -type d -name 'mnt*' -printf '%f\n' 2>/dev/null)
    printf '%s' "$total"
}

tb__hp_heir() {     # a live run (not $1) that reserved hugepages
    local me=$1 p
    while read -r p; do
        if [[ $p =~ $TB__PREFIX_RE && $p != "$me" ]] && tb__owner_alive "$p" &&
            (( $(tb__state_max "$p" huge_reserved) > 0 )); then
            printf '%s' "$p"
            return 0
        fi
    done < <(find "$TB_STATE_DIR" -mindepth 1 -maxdepth 1 -type d -name 'mnt*' -printf '%f\n' 2>/dev/null)
    return 0
}

tb_hugepages_reserve() {
    local count=${1:-} p=${TB_PREFIX:-} free nr new added=0 have
    tb__need_root || return 1
    if ! tb__is_uint "$count"; then
        tb__err "usage: tb_hugepages_reserve COUNT (number of free 2 MiB hugepages wanted)"
        return 1
    fi
    count=$((10#$count))
    if [[ -z $p || ! -f $(tb__state_file "$p") ]]; then
        tb__err "tb_hugepages_reserve: no test bed is up in this shell; call tb_up first (or give tb_up --hugepages COUNT)"
        return 1
    fi
    if [[ ! -w $TB__HP_DIR/nr_hugepages ]]; then
        tb__err "2 MiB hugepages are not available here ($TB__HP_DIR/nr_hugepages missing or read-only)"
        return 1
    fi
    tb__hp_mount || return 1
    tb__hp_lock
    free=$(tb__hp_read free_hugepages)
    nr=$(tb__hp_read nr_hugepages)
    if (( count > free )); then
        echo $((nr + count - free)) >"$TB__HP_DIR/nr_hugepages" 2>/dev/null || true
        new=$(tb__hp_read nr_hugepages)
        added=$((new - nr))
        if (( added < 0 )); then added=0; fi
        if (( added > 0 )); then tb__state_add "$p" huge_added "$added"; fi
    fi
    tb__state_add "$p" huge_reserved "$count"
    have=$(tb__hp_read free_hugepages)
    tb__hp_unlock
    TB_HUGEPAGES_ADDED=$(tb__state_sum "$p" huge_added)
    export TB_HUGEPAGES_ADDED
    if (( have < count )); then
        tb__err "wanted $count free 2 MiB hugepages, only $have are free (added $added; the kernel could not allocate more)"
        return 1
    fi
    tb__dbg "hugepages: $count wanted, $added added, $have free"
    return 0
}

# Give back exactly what this run added, as far as those pages are free and
# not counted on by another live run; what is left goes to such a run's
# ledger (it gives it back when it ends) or is reported.
tb__hp_give_back() {
    local p=$1 added free nr others give new given rest heir
    added=$(tb__state_sum "$p" huge_added)
    if (( added <= 0 )); then return 0; fi
    tb__hp_lock
    free=$(tb__hp_read free_hugepages)
    nr=$(tb__hp_read nr_hugepages)
    others=$(tb__hp_demand_others "$p")
    give=$((free - others))
    if (( give > added )); then give=$added; fi
    if (( give > nr )); then give=$nr; fi
    if (( give < 0 )); then give=0; fi
    if (( give > 0 )); then
        echo $((nr - give)) >"$TB__HP_DIR/nr_hugepages" 2>/dev/null ||
            tb__warn "could not lower $TB__HP_DIR/nr_hugepages"
    fi
    new=$(tb__hp_read nr_hugepages)
    given=$((nr - new))
    if (( given < 0 )); then given=0; fi
    rest=$((added - given))
    if (( rest > 0 )); then
        heir=$(tb__hp_heir "$p")
        if [[ -n $heir ]]; then
            tb__state_add "$heir" huge_added "$rest"
            tb__say "left $rest hugepage(s) to run $heir, which reserved them; it gives them back"
        else
            tb__warn "$rest of the $added hugepage(s) run $p added are still in use and were not given back; once free: echo \$((\$(cat $TB__HP_DIR/nr_hugepages) - $rest)) > $TB__HP_DIR/nr_hugepages"
        fi
    fi
    tb__hp_unlock
    return 0
}

# DPDK files of this run only: hugepage files and runtime dirs whose name
# starts with the prefix (the TB_FILE_PREFIX_i given as --file-prefix).
tb__rm_dpdk_files() {
    local p=$1 m d
    while read -r m; do
        [[ -n $m && -d $m ]] || continue
        find "$m" -mindepth 1 -maxdepth 1 -type f -name "${p}*" -delete 2>/dev/null || true
    done < <(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts 2>/dev/null)
    for d in /var/run/dpdk /run/dpdk; do
        if [[ -d $d ]]; then
            find "$d/" -mindepth 1 -maxdepth 1 -name "${p}*" -exec rm -rf -- {} + 2>/dev/null || true
        fi
    done
    return 0
}

# ---------------------------------------------------------------------------
# Teardown
# ---------------------------------------------------------------------------
tb__kill_ns_procs() {   # NS... : kill the processes left inside them
    local ns pid self pids=() left k
    self=" $(tb__self_pids | tr '\n' ' ') "
    for ns in "$@"; do
        while read -r pid; do
            if tb__is_uint "$pid" && [[ $self != *" $pid "* ]]; then pids+=("$pid"); fi
        done < <(ip netns pids "$ns" 2>/dev/null || true)
    done
    if (( ${#pids[@]} == 0 )); then return 0; fi
    tb__say "stopping ${#pids[@]} process(es) left in the test bed: ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for k in TERM KILL; do
        for _ in $(seq 1 30); do
            left=()
            for pid in "${pids[@]}"; do
                if tb__alive "$pid"; then left+=("$pid"); fi
            done
            if (( ${#left[@]} == 0 )); then return 0; fi
            sleep 0.1
        done
        if [[ $k == TERM ]]; then
            tb__warn "still running after SIGTERM, sending SIGKILL: ${left[*]}"
            kill -KILL "${left[@]}" 2>/dev/null || true
        fi
    done
    tb__warn "could not stop: ${left[*]}"
    return 0
}

tb_down() {
    local p=${1:-${TB_PREFIX:-}} ns nss=() l
    if [[ -z $p ]]; then return 0; fi
    if [[ ! $p =~ $TB__PREFIX_RE ]]; then
        tb__err "tb_down: '$p' is not a test-bed prefix (mnt followed by 6 hex digits)"
        return 1
    fi
    tb__need_root || return 1
    # Namespaces: those recorded and those found; only PREFIX-* names.
    while read -r ns; do
        if [[ $ns =~ $TB__NSNAME_RE && ${BASH_REMATCH[1]} == "$p" ]]; then nss+=("$ns"); fi
    done < <({ tb__state_get "$p" ns; tb__netns_of "$p"; } | sort -u)
    if (( ${#nss[@]} > 0 )); then
        tb__kill_ns_procs "${nss[@]}"
        for ns in "${nss[@]}"; do
            if tb__netns_exists "$ns"; then
                ip netns del "$ns" 2>/dev/null || tb__warn "could not delete namespace $ns"
            fi
        done
    fi
    # Anything of this run in the root namespace (normally nothing).
    while read -r l; do
        ip link del "$l" 2>/dev/null || tb__warn "could not delete link $l"
    done < <(tb__root_links_of "$p")
    tb__rm_dpdk_files "$p"
    tb__hp_give_back "$p"
    rm -rf -- "${TB_STATE_DIR:?}/$p" 2>/dev/null || tb__warn "could not remove $TB_STATE_DIR/$p"
    if [[ $p == "${TB_PREFIX:-}" ]]; then tb__unset_vars; fi
    tb__say "down $p"
    return 0
}

# ---------------------------------------------------------------------------
# Traps
# ---------------------------------------------------------------------------
tb__on_exit() {
    if [[ -n ${TB_PREFIX:-} && ${TB__OWNER_PID:-} == "$BASHPID" ]]; then
        tb_down || true
    fi
    if [[ -n ${TB__PREV_EXIT_TRAP:-} && ${TB__PREV_EXIT_PID:-} == "$BASHPID" ]]; then
        eval "$TB__PREV_EXIT_TRAP"
    fi
    return 0
}

tb__stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        tb__alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    return 0
}

tb__on_signal() {
    local sig=$1 code=130
    case $sig in HUP) code=129 ;; INT) code=130 ;; TERM) code=143 ;; esac
    tb__say "caught SIG$sig; tearing down"
    if [[ -n ${TB__RUN_CHILD:-} ]]; then tb__stop_pid "$TB__RUN_CHILD"; fi
    trap - "$sig"
    exit "$code"        # the EXIT trap tears down
}

tb_trap() {
    local prev me=$BASHPID
    local -a tp=()
    if [[ ${TB__PREV_EXIT_PID:-} != "$me" ]]; then
        TB__PREV_EXIT_TRAP=""       # inherited from a parent shell: not active here
        TB__PREV_EXIT_PID=$me
    fi
    # Keep the caller's EXIT trap (trap -- 'CMD' EXIT); it runs after the
    # teardown. Only in a script's main shell: in a subshell `trap -p` shows
    # the parent's traps, which do not run there.
    prev=$(trap -p EXIT)
    if [[ $me == "$$" && -n $prev && $prev != *tb__on_exit* ]]; then
        eval "tp=($prev)"
        TB__PREV_EXIT_TRAP=${tp[2]:-}
    fi
    trap 'tb__on_exit' EXIT
    trap 'tb__on_signal HUP' HUP
    trap 'tb__on_signal INT' INT
    trap 'tb__on_signal TERM' TERM
    return 0
}

# ---------------------------------------------------------------------------
# Bring-up
# ---------------------------------------------------------------------------
tb__disable_ipv6() {    # NS KEY... (all, default, or interface names)
    if [[ ! -d /proc/sys/net/ipv6 ]]; then return 0; fi
    # shellcheck disable=SC2016  # expanded by the inner sh
    tb__run ip netns exec "$1" sh -c \
        'shift; for k; do echo 1 > "/proc/sys/net/ipv6/conf/$k/disable_ipv6" || exit 1; done' \
        sh "$@"
}

tb__mkns() {            # PREFIX NS
    tb__state_add "$1" ns "$2"
    tb__run ip netns add "$2" || return 1
    tb__run ip -n "$2" link set lo up || return 1
    tb__disable_ipv6 "$2" all default || return 1
}

# Offloads off, IPv6 off, MTU, up. A kernel sender with TX checksum offload
# hands a veth UDP with a partial checksum, which looks wrong to DPDK.
tb__prep_if() {         # NS IF MTU
    local ns=$1 ifn=$2 mtu=$3 k out
    tb__disable_ipv6 "$ns" "$ifn" || return 1
    tb__run ip -n "$ns" link set dev "$ifn" mtu "$mtu" || return 1
    tb__run ip netns exec "$ns" ethtool -K "$ifn" tx off tso off gso off || return 1
    ip netns exec "$ns" ethtool -K "$ifn" rx off >/dev/null 2>&1 || true
    ip netns exec "$ns" ethtool -K "$ifn" gro off >/dev/null 2>&1 || true
    out=$(ip netns exec "$ns" ethtool -k "$ifn" 2>&1) || true
    for k in tx-checksumming tcp-segmentation-offload generic-segmentation-offload; do
        if ! grep -Eq "^$k: off" <<<"$out"; then
            tb__err "$ns/$ifn: could not turn off $k"
            return 1
        fi
    done
    tb__run ip -n "$ns" link set dev "$ifn" up
}

tb__wait_for() {        # WHAT NS IF PATTERN : poll `ip -d link show` for PATTERN
    local out
    for _ in $(seq 1 50); do
        out=$(ip -n "$2" -d link show dev "$3" 2>/dev/null) || out=""
        if [[ $out == *"$4"* ]]; then return 0; fi
        sleep 0.1
    done
    tb__err "$2/$3 is not $1 after 5 s"
}

tb__create() {          # PREFIX N BRIDGE(0|1) MTU DPDK(",1,2,")
    local p=$1 n=$2 bridge=$3 mtu=$4 dpdk=$5 hex oct i ns ifn sw="" br="" mac smac ip
    hex=${p#mnt}
    oct=$((16#${hex:0:2}))
    export TB_N=$n TB_MTU=$mtu TB_SUBNET="$TB__NET.$oct.0/24" TB_PREFIXLEN=24
    if (( bridge )); then
        sw="${p}-sw" br="${p}br"
        export TB_MODE=bridge
    else
        export TB_MODE=direct
    fi
    export TB_SW_NS=$sw TB_BRIDGE=$br

    for (( i = 1; i <= n; i++ )); do
        tb__mkns "$p" "${p}-h$i" || return 1
    done
    if (( bridge )); then
        tb__mkns "$p" "$sw" || return 1
        tb__run ip -n "$sw" link add "$br" type bridge stp_state 0 forward_delay 0 mcast_snooping 0 || return 1
        tb__disable_ipv6 "$sw" "$br" || return 1
        tb__run ip -n "$sw" link set dev "$br" mtu "$mtu" up || return 1
    fi

    for (( i = 1; i <= n; i++ )); do
        ns="${p}-h$i" ifn="${p}h$i"
        if (( ${#ifn} > 15 )); then tb__err "interface name $ifn is longer than 15"; return 1; fi
        mac=$(printf '02:4d:%s:%s:%s:%02x' "${hex:0:2}" "${hex:2:2}" "${hex:4:2}" "$i")
        smac=$(printf '0a:4d:%s:%s:%s:%02x' "${hex:0:2}" "${hex:2:2}" "${hex:4:2}" "$i")
        ip="$TB__NET.$oct.$i"
        export "TB_NS_$i=$ns" "TB_IF_$i=$ifn" "TB_MAC_$i=$mac" "TB_IP_$i=$ip" \
            "TB_FILE_PREFIX_$i=$ns"
        if [[ $dpdk == *",$i,"* ]]; then export "TB_DPDK_$i=1"; else export "TB_DPDK_$i=0"; fi
        if (( bridge )); then
            export "TB_PEER_NS_$i=$sw" "TB_PEER_IF_$i=${p}s$i"
            tb__run ip link add "$ifn" netns "$ns" address "$mac" type veth \
                peer name "${p}s$i" netns "$sw" address "$smac" || return 1
            tb__prep_if "$sw" "${p}s$i" "$mtu" || return 1
            tb__run ip -n "$sw" link set dev "${p}s$i" master "$br" || return 1
        elif (( i == 1 )); then
            export "TB_PEER_NS_1=${p}-h2" "TB_PEER_IF_1=${p}h2"
            tb__run ip link add "$ifn" netns "$ns" address "$mac" type veth \
                peer name "${p}h2" netns "${p}-h2" \
                address "$(printf '02:4d:%s:%s:%s:02' "${hex:0:2}" "${hex:2:2}" "${hex:4:2}")" || return 1
        else
            export "TB_PEER_NS_2=${p}-h1" "TB_PEER_IF_2=${p}h1"
        fi
        tb__prep_if "$ns" "$ifn" "$mtu" || return 1
        if [[ $dpdk != *",$i,"* ]]; then
            tb__run ip -n "$ns" addr add "$ip/24" dev "$ifn" || return 1
        fi
    done

    for (( i = 1; i <= n; i++ )); do
        tb__wait_for up "${p}-h$i" "${p}h$i" "state UP" || return 1
        if (( bridge )); then
            tb__wait_for forwarding "$sw" "${p}s$i" "state forwarding" || return 1
        fi
    done
    return 0
}

tb_up() {
    local n="" bridge=0 dlist="" mtu=1500 hp="" want="" trap_on=1 dpdk="," d p tries=0 sf v
    local me=$BASHPID
    local -a ds=()
    while (( $# > 0 )); do
        case $1 in
            --bridge) bridge=1 ;;
            --dpdk-hosts|--mtu|--hugepages|--prefix)
                if (( $# < 2 )); then tb__err "tb_up: $1 needs a value (see testbed.sh help)"; return 1; fi
                case $1 in
                    --dpdk-hosts) dlist=$2 ;; --mtu) mtu=$2 ;;
                    --hugepages) hp=$2 ;; --prefix) want=$2 ;;
                esac
                shift ;;
            --dpdk-hosts=*) dlist=${1#*=} ;;
            --mtu=*) mtu=${1#*=} ;;
            --hugepages=*) hp=${1#*=} ;;
            --prefix=*) want=${1#*=} ;;
            --no-trap) trap_on=0 ;;
            -h|--help|help) tb_usage; return 0 ;;
            -*) tb__err "tb_up: unknown option '$1' (see testbed.sh help)"; return 1 ;;
            *)
                if [[ -n $n ]]; then tb__err "tb_up: unexpected argument '$1'"; return 1; fi
                n=$1 ;;
        esac
        shift
    done

    tb__need_root || return 1
    tb__need_tools || return 1
    if ! tb__is_uint "$n"; then
        tb__err "tb_up: number of hosts missing or not a number (usage: tb_up N [--bridge] [--dpdk-hosts LIST] [--mtu M])"
        return 1
    fi
    n=$((10#$n))
    if (( n < 2 )); then tb__err "tb_up: need at least 2 hosts (got $n)"; return 1; fi
    if (( n > TB__MAX_HOSTS )); then tb__err "tb_up: at most $TB__MAX_HOSTS hosts (got $n)"; return 1; fi
    if (( n > 2 && !bridge )); then
        tb__err "tb_up: $n hosts need --bridge (only 2 hosts can be joined by one veth pair)"
        return 1
    fi
    if ! tb__is_uint "$mtu" || (( 10#$mtu < 68 || 10#$mtu > 65535 )); then
        tb__err "tb_up: --mtu must be 68..65535 (got '$mtu')"
        return 1
    fi
    mtu=$((10#$mtu))
    if (( mtu >= 3520 )); then
        tb__warn "MTU $mtu: XDP (net_af_xdp) refuses to attach to a veth whose peer MTU is >= 3520"
    fi
    if [[ -n $dlist ]]; then
        IFS=', ' read -ra ds <<<"$dlist"
        for d in "${ds[@]}"; do
            [[ -n $d ]] || continue
            if ! tb__is_uint "$d" || (( 10#$d < 1 || 10#$d > n )); then
                tb__err "tb_up: --dpdk-hosts: '$d' is not a host number 1..$n"
                return 1
            fi
            dpdk+="$((10#$d)),"
        done
    fi
    if [[ -n $hp ]] && ! tb__is_uint "$hp"; then
        tb__err "tb_up: --hugepages needs a count (got '$hp')"
        return 1
    fi
    if [[ -n $want && ! $want =~ $TB__PREFIX_RE ]]; then
        tb__err "tb_up: --prefix must be mnt followed by 6 hex digits (got '$want')"
        return 1
    fi

    if [[ -n ${TB_PREFIX:-} ]]; then
        if [[ ${TB__OWNER_PID:-} == "$me" && -d $(tb__state_dir "$TB_PREFIX") ]]; then
            tb__err "tb_up: test bed $TB_PREFIX is already up in this shell; call tb_down first (one per shell: use a subshell for another)"
            return 1
        fi
        tb__unset_vars      # inherited from a parent shell or process: not ours
    fi

    if ! mkdir -p "$TB_STATE_DIR" 2>/dev/null; then
        tb__err "cannot create state directory $TB_STATE_DIR"
        return 1
    fi
    while :; do
        if [[ -n $want ]]; then p=$want; else p=mnt$(tb__rand_hex6); fi
        if [[ -z $(tb__netns_of "$p") && -z $(tb__root_links_of "$p") ]] &&
            mkdir "$(tb__state_dir "$p")" 2>/dev/null; then
            break
        fi
        if [[ -n $want ]]; then
            tb__err "tb_up: name collision: prefix $p is in use (state dir, namespaces or links named $p*); if it is stale: testbed.sh down $p"
            return 1
        fi
        tries=$((tries + 1))
        if (( tries >= 50 )); then tb__err "tb_up: no free prefix found in 50 tries"; return 1; fi
    done

    sf=$(tb__state_file "$p")
    {
        echo "version 1"
        echo "prefix $p"
        if [[ -n ${TB__MANUAL:-} ]]; then
            echo "owner manual"
        else
            echo "owner $me $(tb__starttime "$me")"
        fi
        echo "created $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "hosts $n"
        echo "bridge $bridge"
    } >"$sf"
    export TB_PREFIX=$p TB_STATE_FILE=$sf TB_ENV_FILE="$TB_STATE_DIR/$p/env"
    TB__OWNER_PID=$me
    if (( trap_on )); then tb_trap; fi

    dpdk=${dpdk#,}
    export TB_DPDK_HOSTS=${dpdk%,}
    if ! tb__create "$p" "$n" "$bridge" "$mtu" ",$dpdk"; then
        tb__err "tb_up: bringing up $p failed; tearing down what was made"
        tb_down "$p" || true
        return 1
    fi
    if [[ -n $hp ]] && ! tb_hugepages_reserve "$hp"; then
        tb_down "$p" || true
        return 1
    fi

    for v in "${!TB_@}"; do
        case $v in TB_STATE_DIR|TB_VERBOSE) continue ;; esac
        printf 'export %s=%q\n' "$v" "${!v}"
    done >"$TB_ENV_FILE"
    printf 'export TB_STATE_DIR=%q\n' "$TB_STATE_DIR" >>"$TB_ENV_FILE"
    tb__say "up $p: $n hosts ($TB_MODE), $TB_SUBNET, mtu $mtu${TB_DPDK_HOSTS:+, DPDK-owned: $TB_DPDK_HOSTS}"
    return 0
}

tb_exec() {
    local h=${1:-} v ns=""
    if (( $# < 2 )); then
        tb__err "usage: tb_exec HOST CMD... (HOST: 1..N, or sw for the switch namespace)"
        return 2
    fi
    shift
    if [[ $h == sw ]]; then
        ns=${TB_SW_NS:-}
    elif tb__is_uint "$h"; then
        v=TB_NS_$((10#$h))
        ns=${!v:-}
    fi
    if [[ -z $ns ]]; then
        tb__err "tb_exec: no namespace for host '$h' (is a test bed up? TB_PREFIX=${TB_PREFIX:-unset})"
        return 2
    fi
    ip netns exec "$ns" "$@"
}

# tb_machnet_configs I RUNDIR TENANT_INI : write RUNDIR/nicd.ini (machnet-nicd
# on host I's interface through net_af_xdp, --no-huge, tenant "default" on
# ports 800-999 and 40000-40999) and TENANT_INI (that tenant's
# machnet-proto), both with runtime_dir RUNDIR. The one machnet setup the
# demo, the benchmarks and the end-to-end tests share.
tb_machnet_configs() {
    local i=${1:-} rt=${2:-} tini=${3:-} ifc ip fp
    if [[ -z $i || -z $rt || -z $tini ]]; then
        tb__err "usage: tb_machnet_configs HOST RUNDIR TENANT_INI"
        return 2
    fi
    ifc=TB_IF_$i ip=TB_IP_$i fp=TB_FILE_PREFIX_$i
    if [[ -z ${!ifc:-} ]]; then
        tb__err "tb_machnet_configs: no host $i (is a test bed up?)"
        return 2
    fi
    mkdir -p "$rt" || return 1
    cat >"$rt/nicd.ini" <<INI || return 1
[nicd]
device = net_af_xdp0,iface=${!ifc}
eal_args = --no-huge -m 256 --log-level=lib.eal:error
file_prefix = ${!fp}
ip = ${!ip}/$TB_PREFIXLEN
runtime_dir = $rt

[tenant.default]
uid = 0
ip = ${!ip}
ports = 800-999, 40000-40999
INI
    cat >"$tini" <<INI
[tenant]
name = default
runtime_dir = $rt
ip = ${!ip}
listen_ports = 800-999
ephemeral_ports = 40000-40999
INI
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
tb__all_prefixes() {
    {
        find "$TB_STATE_DIR" -mindepth 1 -maxdepth 1 -type d -name 'mnt*' -printf '%f\n' 2>/dev/null || true
        tb__netns_names | sed -nE 's/^(mnt[0-9a-f]{6})-(h[0-9]+|sw)$/\1/p'
    } | { grep -E "$TB__PREFIX_RE" || true; } | sort -u
    return 0
}

tb__list() {
    local p any=0
    while read -r p; do
        any=1
        printf '%s  owner: %s  hugepages added: %s\n' "$p" "$(tb__owner_desc "$p")" "$(tb__state_sum "$p" huge_added)"
        printf '    namespaces: %s\n' "$(tb__netns_of "$p" | tr '\n' ' ')"
        if [[ -n $(tb__root_links_of "$p") ]]; then
            printf '    root-ns links: %s\n' "$(tb__root_links_of "$p" | tr '\n' ' ')"
        fi
    done < <(tb__all_prefixes)
    if (( !any )); then tb__say "no test-bed runs on this machine"; fi
    return 0
}

tb__cmd_down() {
    local p rc=0 any=0
    if (( $# == 0 )); then
        tb__err "usage: testbed.sh down PREFIX... | --stale   (see: testbed.sh list)"
        return 2
    fi
    if [[ $1 == --stale ]]; then
        while read -r p; do
            if ! tb__owner_alive "$p"; then any=1; tb_down "$p" || rc=1; fi
        done < <(tb__all_prefixes)
        if (( !any )); then tb__say "no stale runs"; fi
        return "$rc"
    fi
    for p in "$@"; do
        if [[ ! $p =~ $TB__PREFIX_RE ]]; then
            tb__err "'$p' is not a test-bed prefix (mnt followed by 6 hex digits)"
            rc=1
            continue
        fi
        if [[ ! -d $(tb__state_dir "$p") && -z $(tb__netns_of "$p") && -z $(tb__root_links_of "$p") ]]; then
            tb__say "nothing left of $p"
            continue
        fi
        if [[ -f $(tb__state_file "$p") ]] && tb__owner_alive "$p" &&
            [[ $(tb__state_get "$p" owner | head -n 1) != manual ]]; then
            tb__warn "the process that brought up $p is still running; tearing down anyway"
        fi
        tb_down "$p" || rc=1
    done
    return "$rc"
}

tb__load_env() {        # PREFIX
    local f
    if [[ ! ${1:-} =~ $TB__PREFIX_RE ]]; then tb__err "'${1:-}' is not a test-bed prefix"; return 1; fi
    f="$(tb__state_dir "$1")/env"
    if [[ ! -r $f ]]; then tb__err "no environment for $1 ($f); see testbed.sh list"; return 1; fi
    # shellcheck disable=SC1090
    . "$f"
}

tb__cmd_run() {
    local -a opts=()
    local rc=0
    while (( $# > 0 )) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
    if [[ ${1:-} != -- ]] || (( $# < 2 )); then
        tb__err "usage: testbed.sh run N [options] -- CMD..."
        return 2
    fi
    shift
    tb_up "${opts[@]}" || return 1
    if [[ -z ${TB_PREFIX:-} ]]; then return 0; fi      # --help
    "$@" <&0 &
    TB__RUN_CHILD=$!
    wait "$TB__RUN_CHILD" || rc=$?
    TB__RUN_CHILD=""
    tb_down || true
    return "$rc"
}

tb__main() {
    local cmd=${1:-help}
    if (( $# > 0 )); then shift; fi
    case $cmd in
        help|-h|--help) tb_usage; return 0 ;;
    esac
    tb__need_root || return 1
    case $cmd in
        up)
            TB__MANUAL=1
            tb_up "$@" --no-trap || return 1
            if [[ -n ${TB_PREFIX:-} ]]; then
                cat "$TB_ENV_FILE"
                tb__say "left up; tear down with: $0 down $TB_PREFIX"
            fi ;;
        down) tb__cmd_down "$@" ;;
        list) tb__list ;;
        run) tb__cmd_run "$@" ;;
        env) tb__load_env "${1:-}" && cat "$(tb__state_dir "$1")/env" ;;
        exec)
            tb__load_env "${1:-}" || return 1
            shift
            tb_exec "$@" ;;
        *) tb__err "unknown command '$cmd' (try: testbed.sh help)"; return 2 ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    tb__main "$@"
    exit $?
fi
