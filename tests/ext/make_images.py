"""tests/ext/make_images.py: image files for the extension's pg_regress suite.

Usage: make_images.py MNIST_DIR OUT_DIR

Writes, from real MNIST test digits (an idx directory, as `make data` makes):
  OUT_DIR/formats/NAME  one digit (the first 3 of the test split) in every
                        format the extension reads: PNG 8/16-bit gray,
                        gray+alpha, RGB, RGBA, palette; JPEG baseline and
                        progressive; PGM (binary and ASCII), PPM; a 56x56 PNG
                        (each pixel doubled: bilinear resizing gives the digit
                        back exactly); the raw 784 bytes;
  OUT_DIR/digits/IIII_L.png  the first 40 test digits as gray PNGs (L = label);
  OUT_DIR/bad/NAME      malformed inputs: a truncated PNG, a PNG with a bad
                        CRC, a PNG declaring 65535x65535 pixels, a truncated
                        JPEG, a PGM with too few pixels, random bytes, and a
                        progressive JPEG of 2080 valid scans (the fixture
                        jpeg_2080_scans.jpg beside this file, written by
                        tests/build/unit/test_image with CLAD_TEST_WRITE_MANY_SCANS=PATH).
Uses Pillow (Debian's python3-pil) for PNG palette/16-bit and JPEG encoding.
"""
import os
import shutil
import random
import struct
import sys
import zlib

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from mnist_idx import digits, rgb  # noqa: E402  (the idx digits, plain or gzipped)


def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


def main():
    src, out = sys.argv[1], sys.argv[2]
    for sub in ("formats", "digits", "bad"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    ds = digits(src, "t10k", 40)
    px = next(p for p, l in ds if l == 3)
    gray = Image.frombytes("L", (28, 28), px)
    f = lambda name: os.path.join(out, "formats", name)

    gray.save(f("png_gray8.png"))
    Image.frombytes("I;16", (28, 28), b"".join(struct.pack("<H", v * 257) for v in px)).save(f("png_gray16.png"))
    la = Image.merge("LA", (gray, Image.new("L", (28, 28), 200)))
    la.save(f("png_gray_alpha.png"))
    colour = Image.merge("RGB", (gray, gray, gray))
    colour.save(f("png_rgb.png"))
    Image.merge("RGBA", (gray, gray, gray, Image.new("L", (28, 28), 255))).save(f("png_rgba.png"))
    pal = gray.convert("P")          # a 256-entry gray palette: lossless
    assert pal.mode == "P"
    pal.save(f("png_palette.png"))
    gray.save(f("jpeg_baseline.jpg"), quality=95)
    colour.save(f("jpeg_progressive.jpg"), quality=95, progressive=True)
    open(f("pgm_binary.pgm"), "wb").write(b"P5\n28 28\n255\n" + px)
    open(f("pgm_ascii.pgm"), "wb").write(
        b"P2\n# an ASCII graymap\n28 28\n255\n" + b"\n".join(
            b" ".join(str(v).encode() for v in px[y * 28:(y + 1) * 28]) for y in range(28)) + b"\n")
    open(f("ppm_binary.ppm"), "wb").write(b"P6\n28 28\n255\n" + rgb(px))
    gray.resize((56, 56), Image.NEAREST).save(f("png_56x56.png"))
    open(f("raw.bin"), "wb").write(px)

    for i, (p, l) in enumerate(ds):
        Image.frombytes("L", (28, 28), p).save(os.path.join(out, "digits", "%04d_%d.png" % (i, l)))

    b = lambda name: os.path.join(out, "bad", name)
    good = open(f("png_gray8.png"), "rb").read()
    open(b("truncated.png"), "wb").write(good[:len(good) // 2])
    crc = bytearray(good)
    crc[29] ^= 0xff                 # inside IHDR's CRC
    open(b("bad_crc.png"), "wb").write(bytes(crc))
    ihdr = struct.pack(">IIBBBBB", 65535, 65535, 8, 0, 0, 0, 0)
    open(b("huge.png"), "wb").write(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + png_chunk(b"IEND", b""))
    jpg = open(f("jpeg_baseline.jpg"), "rb").read()
    open(b("truncated.jpg"), "wb").write(jpg[:len(jpg) // 2])
    open(b("short.pgm"), "wb").write(b"P5\n28 28\n255\n" + px[:500])
    shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), "jpeg_2080_scans.jpg"),
                    b("jpeg_2080_scans.jpg"))
    open(b("random.bin"), "wb").write(bytes(random.Random(7).randrange(256) for _ in range(1000)))


if __name__ == "__main__":
    main()
