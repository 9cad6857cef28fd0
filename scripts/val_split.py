"""scripts/val_split.py: the validation split, carved from the training digits alone.

usage: val_split.py [SRC_DIR] [DST_DIR] [--seed S] [--train-fraction F]

Reads the 8,000 training digits of `make data` (SRC_DIR, default data/mnist) and writes
DST_DIR (default data/mnist-val) in the same idx format: its train files hold a seeded
80% of every class, its t10k files the other 20%.  Settings are chosen on this split
(train on its train files, evaluate on its t10k files); the 2,000 test digits are not
read.  --train-fraction F (0 < F <= 1) keeps a seeded fraction F of every class's
training part (the validation part stays whole): how AUROC moves with the amount of
normal data.  Run with /usr/bin/python3 (numpy not needed).
"""
import os
import random
import struct
import sys


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return magic, dims, data[4 + 4 * ndim:]


def write_idx(path, magic, dims, body):
    with open(path + ".part", "wb") as f:
        f.write(struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims) + body)
    os.replace(path + ".part", path)


def main():
    argv = sys.argv[1:]
    opts = {"--seed": "1", "--train-fraction": "1"}
    args = []
    while argv:
        a = argv.pop(0)
        if a in opts and argv:
            opts[a] = argv.pop(0)
        elif a.startswith("--"):
            sys.exit("val_split.py: unknown option %s" % a)
        else:
            args.append(a)
    seed = int(opts["--seed"])
    fraction = float(opts["--train-fraction"])
    if not 0 < fraction <= 1:
        sys.exit("val_split.py: --train-fraction must be in (0, 1], not %s" % fraction)
    src = args[0] if args else "data/mnist"
    dst = args[1] if len(args) > 1 else "data/mnist-val"
    im_magic, im_dims, im = read_idx(os.path.join(src, "train-images-idx3-ubyte"))
    lb_magic, lb_dims, lb = read_idx(os.path.join(src, "train-labels-idx1-ubyte"))
    n, size = im_dims[0], im_dims[1] * im_dims[2]
    rng = random.Random(seed)
    by_class = {}
    for i in range(n):
        by_class.setdefault(lb[i], []).append(i)
    fit, val = [], []
    for c in sorted(by_class):
        idx = by_class[c][:]
        rng.shuffle(idx)
        cut = int(0.8 * len(idx))
        # the fraction is cut from the already shuffled training part, so the validation
        # digits are the same whatever the fraction
        fit += idx[:max(1, int(round(fraction * cut)))]
        val += idx[cut:]
    fit.sort()
    val.sort()
    os.makedirs(dst, exist_ok=True)
    for name, part in (("train", fit), ("t10k", val)):
        write_idx(os.path.join(dst, name + "-images-idx3-ubyte"), im_magic, (len(part),) + tuple(im_dims[1:]),
                  b"".join(im[i * size:(i + 1) * size] for i in part))
        write_idx(os.path.join(dst, name + "-labels-idx1-ubyte"), lb_magic, (len(part),),
                  bytes(lb[i] for i in part))
    print("wrote %s: %d training digits, %d validation digits (from %s's training split)"
          % (dst, len(fit), len(val), src))


if __name__ == "__main__":
    main()
