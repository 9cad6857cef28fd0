"""tests/fuzz/make_seeds.py: the committed seed corpora of tests/fuzz/.

Usage: make_seeds.py IMAGES_DIR OUT_DIR MODEL.safetensors...

IMAGES_DIR is the formats/ folder that tests/ext/make_images.py writes (one
real digit in every format the decoders read).  Writes OUT_DIR/image/ (each
file twice, behind a first byte 0 and 1: the gray 28x28 and colour 32x32
targets), OUT_DIR/safetensors/ and OUT_DIR/model/ (each model's header alone
behind a first byte 1, which the harnesses complete with zero weights, see
complete.h; two small plain safetensors files and a whole tiny one-class SVM
model behind a 0).
"""
import json
import os
import struct
import sys
import zlib


def png_interlaced(px, w, h):
    """A gray 8-bit Adam7-interlaced PNG (Pillow writes none)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs = range(x0, w, dx)
        for y in range(y0, h, dy):
            if len(xs):
                raw += b"\0" + bytes(px[y * w + x] for x in xs)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def plain_st(tensors, meta):
    h, data = {"__metadata__": meta}, b""
    for name, shape, values in tensors:
        b = struct.pack("<%df" % len(values), *values)
        h[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    t = json.dumps(h).encode()
    t += b" " * (-len(t) % 8)
    return struct.pack("<Q", len(t)) + t + data


def main():
    src, out, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    for d in ("image", "safetensors", "model"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for name in sorted(os.listdir(src)):
        if name == "raw.bin":
            continue
        b = open(os.path.join(src, name), "rb").read()
        for mode in (0, 1):
            open(os.path.join(out, "image", "%s.%d" % (name, mode)), "wb").write(bytes([mode]) + b)
    pgm = open(os.path.join(src, "pgm_binary.pgm"), "rb").read()
    px = pgm[-784:]
    open(os.path.join(out, "image", "png_interlaced.png.0"), "wb").write(b"\0" + png_interlaced(px, 28, 28))
    for path in models:
        b = open(path, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        name = os.path.basename(path).replace(".safetensors", "") + ".header"
        for d in ("safetensors", "model"):
            open(os.path.join(out, d, name), "wb").write(b"\1" + b[:8 + n])
    small = [plain_st([("a", [2, 3], [0.5] * 6), ("b", [], [1.0])], {"format": "pt"}),
             plain_st([("x", [4], [1, 2, 3, 4])], {})]
    for i, b in enumerate(small):
        for d in ("safetensors", "model"):
            open(os.path.join(out, d, "plain%d.st" % i), "wb").write(b"\0" + b)
    # a whole one-class SVM model of 1x2x2 images and two support vectors (it has no nets,
    # so a tiny one is valid as it is): behind a 0, every check of its values runs
    meta = {"format": "clad", "format_version": "4", "method": "ocsvm", "input_shape": "1,2,2",
            "normalize_mean": "0.5", "normalize_std": "0.25", "kernel": "rbf", "gamma": "0.5", "rho": "0.25",
            "threshold": "-0.1", "summary": "{}"}
    svm = plain_st([("ocsvm.support_vectors", [2, 4], [0.5, -1.0, 1.5, 0.0, -0.5, 2.0, 0.25, 1.0]),
                    ("ocsvm.coefficients", [2], [0.5, 0.75]),
                    ("calibration.confidences", [3], [-0.2, 0.0, 0.3])], meta)
    open(os.path.join(out, "model", "ocsvm_tiny.st"), "wb").write(b"\0" + svm)


main()
