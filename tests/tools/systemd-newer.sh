#!/bin/bash
# Fetches a systemd of version 253 or later (Debian 12's backport) and unpacks it into DIR,
# for tests/tests/under_systemd.rs to boot beside the machine's own 252: the shipped
# hello.service (Type=notify-reload) needs 253. Nothing is installed: apt works in a private
# directory, and the packages are only unpacked.
#
#   tests/tools/systemd-newer.sh DIR
#   GINKGO_TEST_SYSTEMD_NEWER=DIR cargo test -p ginkgo-tests --features systemd --test under_systemd
set -euo pipefail
dest=${1:?usage: systemd-newer.sh DIR}
if [ -x "$dest/lib/systemd/systemd" ]; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial"
cat > "$work/parts/backports.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_private=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "APT::Sandbox::User=root")
apt-get "${apt_private[@]}" -qq update
version=$(apt-cache "${apt_private[@]}" show systemd | sed -n 's/^Version: \(.*bpo.*\)/\1/p' | head -1)
if [ -z "$version" ]; then
    echo "no systemd in bookworm-backports" >&2
    exit 1
fi
(cd "$work" && apt-get "${apt_private[@]}" -qq download "systemd=$version" "libsystemd-shared=$version")
mkdir -p "$dest"
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$dest"
done
echo "systemd $version unpacked in $dest"
