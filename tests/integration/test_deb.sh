#!/usr/bin/env bash
# tests/integration/test_deb.sh: the Debian packages of debian/, built, installed and tested.
#
#   1. installs what the package build needs when it is missing (as root:
#      apt-get build-dep on debian/control);
#   2. copies the checkout's files (tracked and untracked, not ignored: what git
#      would commit, no build products) to a temporary directory and builds the
#      binary packages there with dpkg-buildpackage -us -uc -b, so the checkout
#      and its build are untouched (the build also fails when debian/control is
#      older than debian/control.in: pg_buildext checkcontrol);
#   3. the version: debian/changelog's upstream version is clad.control's
#      default_version (checked against a changelog with another version too, so
#      the check is known to fail on a mismatch), the packages carry it, and
#      META.json's version is it in semantic-version form (0.2 -> 0.2.0);
#   4. the packages' contents: postgresql-15-clad has clad.so, clad.control and
#      every sql/clad--*.sql; clad-train has /usr/bin/clad-train and its man page,
#      written by help2man from --help (its synopsis and options);
# and as root:
#   5. installs both .debs (apt-get install ./x.deb), checks `dpkg -V`, that
#      /usr/bin/clad-train --version prints the version and that man finds its
#      page (where dpkg installs man pages);
#   6. a throwaway cluster (tests/integration/pgcluster.sh): CREATE EXTENSION clad VERSION
#      '0.1' and ALTER EXTENSION clad UPDATE reach the version from the installed
#      scripts, then pg_regress (make installcheck) against the installed files,
#      its fixture models trained by the installed clad-train (CLAD_TRAIN);
#   7. purges both packages and runs `make install` in the checkout, so the
#      developer build's extension is installed again as the other tests expect
#      (also when a check fails).  Installed clad packages are purged too.
# Not as root: steps 1-4 only (the build dependencies must be installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
CHECKOUT=$PWD

PY=${PYTHON:-/usr/bin/python3}
MNIST=${MNIST:-$CHECKOUT/data/mnist}
PKGS=(postgresql-15-clad clad-train)

. tests/integration/checks.sh
root=0
[ "$(id -u)" = 0 ] && root=1
t_start=$(date +%s)

W=$(mktemp -d /tmp/clad_test_deb.XXXXXX)
SRC=$W/clad
installed=0
# the EXIT trap: purge the packages, reinstall the checkout's build, remove $W
restore() {
	if [ "$installed" = 1 ]; then
		dpkg --purge "${PKGS[@]}" >"$W/purge.log" 2>&1 ||
			{ cat "$W/purge.log" >&2; echo "test_deb.sh: dpkg --purge failed" >&2; }
		(cd "$CHECKOUT" && make -s install >/dev/null) || echo "test_deb.sh: make install in the checkout failed" >&2
		installed=0
	fi
	rm -rf "$W"
}
trap restore EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the source copy and its build dependencies
git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read -T - -cf - 2>/dev/null | (mkdir -p "$SRC" && tar -xf - -C "$SRC")
# (man-db: the man page is read with man)
if ! command -v dpkg-checkbuilddeps >/dev/null || ! command -v man >/dev/null ||
	! (cd "$SRC" && dpkg-checkbuilddeps >/dev/null 2>&1); then
	if [ "$root" = 0 ]; then
		echo "test_deb.sh: missing build dependencies (run as root, or apt-get build-dep ./; man-db):" \
			"$(cd "$SRC" && dpkg-checkbuilddeps 2>&1 || true)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends dpkg-dev man-db >/dev/null
	apt-get build-dep -y -q --no-install-recommends "$SRC" >/dev/null
fi

# ---------------------------------------------------------------- the build
t0=$(date +%s)
if ! (cd "$SRC" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$W/build.log" 2>&1; then
	tail -40 "$W/build.log" >&2
	echo "test_deb.sh: dpkg-buildpackage failed ($W/build.log above)" >&2
	exit 1
fi
build_s=$(($(date +%s) - t0))

# ---------------------------------------------------------------- one version number
VERSION=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" clad.control)
# upstream_version CHANGELOG: the top entry's version without epoch and revision
upstream_version() {
	local v
	v=$(dpkg-parsechangelog -l "$1" -S Version)
	v=${v#*:}
	echo "${v%-*}"
}
# version_agrees CHANGELOG CONTROL: debian/changelog's upstream version is the
# control file's default_version
version_agrees() {
	[ "$(upstream_version "$1")" = "$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$2")" ]
}
[ -n "$VERSION" ] && ok || bad "no default_version in clad.control"
version_agrees debian/changelog clad.control && ok ||
	bad "debian/changelog's version $(upstream_version debian/changelog) is not clad.control's default_version $VERSION"
sed "1s/(\([^)]*\))/(9.$VERSION-1)/" debian/changelog >"$W/changelog.other"
version_agrees "$W/changelog.other" clad.control && bad "the version check passes a changelog of version 9.$VERSION" || ok
DEBVER=$(dpkg-parsechangelog -l debian/changelog -S Version)
semver=$VERSION
[[ $semver =~ ^[0-9]+\.[0-9]+$ ]] && semver=$semver.0
meta=$("$PY" -c 'import json,sys; m=json.load(open("META.json")); print(m["version"], m["provides"]["clad"]["version"], m["provides"]["clad"]["file"])')
[ "$meta" = "$semver $semver sql/clad--$VERSION.sql" ] && ok || bad "META.json: version, provides: '$meta', not '$semver $semver sql/clad--$VERSION.sql'"

# ---------------------------------------------------------------- the packages
arch=$(dpkg --print-architecture)
deb() { echo "$W/${1}_${DEBVER}_$arch.deb"; }
for p in "${PKGS[@]}"; do
	[ -f "$(deb "$p")" ] && ok || { bad "no $(deb "$p") (built: $(ls "$W"))"; exit 1; }
	[ "$(dpkg-deb -f "$(deb "$p")" Version)" = "$DEBVER" ] && ok || bad "$p's version is not $DEBVER"
done
contents=$(dpkg-deb -c "$(deb postgresql-15-clad)" | awk '{print $6}')
want=(./usr/lib/postgresql/15/lib/clad.so ./usr/share/postgresql/15/extension/clad.control)
for f in sql/clad--*.sql; do
	want+=("./usr/share/postgresql/15/extension/${f#sql/}")
done
for f in "${want[@]}"; do
	grep -qxF "$f" <<<"$contents" && ok || bad "postgresql-15-clad lacks $f"
done
# depends_on PACKAGE NAME...: the .deb's Depends name each NAME (alone or as an alternative)
depends_on() {
	local p=$1 d names
	shift
	names=$(dpkg-deb -f "$(deb "$p")" Depends | tr ',|' '\n\n' | awk '{print $1}')
	for d in "$@"; do
		grep -qxF "$d" <<<"$names" && ok || bad "$p does not depend on $d: $(dpkg-deb -f "$(deb "$p")" Depends)"
	done
}
# OpenBLAS is dlopen()ed (no shlibs entry): debian/control names it
depends_on postgresql-15-clad postgresql-15 libopenblas0 libopenblas0-pthread libjansson4 libpng16-16 libjpeg62-turbo
depends_on clad-train libopenblas0 libopenblas0-pthread libpq5 libsvm3 libjansson4
MAN=./usr/share/man/man1/clad-train.1.gz
dpkg-deb -c "$(deb clad-train)" | awk '{print $6}' | grep -qxF ./usr/bin/clad-train && ok || bad "clad-train lacks /usr/bin/clad-train"
page=$(dpkg-deb --fsys-tarfile "$(deb clad-train)" | tar -xOf - "$MAN" | zcat | MANWIDTH=200 man -l - 2>/dev/null || true)
grep -q "^SYNOPSIS" <<<"$page" && grep -qE "^ +clad-train push --db CONNINFO" <<<"$page" && ok ||
	bad "clad-train's man page has no synopsis of the forms: $(head -20 <<<"$page")"
grep -qE -- "^ +--model-name NAME" <<<"$page" && ok || bad "clad-train's man page lacks --model-name"
echo "built in ${build_s} s: $(cd "$W" && ls -- *.deb | tr '\n' ' ')"

if [ "$root" = 0 ]; then
	echo "test_deb.sh: not root: the packages were not installed nor tested on a cluster" >&2
	if [ "$fails" -ne 0 ]; then
		echo "test_deb.sh: $fails of $checks checks failed" >&2
		exit 1
	fi
	echo "test_deb.sh: all $checks checks of the build passed (installing needs root)"
	exit 0
fi

# ---------------------------------------------------------------- installed
export DEBIAN_FRONTEND=noninteractive
installed=1
chmod 755 "$W"			# apt reads the .debs as its _apt user
apt-get install -y -q --no-install-recommends "$(deb clad-train)" "$(deb postgresql-15-clad)" >"$W/apt.log" 2>&1 ||
	{ cat "$W/apt.log" >&2; bad "apt-get install of the packages failed"; exit 1; }
for p in "${PKGS[@]}"; do
	[ "$(dpkg-query -W -f='${Status} ${Version}' "$p")" = "install ok installed $DEBVER" ] && ok || bad "$p is not installed"
done
v=$(/usr/bin/clad-train --version)
[ "$v" = "clad-train (clad) $VERSION" ] && ok || bad "/usr/bin/clad-train --version prints '$v'"
listed=$(dpkg -L postgresql-15-clad)
for f in "${want[@]}"; do
	grep -qxF "${f#.}" <<<"$listed" && [ -s "${f#.}" ] && ok || bad "dpkg -L postgresql-15-clad: ${f#.} not listed or not there"
done
dpkg -L clad-train | grep -qxF "${MAN#.}" && ok || bad "dpkg -L clad-train does not list ${MAN#.}"
if [ -e "${MAN#.}" ]; then
	[ "$(man -w clad-train 2>/dev/null)" = "${MAN#.}" ] && ok || bad "man -w clad-train: '$(man -w clad-train 2>&1)', not ${MAN#.}"
else
	echo "note: dpkg's configuration keeps man pages out (path-exclude): the page was checked in the .deb"
fi

# ---------------------------------------------------------------- pg_regress against the installed files
. tests/integration/pgcluster.sh
pgc_start clad_test_deb "max_worker_processes = 8" "max_parallel_workers = 4"
trap 'pgc_cleanup; restore' EXIT
up=$(psql_q -c "CREATE EXTENSION clad VERSION '0.1'" -c "ALTER EXTENSION clad UPDATE" \
	-c "SELECT extversion FROM pg_extension WHERE extname = 'clad'" -c "DROP EXTENSION clad" 2>&1 || true)
[ "$up" = "$VERSION" ] && ok || bad "CREATE EXTENSION clad VERSION '0.1' + ALTER EXTENSION clad UPDATE: $up"

# the suite from the packaged tree (the checkout's tests/), its models trained by
# the installed clad-train: make installcheck makes its own fixtures with
# CLAD_TRAIN; a tree whose Makefile does not yet (no regress-fixtures target)
# needs them from tests/ext/fixtures.sh, trained on data/mnist
cd "$SRC"
export CLAD_TRAIN=/usr/bin/clad-train
if ! grep -q '^regress-fixtures:' Makefile; then
	pgc_need_mnist test_deb.sh "$MNIST"
	# as test_ext.sh trains them, from data/mnist (the path goes into the models)
	[ -e data ] || ln -s "$(dirname "$(cd "$MNIST" && pwd)")" data
	MNIST=data/$(basename "$MNIST")
	BIN=$CLAD_TRAIN
	. tests/ext/fixtures.sh
	regress_fixtures "$T/regress"
fi
rm -rf tests/build/regress
t0=$(date +%s)
if make -s installcheck; then ok
else
	[ -f tests/build/regress/regression.diffs ] && head -200 tests/build/regress/regression.diffs
	bad "pg_regress against the installed packages failed"
fi
regress_s=$(($(date +%s) - t0))
# the server ran the package's files: none was changed meanwhile
dpkg -V "${PKGS[@]}" >"$W/verify.txt" 2>&1 && [ ! -s "$W/verify.txt" ] && ok || bad "dpkg -V: $(cat "$W/verify.txt")"
cd "$CHECKOUT"
echo "pg_regress against the installed packages: ${regress_s} s ($(sed -n 's/^REGRESS *= *//p' extension/pgxs.mk | wc -w) files)"

# ---------------------------------------------------------------- back to the developer build
pgc_cleanup
trap restore EXIT
restore
trap - EXIT
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" && bad "$p is still installed after the purge" || ok
done
[ -s "$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/clad.so" ] && ok || bad "make install did not put the checkout's clad.so back"

if [ "$fails" -ne 0 ]; then
	echo "test_deb.sh: $fails of $checks checks failed" >&2
	exit 1
fi
echo "test_deb.sh: all $checks checks passed: packages $DEBVER built (${build_s} s), installed, pg_regress passed against them, purged; $(($(date +%s) - t_start)) s in all"
