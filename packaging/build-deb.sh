#!/bin/bash
# packaging/build-deb.sh: build dist/dispatchd_<version>_<arch>.deb (`npm run deb`, which
# runs `npm run build` first).
#
# Copies what the package needs into a staging tree under build/deb-staging/ (the compiled
# JavaScript, package.json and package-lock.json, units, docs, the conffile, and
# packaging/debian as debian/), stamps the version from package.json into
# debian/changelog, and runs `dpkg-buildpackage -b -us -uc` there. The package build
# installs the production dependencies with `npm ci --omit=dev` and compiles the native
# addons against the installed Node headers (npm_config_nodedir=/usr): no header download.
# Leaves exactly one dispatchd_*.deb in dist/.
set -euo pipefail

die() { echo "build-deb: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

command -v dpkg-buildpackage >/dev/null ||
    die "dpkg-buildpackage not found: apt-get install dpkg-dev debhelper"
[ -f build/daemons/main-server/main.js ] ||
    die "build/daemons/main-server/main.js missing: run 'npm run build' first (or 'npm run deb')"

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "package.json version '$version' is not a Debian version"

staging=build/deb-staging
src=$staging/dispatchd-$version
rm -rf "$staging"
mkdir -p "$src"

# Sources of the package: only what debian/install, debian/docs and debian/manpages use.
cp package.json package-lock.json "$src/"
mkdir -p "$src/build" "$src/packaging"
# Compiled JavaScript only: no declarations (.d.ts) nor source maps (their .ts is not shipped).
(cd build && find daemons -type f -name '*.js' -print0 | tar --null -cf - -T -) | tar -xf - -C "$src/build"
# Entry points with a #! line (dispatchctl.js, linked from /usr/bin) are executable.
find "$src/build/daemons" -name '*.js' -print0 |
    while IFS= read -r -d '' f; do
        if [ "$(head -c 2 "$f")" = '#!' ]; then chmod 0755 "$f"; else chmod 0644 "$f"; fi
    done
cp -a units "$src/units"
cp packaging/dispatchd.conf "$src/packaging/"
if [ -f README.md ]; then cp README.md "$src/"; fi
if [ -d docs ]; then cp -a docs "$src/docs"; fi

cp -a packaging/debian "$src/debian"
# sysusers.d and tmpfiles.d live in units/ with the units; dh_installsysusers and
# dh_installtmpfiles take them from debian/<package>.{sysusers,tmpfiles}.
cp units/sysusers.d/dispatchd.conf "$src/debian/dispatchd.sysusers"
cp units/tmpfiles.d/dispatchd.conf "$src/debian/dispatchd.tmpfiles"

# Documentation: README and docs/*.md into /usr/share/doc/dispatchd, man pages from docs/man.
: > "$src/debian/docs"
if [ -f "$src/README.md" ]; then echo README.md >> "$src/debian/docs"; fi
if [ -d "$src/docs" ]; then
    (cd "$src" && find docs -maxdepth 1 -name '*.md' | sort) >> "$src/debian/docs"
fi
if [ -d "$src/docs/man" ]; then
    (cd "$src" && find docs/man -maxdepth 1 -name '*.[1-8]' | sort) > "$src/debian/manpages"
fi

# The Debian version is package.json's (a native package): add a changelog entry when the
# newest one names another version.
top=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [ "$top" != "$version" ]; then
    {
        printf 'dispatchd (%s) unstable; urgency=medium\n\n' "$version"
        printf '  * Version %s, from package.json.\n\n' "$version"
        printf ' -- dispatchd developers <dispatchd@example.org>  %s\n\n' "$(date -R)"
        cat packaging/debian/changelog
    } > "$src/debian/changelog"
fi

echo "build-deb: building dispatchd $version for $arch in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc)

deb=$staging/dispatchd_${version}_${arch}.deb
[ -f "$deb" ] || die "dpkg-buildpackage did not produce $deb"
mkdir -p dist
rm -f dist/dispatchd_*.deb
mv "$deb" dist/
echo "build-deb: wrote dist/dispatchd_${version}_${arch}.deb"
