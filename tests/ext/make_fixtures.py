"""tests/ext/make_fixtures.py: (re)writes the committed files of tests/fixtures/.

Usage: make_fixtures.py MNIST_DIR OUT_DIR     (MNIST_DIR: data/mnist of `make data`;
                                               OUT_DIR: tests/fixtures)

Not run by the build or the tests: `make installcheck` uses the files it wrote,
as committed.  It writes
  OUT_DIR/mnist/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz
      the first PER_CLASS (300) digits of each class in CLASSES (3 and 7) of the
      training split, in split order (gzip level 9, no name, mtime 0: the same
      input gives the same bytes); make installcheck trains the suite's two
      models on them;
  OUT_DIR/formats/, digits/, bad/
      tests/ext/make_images.py's images (one test digit in every format, the
      first 40 test digits, malformed images).
"""
import gzip
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from mnist_idx import read  # noqa: E402  (an idx file, plain or gzipped)

CLASSES = (3, 7)
PER_CLASS = 300


def write_gz(path, blob):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
            f.write(blob)


def main():
    src, out = sys.argv[1], sys.argv[2]
    im, lb = read(src, "train-images-idx3-ubyte"), read(src, "train-labels-idx1-ubyte")
    magic, cnt, h, w = struct.unpack(">IIII", im[:16])
    assert magic == 0x803 and (h, w) == (28, 28)
    taken = {c: 0 for c in CLASSES}
    picked = []
    for i in range(cnt):
        label = lb[8 + i]
        if label in taken and taken[label] < PER_CLASS:
            taken[label] += 1
            picked.append(i)
    assert all(n == PER_CLASS for n in taken.values()), taken
    os.makedirs(os.path.join(out, "mnist"), exist_ok=True)
    write_gz(os.path.join(out, "mnist", "train-images-idx3-ubyte.gz"),
             struct.pack(">IIII", 0x803, len(picked), 28, 28)
             + b"".join(im[16 + i * 784:16 + (i + 1) * 784] for i in picked))
    write_gz(os.path.join(out, "mnist", "train-labels-idx1-ubyte.gz"),
             struct.pack(">II", 0x801, len(picked)) + bytes(lb[8 + i] for i in picked))
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "make_images.py"), src, out], check=True)
    print("%d training digits (%s) and the images in %s" % (len(picked), taken, out))


main()
