#!/bin/bash
# packaging/sandbox.sh: a throw-away systemd to install and run dispatchd in, on a machine
# where systemd is not PID 1 (a container, a CI runner). As root.
#
#   sandbox.sh boot NAME [--host-network]
#                                     boot sandbox NAME, return once its systemd is up
#   sandbox.sh exec NAME CMD [ARG...] run CMD inside (stdin, stdout, exit status passed on)
#   sandbox.sh shell NAME             an interactive shell inside
#   sandbox.sh copy-in NAME DEST SRC...  copy host files or directories into DEST inside
#   sandbox.sh stop NAME              shut it down; everything written inside is gone
#   sandbox.sh status NAME            exit 0 if it is running (prints its PID 1 on the host)
#   sandbox.sh list                   the running sandboxes
#
# How: in a private mount namespace (unshare), a tmpfs holds the upper and work
# directories of an overlayfs whose lower directory is the host's /, and systemd-nspawn
# boots /lib/systemd/systemd on the merged tree, in its own PID, IPC, UTS and cgroup
# namespaces, and a network namespace of its own with only loopback (--host-network: the
# host's network instead, e.g. for apt-get to download inside). Every write (dpkg,
# /etc, /var) lands in the tmpfs and vanishes at stop; the host's file system is never
# written. Several sandboxes, by distinct names, can run at once. Inside,
# /usr/sbin/policy-rc.d is removed: some container images ship one that exits 101, which
# would keep packages from starting their units, and a real host has none.
#
# Host state: only ${DISPATCHD_SANDBOX_STATE:-/run/dispatchd-sandbox}/NAME/ (pid files,
# the console log, an empty mount point), removed by `stop`.
#
# DISPATCHD_SANDBOX_LOWER=DIR at `boot`: the overlay's lower directory is DIR, a root file
# system of its own (a debootstrapped Debian 13, say), instead of the host's /. It is never
# written either.
set -euo pipefail

STATE=${DISPATCHD_SANDBOX_STATE:-/run/dispatchd-sandbox}
LOWER=${DISPATCHD_SANDBOX_LOWER:-/}
BOOT_TIMEOUT=${DISPATCHD_SANDBOX_BOOT_TIMEOUT:-90}
PROG=$(basename "$0")

die() { echo "$PROG: $*" >&2; exit 1; }
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
help() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }

check_name() {
    [[ ${1:-} =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] ||
        die "bad sandbox name '${1:-}': use 1 to 32 letters, digits, '-' or '_'"
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it mounts file systems and boots systemd): sudo $0 $*"
}

# systemd-nspawn comes with systemd-container; install it when missing.
need_nspawn() {
    command -v systemd-nspawn >/dev/null && return 0
    echo "$PROG: systemd-nspawn missing, installing systemd-container" >&2
    command -v apt-get >/dev/null || die "systemd-nspawn missing and no apt-get: install systemd-container"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd-container >&2 ||
        die "failed to install systemd-container (try: apt-get update)"
}

nspawn_pid() { cat "$STATE/$1/nspawn.pid" 2>/dev/null || true; }

is_running() {
    local pid
    pid=$(nspawn_pid "$1")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ]
}

# The container's PID 1, seen from the host: nspawn's child running systemd.
leader_pid() {
    local pid child
    pid=$(nspawn_pid "$1")
    [ -n "$pid" ] || return 1
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then
            echo "$child"
            return 0
        fi
    done
    return 1
}

# Runs a command inside with a clean, login-like environment.
enter() {
    local name=$1 leader
    shift
    leader=$(leader_pid "$name") || die "sandbox '$name' is not running (sudo $0 boot $name)"
    exec nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup -- \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# Where systemd is not PID 1, nobody manages the cgroup tree, and nspawn --keep-unit puts
# the container under the cgroup it was started in: for a process in the root cgroup that
# is /payload, the same for every sandbox, so that concurrent sandboxes' systemds would
# share (and kill in) one another's cgroups (seen: "Input/output error" from
# `systemctl kill`, status=219/CGROUP). Start each sandbox in a cgroup of its own, in every
# writable hierarchy nspawn uses (name=systemd on cgroup v1, the unified one).
CGROUP_ROOTS=(/sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup)
own_cgroup() {
    local name=$1 h
    for h in "${CGROUP_ROOTS[@]}"; do
        [ -w "$h/cgroup.procs" ] || continue
        mkdir -p "$h/dispatchd-sandbox-$name"
        echo $$ > "$h/dispatchd-sandbox-$name/cgroup.procs"
    done
}

# Removes a stopped sandbox's cgroups (empty once its processes are gone), deepest first.
drop_cgroup() {
    local name=$1 h
    for h in "${CGROUP_ROOTS[@]}"; do
        [ -d "$h/dispatchd-sandbox-$name" ] || continue
        find "$h/dispatchd-sandbox-$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

# Run by `boot` in the new, private mount namespace: build the overlay, boot it.
inner() {
    local name=$1 network=$2 dir=$STATE/$1
    local root=$dir/root
    mount -t tmpfs -o mode=0755 "dispatchd-sandbox-$name" "$root"
    mkdir "$root/upper" "$root/work" "$root/merged"
    mount -t overlay "dispatchd-sandbox-$name" \
        -o "lowerdir=$LOWER,upperdir=$root/upper,workdir=$root/work" "$root/merged"
    rm -f "$root/merged/usr/sbin/policy-rc.d"
    echo "$name" > "$root/merged/etc/hostname"
    # nspawn keeps per-machine state in /run/systemd/nspawn; keep it in this namespace.
    if [ -d /run/systemd/nspawn ]; then mount -t tmpfs tmpfs /run/systemd/nspawn; fi
    local keep_unit=()
    # Without systemd as PID 1 on the host there is no bus to ask for a scope: stay in ours.
    # With it, nspawn allocates its own scope (with the cgroup delegation it needs).
    if [ ! -d /run/systemd/system ]; then
        keep_unit=(--keep-unit)
        own_cgroup "$name"
    fi
    echo $$ > "$dir/nspawn.pid"
    # --private-network: only a loopback device inside. dispatchd needs no network, and the
    # container may then set up network namespaces of its own (the units' PrivateNetwork=).
    local net=(--private-network)
    [ "$network" = host ] && net=()
    exec systemd-nspawn --directory="$root/merged" --machine="$name" --register=no \
        "${keep_unit[@]}" "${net[@]}" --boot -- --unit=basic.target
}

cmd_boot() {
    local name=$1 network=$2 dir=$STATE/$1 deadline leader state=""
    need_root boot "$name"
    need_nspawn
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
        die "the kernel has no overlayfs: a sandbox cannot be built here"
    if is_running "$name"; then die "sandbox '$name' is already running (sudo $0 stop $name)"; fi
    [ -x "$LOWER/lib/systemd/systemd" ] || [ -x "$LOWER/usr/lib/systemd/systemd" ] ||
        die "DISPATCHD_SANDBOX_LOWER='$LOWER' has no systemd to boot"
    rm -rf "${dir:?}/nspawn.pid" "$dir/console.log"
    if [ -d "$dir/root" ]; then rmdir "$dir/root"; fi
    mkdir -p "$dir/root"

    setsid unshare --mount --propagation private -- "$0" __inner "$name" "$network" \
        </dev/null >"$dir/console.log" 2>&1 &

    deadline=$((SECONDS + BOOT_TIMEOUT))
    until leader=$(leader_pid "$name"); do
        if ! kill -0 $! 2>/dev/null; then
            tail -n 20 "$dir/console.log" >&2
            die "sandbox '$name' did not boot (console log above, all of it in $dir/console.log)"
        fi
        [ $SECONDS -lt $deadline ] || die "sandbox '$name': no systemd after ${BOOT_TIMEOUT}s ($dir/console.log)"
        sleep 0.1
    done
    # Boot is over once the manager reports running (or degraded: a unit of the host's
    # image that cannot work in a container, which is not ours to fix).
    until [[ $state =~ ^(running|degraded)$ ]]; do
        [ $SECONDS -lt $deadline ] || {
            tail -n 20 "$dir/console.log" >&2
            die "sandbox '$name' still '$state' after ${BOOT_TIMEOUT}s ($dir/console.log)"
        }
        sleep 0.1
        state=$(nsenter --target "$leader" --mount --pid -- systemctl is-system-running 2>/dev/null) || true
    done
    echo "$PROG: sandbox '$name' is up ($state), PID 1 is host pid $leader" >&2
}

cmd_stop() {
    local name=$1 dir=$STATE/$1 pid deadline
    need_root stop "$name"
    pid=$(nspawn_pid "$name")
    if is_running "$name"; then
        # SIGTERM: nspawn asks the container's systemd to power off, then exits.
        kill -TERM "$pid"
        deadline=$((SECONDS + 30))
        while [ -d "/proc/$pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        if [ -d "/proc/$pid" ]; then
            echo "$PROG: sandbox '$name' did not power off in 30 s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while [ -d "/proc/$pid" ]; do sleep 0.1; done
        fi
        echo "$PROG: sandbox '$name' stopped" >&2
    else
        echo "$PROG: sandbox '$name' is not running" >&2
    fi
    drop_cgroup "$name"
    # The overlay lived in the sandbox's own mount namespace: here root/ is an empty dir.
    rm -f "$dir/nspawn.pid" "$dir/console.log"
    if [ -d "$dir/root" ]; then rmdir "$dir/root"; fi
    if [ -d "$dir" ]; then rmdir "$dir"; fi
    rmdir "$STATE" 2>/dev/null || true
}

cmd_copy_in() {
    local name=$1 dest=$2 src
    shift 2
    [ $# -gt 0 ] || die "copy-in: nothing to copy"
    is_running "$name" || die "sandbox '$name' is not running"
    # The sandbox has its own /tmp, so files travel through a pipe, not a shared path.
    for src in "$@"; do
        [ -e "$src" ] || die "copy-in: no such file: $src"
        tar -C "$(dirname "$src")" -cf - "$(basename "$src")" |
            "$0" exec "$name" sh -c 'mkdir -p "$1" && tar -C "$1" -xf -' sh "$dest"
    done
}

main() {
    local verb=${1:-}
    [ $# -gt 0 ] && shift
    case $verb in
        boot)
            [ $# -eq 1 ] || { [ $# -eq 2 ] && [ "$2" = --host-network ]; } || usage
            check_name "$1"
            cmd_boot "$1" "$([ "${2:-}" = --host-network ] && echo host || echo private)" ;;
        exec) [ $# -ge 2 ] || usage; check_name "$1"; need_root exec "$1"; enter "$@" ;;
        shell)
            [ $# -eq 1 ] || usage; check_name "$1"; need_root shell "$1"
            echo "$PROG: entering sandbox '$1'; leave with 'exit'" >&2
            enter "$1" bash -l ;;
        copy-in) [ $# -ge 3 ] || usage; check_name "$1"; need_root copy-in "$1"; cmd_copy_in "$@" ;;
        stop) [ $# -eq 1 ] || usage; check_name "$1"; cmd_stop "$1" ;;
        status)
            [ $# -eq 1 ] || usage; check_name "$1"
            is_running "$1" || { echo "$PROG: sandbox '$1' is not running" >&2; exit 1; }
            leader_pid "$1" ;;
        list)
            local d
            for d in "$STATE"/*/; do
                [ -d "$d" ] || continue
                d=$(basename "$d")
                if is_running "$d"; then echo "$d"; fi
            done ;;
        __inner) inner "$1" "$2" ;;
        -h | --help | help) help ;;
        *) usage ;;
    esac
}

main "$@"
