#!/usr/bin/env bash
# tests/integration/test_pg.sh: clad-train --db/--query on a throwaway PostgreSQL cluster.
#
# Starts a private cluster (initdb + pg_ctl of PostgreSQL 15, as the postgres
# user when run as root: initdb refuses root) in a mktemp directory, on a
# free port, with its Unix socket in a directory of its own and no TCP
# (listen_addresses = ''); a trap stops it and removes the directory on exit.
# Loads real MNIST digits (data/mnist of `make data`) into a table as image
# bytea (PNG, PGM, RGB PNG, 32x32 PNG to be resized) + smallint label, then
# checks: training from a query with a labelled test query (model written,
# metrics reported, queries but no connection string in the summary), a
# label-less query (every row normal, no evaluation), and the errors: first
# column not bytea, NULL image, corrupt image, bad label, no rows, SQL errors,
# a query that writes (read-only transaction), bad conninfo, usage errors.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${CLAD_TRAIN:-./trainer/clad-train}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
MNIST=${MNIST:-data/mnist}
. tests/integration/pgcluster.sh
pgc_need_mnist test_pg.sh "$MNIST"
pgc_start clad_test_pg

. tests/integration/checks.sh

# ---------------------------------------------------------------- the table
# 300 training and 200 test digits, the first of each split of data/mnist.
# Every image is stored as a file's bytes: mostly 8-bit gray PNG, every 10th
# a binary PGM (P5), every 10th an RGB PNG (gray replicated), every 10th a
# 32x32 gray PNG (the digit padded by 2): the loader resizes it to 28x28.
# The gray PNG and PGM rows (fmt 'png', 'pgm') are also written as an idx
# directory $T/idx, to check that the same digits from SQL and from files
# train the same model.
"$PY" - "$MNIST" "$T/digits.sql" "$T/idx" <<'EOF'
import os, struct, sys
sys.path.insert(0, "scripts")
from mnist_idx import digits, framed, png, rgb
src, out, idxdir = sys.argv[1], sys.argv[2], sys.argv[3]

def encode(i, px):
    k = i % 10
    if k == 3:
        return "pgm", b"P5\n28 28\n255\n" + px
    if k == 5:
        return "rgb", png(28, 28, rgb(px), 2)
    if k == 7:
        return "png32", png(32, 32, framed(px, 28, 28, 2))
    return "png", png(28, 28, px)

os.makedirs(idxdir)
with open(out, "w") as f:
    f.write("create table digits (id serial primary key, split text not null, fmt text not null,\n"
            "                     img bytea, label smallint);\n")
    f.write("copy digits (split, fmt, img, label) from stdin;\n")
    for split, prefix, n in (("train", "train", 300), ("test", "t10k", 200)):
        same = []
        for i, (px, y) in enumerate(digits(src, prefix, n)):
            fmt, data = encode(i, px)
            f.write("%s\t%s\t\\\\x%s\t%d\n" % (split, fmt, data.hex(), y))
            if fmt in ("png", "pgm"):
                same.append((px, y))
        with open(os.path.join(idxdir, prefix + "-images-idx3-ubyte"), "wb") as g:
            g.write(struct.pack(">IIII", 0x803, len(same), 28, 28) + b"".join(p for p, _ in same))
        with open(os.path.join(idxdir, prefix + "-labels-idx1-ubyte"), "wb") as g:
            g.write(struct.pack(">II", 0x801, len(same)) + bytes(y for _, y in same))
    f.write("\\.\n")
EOF
psql_q -f "$T/digits.sql"
formats=$(psql_q -c "select string_agg(fmt || '=' || n, ' ' order by fmt)
                     from (select fmt, count(*) as n from digits group by fmt) f")
check '[ "$formats" = "pgm=50 png=350 png32=50 rgb=50" ]' "the digits table holds $formats"

TRAIN_Q="select img, label from digits where split = 'train' order by id"
TEST_Q="select img, label from digits where split = 'test' order by id"
FAST=(--classifier cnn --ae-epochs 2 --dec-epochs 2 --clf-epochs 1 --ae-batch 32 --dec-batch 32
      --clf-batch 32 --kmeans-restarts 2 --seed 5)

# ---------------------------------------------------------------- train from SQL
rc=0
$BIN --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" --normal 1,4,7 \
	--out "$T/m.safetensors" "${FAST[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ -z "${VERBOSE:-}" ] || cat "$T/err" "$T/out"
check '[ $rc -eq 0 ]' "training from SQL exited with $rc: $(cat "$T/err")"
check '[ -s "$T/m.safetensors" ]' "no model file written"
check 'grep -q "loading the training split from PostgreSQL" "$T/err" &&
	grep -q "300 training images of 1x28x28, labels 0-9" "$T/err" &&
	grep -q "200 test images of 1x28x28" "$T/err"' "no loading notes: $(cat "$T/err")"
check 'grep -q "^test split: 200 images, [0-9]* normal (1,4,7), [0-9]* anomalous" "$T/out" &&
	grep -Eq "^  neighbours \([0-9]+ images\) +[01]\.[0-9]{4}" "$T/out" && grep -q "^  baseline" "$T/out"' \
	"no metrics: $(cat "$T/out")"
rc=0
$BIN info "$T/m.safetensors" --json >"$T/info.json" 2>"$T/info.err" || rc=$?
[ $rc -eq 0 ] && "$PY" - "$T/info.json" "$TRAIN_Q" "$TEST_Q" >"$T/info.chk" 2>&1 <<'EOF' || rc=1
import json, sys
j = json.load(open(sys.argv[1]))
s = j["summary"]
assert j["input_shape"] == [1, 28, 28], j["input_shape"]
assert s["data"]["format"] == "postgresql" and s["data"]["query"] == sys.argv[2], s["data"]
assert s["data"]["test_query"] == sys.argv[3] and "path" not in s["data"], s["data"]
assert s["normal_classes"] == [1, 4, 7] and s["data"]["train_images"] == 300, s
assert 0 <= s["test"]["score"]["auroc"] <= 1 and s["test"]["n_test"] == 200, s["test"]
EOF
check '[ $rc -eq 0 ]' "model summary: $(cat "$T/info.err" "$T/info.chk" 2>/dev/null)"
check '! grep -qF "$SOCK" "$T/m.safetensors"' "the connection string is stored in the model"

# the same rows give the same model bytes
rc=0
$BIN --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" --normal 1,4,7 \
	--out "$T/m2.safetensors" "${FAST[@]}" --quiet >/dev/null 2>"$T/err2" || rc=$?
check '[ $rc -eq 0 ] && cmp -s "$T/m.safetensors" "$T/m2.safetensors"' \
	"a second run differs (rc $rc): $(cat "$T/err2")"

# a query without a label column: every row is normal, no evaluation; the model scores --data
rc=0
$BIN --db "$CONN" --query "select img from digits where split = 'train' and label in (1, 4, 7)" \
	--image-size 28 --channels 1 --out "$T/u.safetensors" "${FAST[@]}" >"$T/uout" 2>"$T/uerr" || rc=$?
check '[ $rc -eq 0 ] && [ -s "$T/u.safetensors" ]' "label-less training exited with $rc: $(cat "$T/uerr")"
check 'grep -q "no label column: all [0-9]* rows are normal" "$T/uerr" && grep -q "no --test-query" "$T/uerr" &&
	! grep -q "^test split" "$T/uout"' "label-less notes: $(cat "$T/uerr" "$T/uout")"
rc=0
$BIN eval --model "$T/u.safetensors" --data "$MNIST" --normal 1,4,7 --json >"$T/ueval" 2>"$T/ueval.err" || rc=$?
check '[ $rc -eq 0 ] && grep -q "\"auroc\"" "$T/ueval"' "eval of the SQL-trained model on --data: $(cat "$T/ueval.err")"

# a label-less training query with a labelled test query: --normal names the test's normal labels
rc=0
$BIN --db "$CONN" --query "select img from digits where split = 'train' and label in (1, 4, 7)" \
	--test-query "$TEST_Q" --normal 1,4,7 --out "$T/v.safetensors" "${FAST[@]}" --json \
	>"$T/vout" 2>"$T/verr" || rc=$?
check '[ $rc -eq 0 ] && grep -q "\"normal_classes\":\[1,4,7\],\"n_test\":200" "$T/vout"' \
	"label-less training with --test-query (rc $rc): $(cat "$T/verr" "$T/vout")"

# the same digits from SQL (PNG and PGM bytes) and from idx files: the same tensors
rc=0
$BIN --db "$CONN" --query "select img, label from digits where split = 'train' and fmt in ('png', 'pgm') order by id" \
	--normal 1,4,7 --out "$T/s.safetensors" "${FAST[@]}" --quiet >/dev/null 2>"$T/serr" || rc=$?
$BIN --data "idx:$T/idx" --normal 1,4,7 --no-eval --out "$T/f.safetensors" "${FAST[@]}" --quiet \
	>/dev/null 2>>"$T/serr" || rc=$?
[ $rc -eq 0 ] && "$PY" - "$T/s.safetensors" "$T/f.safetensors" >"$T/s.chk" 2>&1 <<'EOF' || rc=1
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return h, b[8 + n:]
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a[0] == b[0], "tensor headers differ"
assert a[1] == b[1], "tensor bytes differ"
EOF
check '[ $rc -eq 0 ]' "SQL and idx training differ: $(cat "$T/serr" "$T/s.chk")"

# ---------------------------------------------------------------- errors
# expect STATUS NEEDLE -- ARGS... (checks.sh): exit status, a "clad-train: " message containing NEEDLE, no model
O=(--out "$T/x.safetensors" "${FAST[@]}" --quiet)
N=(--normal 1,4,7)
expect 1 'first column "label" is smallint, not bytea' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select label, img from digits"
expect 1 'first column "img" is text, not bytea' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select encode(img, 'base64') as img, label from digits"
expect 1 'row 6: the image (column "img") is NULL' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "(select img, label from digits order by id limit 5) union all select null::bytea, 1::smallint"
expect 1 'row 1: the label (column "label") is NULL' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select img, null::int as label from digits"
expect 1 'row 3: cannot decode the image (60 bytes)' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select case when id = 3 then substring(img from 1 for 60) else img end, label from digits order by id"
expect 1 'row 1: cannot decode the image (4 bytes)' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select '\\x00010203'::bytea, 1"
expect 1 'row 1: the image is empty' -- --db "$CONN" "${N[@]}" "${O[@]}" --query "select ''::bytea, 1"
expect 1 'row 2: label -1 is out of range' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select img, case when id = 2 then -1 else label end from digits order by id"
expect 1 'label 70000 is out of range' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select img, 70000::bigint from digits"
expect 1 'the class label must be smallint, integer, bigint or boolean' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select img, label::text from digits"
expect 1 'returns 3 columns' -- --db "$CONN" "${N[@]}" "${O[@]}" --query "select img, label, id from digits"
expect 1 'the query returned no rows' -- --db "$CONN" "${N[@]}" "${O[@]}" --query "select img, label from digits where false"
expect 1 'relation "nosuch" does not exist (SQLSTATE 42P01)' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select img, label from nosuch"
expect 1 'cannot insert multiple commands' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "select img, label from digits; select img, label from digits"
expect 1 'read-only transaction' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "insert into digits (split, img, label) select 'x', img, label from digits returning img, label"
check '[ "$(psql_q -c "select count(*) from digits")" = 500 ]' "a query wrote to the table"
expect 1 'the query is empty' -- --db "$CONN" "${N[@]}" "${O[@]}" --query " "
expect 1 'cannot connect' -- --db "host=$SOCK port=1 user=postgres dbname=postgres" "${N[@]}" "${O[@]}" \
	--query "$TRAIN_Q"
expect 1 'cannot connect' -- --db "not a connection string" "${N[@]}" "${O[@]}" --query "$TRAIN_Q"
expect 1 'cannot connect' -- --db "host=$SOCK port=$PORT user=postgres dbname=nosuchdb password=s3cret-pw" \
	"${N[@]}" "${O[@]}" --query "$TRAIN_Q"
check '! grep -q "s3cret-pw" "$T/e_err"' "the password is printed: $(cat "$T/e_err")"
expect 1 'returns a label column: give --normal' -- --db "$CONN" "${O[@]}" --query "$TRAIN_Q"
expect 1 'is not in the set' -- --db "$CONN" --normal 1,4,12 "${O[@]}" --query "$TRAIN_Q"
expect 1 'test-query returns no label column' -- --db "$CONN" "${N[@]}" "${O[@]}" --query "$TRAIN_Q" \
	--test-query "select img from digits where split = 'test'"
expect 1 'cannot load the test split: PostgreSQL: row 1: the image' -- --db "$CONN" "${N[@]}" "${O[@]}" \
	--query "$TRAIN_Q" --test-query "select null::bytea, 1"
expect 2 '--db needs --query' -- --db "$CONN" "${N[@]}" "${O[@]}"
expect 2 '--query needs --db' -- --query "$TRAIN_Q" "${N[@]}" "${O[@]}"
expect 2 '--test-query needs --db' -- --data "$MNIST" --test-query "$TEST_Q" "${N[@]}" "${O[@]}"
expect 2 'cannot be used together' -- --data "$MNIST" --db "$CONN" --query "$TRAIN_Q" "${N[@]}" "${O[@]}"
expect 2 '--test-query needs --normal' -- --db "$CONN" --query "$TRAIN_Q" --test-query "$TEST_Q" "${O[@]}"
expect 2 '--out is required' -- --db "$CONN" --query "$TRAIN_Q" "${N[@]}"
expect 2 'eval reads its test split with --data' -- eval --model "$T/m.safetensors" --db "$CONN" \
	--query "$TEST_Q" "${N[@]}"

if [ "$fails" -ne 0 ]; then
	echo "test_pg.sh: $fails of $checks checks failed" >&2
	echo "--- server log" >&2
	tail -n 20 "$T/server.log" >&2 || true
	exit 1
fi
echo "test_pg.sh: all $checks checks passed (PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), port $PORT)"
