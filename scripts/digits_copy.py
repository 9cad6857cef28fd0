"""scripts/digits_copy.py: real MNIST digits as COPY rows of PNG bytes.

Usage: digits_copy.py MNIST_DIR OUT_FILE [N_TRAIN N_TEST]

Reads the idx directory `make data` writes (data/mnist: 8000 train / 2000
test real digits) and writes OUT_FILE in COPY's text format, one row per
digit: id, label, split ('train' or 'test'), and the digit as an 8-bit gray
PNG file's bytes (bytea, hex).  Load it with
    \\copy images (id, label, split, img) FROM 'OUT_FILE'
Standard library only (scripts/mnist_idx.py): runs wherever python3 does.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_idx import png, split  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 30
    n_test = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 30
    ident = 0
    with open(out, "w") as f:
        for prefix, name, n in (("train", "train", n_train), ("t10k", "test", n_test)):
            try:
                rows, w, h = split(src, prefix, n)
            except ValueError as e:
                sys.exit("digits_copy.py: %s" % e)
            for px, label in rows:
                ident += 1
                f.write("%d\t%d\t%s\t\\\\x%s\n" % (ident, label, name, png(w, h, px, level=9).hex()))


main()
