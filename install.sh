#!/bin/bash
# install.sh: build dispatchd, package it and install it.
#
#   sudo ./install.sh            on a Debian host where systemd is PID 1: install the .deb,
#                                start dispatchd.target, serve one demo request
#   sudo ./install.sh --sandbox  where systemd is not PID 1 (containers, CI): the same build,
#                                then install and run it in a throw-away systemd
#                                (packaging/sandbox.sh); nothing on the host changes but the
#                                build outputs (and any build tool that was missing)
#
# The sandbox is named 'dispatchd' (DISPATCHD_SANDBOX_NAME=NAME for another, so that two
# people on one machine do not replace each other's).
# Both install what they need from apt (build tools) and npm (`npm ci`), build
# (`npm run deb` writes dist/dispatchd_<version>_<arch>.deb) and are safe to run again.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The sandbox's name; another one lets two people on one machine each keep their own.
SANDBOX_NAME=${DISPATCHD_SANDBOX_NAME:-dispatchd}
SANDBOX="$REPO/packaging/sandbox.sh"
BUILD_PACKAGES=(build-essential python3 pkg-config libsystemd-dev debhelper dpkg-dev dh-python)

if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
say() { printf '%sinstall.sh:%s %s\n' "$BOLD" "$PLAIN" "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

mode=host
case ${1:-} in
    '') ;;
    --sandbox) mode=sandbox ;;
    -h | --help) usage 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage 64 >&2 ;;
esac
[ $# -le 1 ] || usage 64 >&2

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"
command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "this installer needs a Debian-based system (apt-get, dpkg): Debian 12 or 13"

# --- where systemd runs -------------------------------------------------------------------
if [ "$mode" = host ] && [ ! -d /run/systemd/system ]; then
    die "systemd is not PID 1 here (a container?), so the suite cannot run on this host.
  Run it in a throw-away systemd instead:  sudo $0 --sandbox"
fi

apt_updated=no
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    say "installing from apt: ${missing[*]}"
    if [ $apt_updated = no ]; then
        apt-get update -qq
        apt_updated=yes
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
# --- Node.js ---------------------------------------------------------------------------------
# The supported lines are package.json's `engines` (20.19 and later 20.x, 22, 24, 26); the
# .deb depends on the major version it was built with. Debian 13 (trixie) and later ship a
# supported nodejs (20.19) and npm themselves: installed from apt when Node.js is missing.
# Debian 12 ships 18: there, Node.js comes from NodeSource's nodejs package.
os_id=$( . /etc/os-release 2>/dev/null && echo "${ID:-}")
os_version=$( . /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}")
debian_own_node=no
if [ "$os_id" = debian ] && [[ ${os_version%%.*} =~ ^[0-9]+$ ]] && [ "${os_version%%.*}" -ge 13 ]; then
    debian_own_node=yes
fi
if [ $debian_own_node = yes ]; then
    node_help="dispatchd needs Node.js 20.19 or later 20.x, 22, 24 or 26 from a Debian package named
  'nodejs', with npm. On Debian $os_version, Debian's own packages are enough:
    sudo apt-get install nodejs npm
  then run $0 again."
else
    node_help="dispatchd needs Node.js 20.19 or later 20.x, 22, 24 or 26 from a Debian package named
  'nodejs' (the .deb depends on the major version it is built with: its native addons are
  built for that line's ABI). On Debian 12, install it from NodeSource, for example 24:
    curl -fsSL https://deb.nodesource.com/setup_24.x | sudo bash -
    sudo apt-get install -y nodejs
  then run $0 again."
fi
if ! command -v node >/dev/null && [ $debian_own_node = yes ]; then
    say "Debian $os_version: installing Node.js and npm from Debian"
    apt_install nodejs npm
fi
command -v node >/dev/null || die "Node.js is not installed. $node_help"
node_version=$(node --version)
# One place for the supported lines: package.json's engines ("^20.19.0 || ^22.0.0 || ...").
node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    const ranges = require(process.argv[1]).engines.node.split("||");
    process.exit(ranges.some((r) => { const m = /\^(\d+)\.(\d+)/.exec(r); return m && +m[1] === major && minor >= +m[2]; }) ? 0 : 1);
' "$REPO/package.json" ||
    die "found Node.js $node_version at $(command -v node), not a supported line ($(node -p "require('$REPO/package.json').engines.node")). $node_help"
pkg_version=$(dpkg-query -W -f '${Version}' nodejs 2>/dev/null || true)
pkg_major=${pkg_version#*:}
pkg_major=${pkg_major%%.*}
node_major=${node_version#v}
node_major=${node_major%%.*}
[ -n "$pkg_version" ] ||
    die "Node.js $node_version is not from the Debian package 'nodejs' (nvm or a tarball?), so the .deb's dependency cannot be met. $node_help"
[ "$pkg_major" = "$node_major" ] ||
    die "the Debian package 'nodejs' is $pkg_version, but $(command -v node) is $node_version: the .deb would depend on the wrong line. $node_help"
if ! command -v npm >/dev/null; then
    if [ $debian_own_node = yes ]; then apt_install npm; fi
    command -v npm >/dev/null || die "npm is missing (NodeSource's nodejs package includes it; on Debian 13: apt-get install npm). $node_help"
fi
say "Node.js $node_version (package nodejs $pkg_version), npm $(npm --version)"

# --- build tools from apt -------------------------------------------------------------------
# Debian's own nodejs keeps its headers (for node-gyp) in libnode-dev; systemd-dev says where
# units go on Debian 13 (/usr/lib/systemd/system, packaging/build-deb.sh asks pkg-config).
if [ $debian_own_node = yes ] && [ ! -f /usr/include/node/node.h ]; then BUILD_PACKAGES+=(libnode-dev); fi
if [ $debian_own_node = yes ]; then BUILD_PACKAGES+=(systemd-dev); fi
apt_install "${BUILD_PACKAGES[@]}"
[ "$mode" = sandbox ] && apt_install systemd systemd-container

# --- build and package, as the owner of the checkout -----------------------------------------
# (so that node_modules/, build/ and dist/ stay the developer's, not root's)
owner=$(stat -c %U "$REPO")
as_owner() {
    if [ "$owner" = root ]; then
        "$@"
    else
        runuser -u "$owner" -- env HOME="$(getent passwd "$owner" | cut -d: -f6)" "$@"
    fi
}
cd "$REPO"
# The native addons build against the installed Node headers: no download from nodejs.org.
# (NodeSource's nodejs has them in /usr/include/node; Debian's own in libnode-dev, which
# BUILD_PACKAGES brings on Debian 13.)
if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
say "installing the npm dependencies (npm ci)"
as_owner env npm_config_nodedir="${npm_config_nodedir:-}" npm ci --no-audit --no-fund
log="$REPO/build/install-build.log"
as_owner mkdir -p "$REPO/build"
say "building and packaging (npm run deb; log in ${log#"$REPO"/})"
as_owner env npm_config_nodedir="${npm_config_nodedir:-}" npm run deb > "$log" 2>&1 || {
    tail -n 40 "$log" >&2
    die "npm run deb failed (the last lines above; all of it in $log)"
}
version=$(node -p 'require("./package.json").version')
deb="$REPO/dist/dispatchd_${version}_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || die "npm run deb did not write $deb"
say "built $deb"

# --- install on this host ----------------------------------------------------------------------
install_host() {
    say "installing $deb"
    # dbus and polkitd may have to come from the archive: make sure apt has package lists.
    if [ $apt_updated = no ] && ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -qq
    fi
    # --reinstall: running this script again installs the freshly built package again.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$deb"

    # Some container images ship /usr/sbin/policy-rc.d exiting 101: it lets package scripts
    # enable units but not start or restart them. Say so, and do it ourselves.
    rc=0
    if [ -x /usr/sbin/policy-rc.d ]; then /usr/sbin/policy-rc.d dispatchd.target start >/dev/null 2>&1 || rc=$?; fi
    if [ "$rc" = 101 ]; then
        say "note: /usr/sbin/policy-rc.d forbids package scripts to start services (exit 101)."
        if systemctl is-active --quiet dispatchd.target; then
            say "      The package could not restart dispatchd.target onto the new files: restarting it now."
            systemctl restart dispatchd.target
        else
            say "      The package enabled dispatchd.target without starting it: starting it now."
            systemctl start dispatchd.target
        fi
    elif ! systemctl is-active --quiet dispatchd.target; then
        systemctl start dispatchd.target
    fi
    systemctl is-active --quiet dispatchd.target || {
        systemctl --no-pager status 'dispatchd*' || true
        die "dispatchd.target did not start; see: journalctl -u 'dispatchd*' -p warning"
    }

    say "demo: dispatchctl request echo hello"
    out=$(dispatchctl request echo hello) || die "the demo request failed: journalctl -u 'dispatchd*' -p warning"
    echo "$out"
    [ "$out" = hello ] || die "the demo request answered '$out' instead of 'hello'"

    cat <<EOF

dispatchd $version is installed and running (dispatchd.target is enabled and active).

  dispatchctl request echo hello          # prints hello
  dispatchctl request sha256 < FILE       # lowercase hex SHA-256 of FILE
  dispatchctl status                      # every daemon from the scoreboard (--json too)
  systemctl status dispatchd.target 'dispatchd-*'
  journalctl -u 'dispatchd-*' -p warning  # what went wrong, if anything
  sudo usermod -aG dispatchd-clients USER # let USER send requests (root always may)

Configuration: /etc/dispatchd/dispatchd.conf, then: dispatchctl check-config && sudo systemctl reload dispatchd.target
Secondaries: sudo dispatchctl scale N     (2 by default)
Manual: man dispatchd, man dispatchctl, /usr/share/doc/dispatchd/
Python client and workers: sudo apt-get install $REPO/dist/python3-dispatchd_${version}_all.deb (docs/PYTHON.md)
Remove: sudo apt-get remove dispatchd (purge also removes /etc/dispatchd)
EOF
}

# --- install in a throw-away systemd -----------------------------------------------------------
install_sandbox() {
    local inside=/root/dispatchd-deb net=()
    # The package's run-time dependencies come from the host's image underneath the overlay;
    # what the host lacks is downloaded inside, which needs the host's network.
    local need=() p
    for p in dbus polkitd; do
        dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || need+=("$p")
    done
    [ ${#need[@]} -eq 0 ] || net=(--host-network)

    if "$SANDBOX" status "$SANDBOX_NAME" >/dev/null 2>&1; then
        say "stopping the sandbox '$SANDBOX_NAME' of a previous run"
        "$SANDBOX" stop "$SANDBOX_NAME"
    fi
    say "booting a throw-away systemd: sandbox '$SANDBOX_NAME'"
    "$SANDBOX" boot "$SANDBOX_NAME" "${net[@]}"
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]} inside the sandbox (the host has none)"
        "$SANDBOX" exec "$SANDBOX_NAME" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${need[*]}"
    fi
    "$SANDBOX" copy-in "$SANDBOX_NAME" "$inside" "$deb"
    say "installing $(basename "$deb") inside the sandbox"
    "$SANDBOX" exec "$SANDBOX_NAME" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "$inside/$(basename "$deb")"
    "$SANDBOX" exec "$SANDBOX_NAME" systemctl is-active --quiet dispatchd.target || {
        "$SANDBOX" exec "$SANDBOX_NAME" systemctl --no-pager status 'dispatchd*' || true
        die "dispatchd.target is not active in the sandbox"
    }
    say "demo, inside the sandbox: dispatchctl request echo hello"
    out=$("$SANDBOX" exec "$SANDBOX_NAME" dispatchctl request echo hello) ||
        die "the demo request failed; look with: sudo $SANDBOX exec $SANDBOX_NAME journalctl -u 'dispatchd*' -p warning"
    echo "$out"
    [ "$out" = hello ] || die "the demo request answered '$out' instead of 'hello'"

    cat <<EOF

dispatchd $version is installed and running in the sandbox '$SANDBOX_NAME', a throw-away
systemd over an overlay of / (its writes live in memory; the host is unchanged).

Enter it (a root shell; leave with 'exit'):
  sudo $SANDBOX shell $SANDBOX_NAME
then, inside:
  dispatchctl request echo hello
  dispatchctl status
  systemctl status dispatchd.target 'dispatchd-*'
  journalctl -u 'dispatchd-*'

Or run one command in it from the host:
  sudo $SANDBOX exec $SANDBOX_NAME dispatchctl status

The Python client and workers (docs/PYTHON.md) are a package of their own:
  sudo $SANDBOX copy-in $SANDBOX_NAME /root $REPO/dist/python3-dispatchd_${version}_all.deb
  sudo $SANDBOX exec $SANDBOX_NAME apt-get install -y /root/python3-dispatchd_${version}_all.deb

Stop it (everything inside is discarded):
  sudo $SANDBOX stop $SANDBOX_NAME
EOF
}

if [ "$mode" = host ]; then install_host; else install_sandbox; fi
