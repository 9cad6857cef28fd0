#!/usr/bin/env python3
"""tests/integration/synthetic_idx.py: a small synthetic idx data set for the shell tests.

Usage: synthetic_idx.py OUT_DIR [--classes N] [--train N] [--test N] [--seed S] [--gzip-train]

Writes an MNIST-style idx directory, OUT_DIR/train-images-idx3-ubyte,
train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte:
--train (--test) 28x28 images of each of the --classes classes 0..N-1 (at
most 10), in a shuffled order.  Each class is a filled bar whose orientation
(even classes horizontal, odd vertical) and position (3 + 5 * (class // 2))
depend on the class, with per-image jitter of a pixel in place, a brightness
of 180-255 and uniform noise of 0-40 around it.  --gzip-train writes the
training images gzipped (train-images-idx3-ubyte.gz), as the loaders accept.
Seeded (--seed): the same arguments give the same images.
"""
import argparse
import gzip
import os
import random
import struct


def main():
    ap = argparse.ArgumentParser(description="a small synthetic idx data set")
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--train", type=int, default=40, help="training images per class")
    ap.add_argument("--test", type=int, default=20, help="test images per class")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--gzip-train", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.classes <= 10:
        ap.error("--classes must be 1-10")
    os.makedirs(a.out)
    rng = random.Random(a.seed)

    def image(c):
        px = [rng.randint(0, 40) for _ in range(28 * 28)]
        horiz = c % 2 == 0
        pos = 3 + (c // 2) * 5 + rng.randint(-1, 1)
        level = rng.randint(180, 255)
        for i in range(4, 24):
            for j in range(pos, pos + 3):
                y, x = (j, i) if horiz else (i, j)
                px[y * 28 + x] = level
        return bytes(px)

    def write(prefix, per_class, gz):
        labels = [c for c in range(a.classes) for _ in range(per_class)]
        rng.shuffle(labels)
        imgs = b"".join(image(c) for c in labels)
        op = gzip.open if gz else open
        with op(os.path.join(a.out, prefix + "-images-idx3-ubyte" + (".gz" if gz else "")), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, len(labels), 28, 28) + imgs)
        with open(os.path.join(a.out, prefix + "-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, len(labels)) + bytes(labels))

    write("train", a.train, a.gzip_train)
    write("t10k", a.test, False)


if __name__ == "__main__":
    main()
