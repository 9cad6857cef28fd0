#!/usr/bin/env bash
# tests/fuzz/run.sh [--replay] NAME...: run the libFuzzer harnesses
# tests/build/fuzz/fuzz_NAME (built by make fuzz / make check-fuzz).
#   --replay  run every committed seed (tests/fuzz/corpus/NAME) and every
#             regression input (tests/fuzz/regress/NAME) once: each must pass
#   default   fuzz each harness for FUZZ_SECONDS (600) on a copy of its corpus
# Fails on any finding (crash, sanitizer report, leak, timeout, out of memory).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=tests/build/fuzz
replay=0
[ "${1:-}" = --replay ] && { replay=1; shift; }
secs=${FUZZ_SECONDS:-600}
mkdir -p "$B/artifacts"
# the largest input: images up to 64 kB; models are a header (or a small file)
max_len() { case $1 in image) echo 65536 ;; *) echo 262144 ;; esac; }
. tests/integration/checks.sh
for name in "$@"; do
	bin=$B/fuzz_$name
	opts=(-rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$name")" -artifact_prefix="$B/artifacts/$name-")
	[ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
	if [ $replay = 1 ]; then
		inputs=(tests/fuzz/corpus/"$name"/*)
		[ -d "tests/fuzz/regress/$name" ] && inputs+=(tests/fuzz/regress/"$name"/*)
		if "$bin" "${opts[@]}" "${inputs[@]}" >"$B/replay-$name.log" 2>&1; then
			echo "fuzz $name: ${#inputs[@]} seeds and regression inputs replayed clean"
		else
			bad "fuzz $name: a committed input fails (see $B/replay-$name.log)"
			tail -30 "$B/replay-$name.log" >&2
		fi
		continue
	fi
	work=$B/corpus-$name
	mkdir -p "$work"
	cp -n tests/fuzz/corpus/"$name"/* "$work"/
	log=$B/fuzz-$name.log
	if "$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 "$work" >"$log" 2>&1; then
		res=clean
	else
		res=FINDING
		bad "fuzz $name: a finding (see $log)"
	fi
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | grep -o 'cov: [0-9]*' || true)
	ft=$(echo "$last" | grep -o 'ft: [0-9]*' || true)
	echo "fuzz $name: $secs s, $execs executions, $cov $ft, corpus $(ls "$work" | wc -l) files: $res"
	[ $res = clean ] || { grep -A25 -m1 'ERROR\|SUMMARY\|==ERROR' "$log" >&2 || tail -30 "$log" >&2; }
done
[ "$fails" = 0 ]
