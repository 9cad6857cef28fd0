"""scripts/digits_copy.py: real MNIST digits as COPY rows of PNG bytes.

Usage: digits_copy.py MNIST_DIR OUT_FILE [N_TRAIN N_TEST]

Reads the idx directory `make data` writes (data/mnist: 8000 train / 2000
test real digits) and writes OUT_FILE in COPY's text format, one row per
digit: id, label, split ('train' or 'test'), and the digit as an 8-bit gray
PNG file's bytes (bytea, hex).  Load it with
    \\copy images (id, label, split, img) FROM 'OUT_FILE'
Standard library only (zlib): runs wherever python3 does.
"""
import gzip
import os
import struct
import sys
import zlib


def read(src, name):
    p = os.path.join(src, name)
    if os.path.exists(p):
        return open(p, "rb").read()
    return gzip.open(p + ".gz", "rb").read()


def split(src, prefix, n):
    im, lb = read(src, prefix + "-images-idx3-ubyte"), read(src, prefix + "-labels-idx1-ubyte")
    magic, cnt, h, w = struct.unpack(">IIII", im[:16])
    if magic != 0x803 or struct.unpack(">I", lb[:4])[0] != 0x801:
        sys.exit("digits_copy.py: %s is not an idx image/label pair" % prefix)
    n = min(n, cnt)
    size = h * w
    return [(im[16 + i * size:16 + (i + 1) * size], lb[8 + i]) for i in range(n)], w, h


def png_gray(w, h, px):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + px[y * w:(y + 1) * w] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    src, out = sys.argv[1], sys.argv[2]
    n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 30
    n_test = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 30
    ident = 0
    with open(out, "w") as f:
        for prefix, name, n in (("train", "train", n_train), ("t10k", "test", n_test)):
            rows, w, h = split(src, prefix, n)
            for px, label in rows:
                ident += 1
                f.write("%d\t%d\t%s\t\\\\x%s\n" % (ident, label, name, png_gray(w, h, px).hex()))


main()
