"""scripts/mnist_idx.py: the idx digits of `make data` read, and PNG files written, for
the scripts and tests that put digits where clad reads them: scripts/digits_copy.py,
tests/integration/test_pg.sh and test_train_db.sh, tests/ext/make_images.py and
make_fixtures.py.  Standard library only (gzip, zlib): runs wherever python3 does.

  read(src, name)           the bytes of the idx file src/name, or of src/name.gz
  split(src, prefix, n)     the first n (all when None) digits of an idx pair
                            (prefix "train" or "t10k") as (pixels, label) pairs,
                            with the images' width and height; ValueError unless
                            the files are an idx image/label pair
  digits(src, prefix, n)    exactly the first n of a split's (pixels, label), 28 x 28
                            (AssertionError otherwise): the tests' digits
  png(w, h, px, ctype, level)
                            an 8-bit PNG file of px: gray (ctype 0) or interleaved
                            RGB (ctype 2), compressed at zlib level (-1: zlib's
                            default)
  rgb(px)                   gray pixels as interleaved RGB (each value three times)
  framed(px, w, h, by)      a w x h gray image in a black frame by pixels wide
"""
import gzip
import os
import struct
import zlib


def read(src, name):
    p = os.path.join(src, name)
    if os.path.exists(p):
        with open(p, "rb") as f:
            return f.read()
    with gzip.open(p + ".gz", "rb") as f:
        return f.read()


def split(src, prefix, n=None):
    im, lb = read(src, prefix + "-images-idx3-ubyte"), read(src, prefix + "-labels-idx1-ubyte")
    magic, cnt, h, w = struct.unpack(">IIII", im[:16])
    if magic != 0x803 or struct.unpack(">I", lb[:4])[0] != 0x801:
        raise ValueError("%s in %s is not an idx image/label pair" % (prefix, src))
    n = cnt if n is None else min(n, cnt)
    size = h * w
    return [(im[16 + i * size:16 + (i + 1) * size], lb[8 + i]) for i in range(n)], w, h


def digits(src, prefix, n):
    rows, w, h = split(src, prefix, n)
    assert (w, h) == (28, 28) and len(rows) == n, (prefix, src, w, h, len(rows))
    return rows


def png(w, h, px, ctype=0, level=-1):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    bpp = 3 if ctype == 2 else 1
    raw = b"".join(b"\0" + px[y * w * bpp:(y + 1) * w * bpp] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


def rgb(px):
    return bytes(v for v in px for _ in range(3))


def framed(px, w, h, by):
    out = bytearray((w + 2 * by) * (h + 2 * by))
    for y in range(h):
        out[(y + by) * (w + 2 * by) + by:(y + by) * (w + 2 * by) + by + w] = px[y * w:(y + 1) * w]
    return bytes(out)
