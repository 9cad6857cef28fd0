# tests/integration/checks.sh: the counters and helpers of the shell tests (sourced from the
# repository root).  ok counts a passed check; bad MESSAGE a failed one, said on
# stderr; check 'CONDITION' MESSAGE evaluates CONDITION and counts it either way;
# check_cmd MESSAGE COMMAND... runs COMMAND as it is (no eval), counts it, and
# says MESSAGE either way ("ok: MESSAGE" or "FAIL: MESSAGE").
# A script ends with a summary from $fails and $checks, and exits 1 on failures.
fails=0
checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
check_cmd() {
	local what=$1
	shift
	if "$@"; then ok; echo "ok: $what"; else bad "$what"; fi
}
