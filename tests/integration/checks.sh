# tests/integration/checks.sh: the counters and helpers of the shell tests (sourced from the
# repository root).  ok counts a passed check; bad MESSAGE a failed one, said on
# stderr; check 'CONDITION' MESSAGE evaluates CONDITION and counts it either way;
# check_cmd MESSAGE COMMAND... runs COMMAND as it is (no eval), counts it, and
# says MESSAGE either way ("ok: MESSAGE" or "FAIL: MESSAGE").
# expect STATUS NEEDLE -- ARGS... runs $BIN (clad-train) ARGS and counts a pass when it
# exits with STATUS, with a "clad-train: " message containing NEEDLE on stderr, and
# writes no $T/x.safetensors (the --out its callers give the runs that must fail);
# VERBOSE=1 prints each exit status and message.
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
expect() {
	local want=$1 needle=$2 got=0
	shift 3
	rm -f "$T/x.safetensors"
	$BIN "$@" >"$T/e_out" 2>"$T/e_err" || got=$?
	[ -z "${VERBOSE:-}" ] || echo "[exit $got] $(cat "$T/e_err")"
	if [ "$got" -eq "$want" ] && grep -q "^clad-train: " "$T/e_err" && grep -qF -- "$needle" "$T/e_err" &&
		[ ! -e "$T/x.safetensors" ]; then
		ok
	else
		bad "clad-train $* -> exit $got, stderr: $(cat "$T/e_err") (want $want, \"$needle\")"
	fi
}
