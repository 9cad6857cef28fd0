"""bench/db/torch_scorer.py: the scorer a user would assemble today, for `make bench`.

A clad model file (safetensors) loaded into PyTorch: torchvision's resnet18 with
conv1 replaced for C input channels (7x7, stride 2, padding 3, no bias; the 3x3
stride-2 max pool kept), which is exactly how core/architectures.c builds "resnet18"
(tests/parity checks the same equivalence), in eval mode, and clad's score:

  x  = (pixels / 255 - mean) / std                 (the model's normalize_mean/std)
  y^ = argmax f(x)
  x' = x - eps * sign(d CE(f(x) / T, y^) / dx)      (odin_temperature T, odin_epsilon eps)
  confidence = max softmax(f(x') / T)
  score = calibrated(confidence)                    (clad_model_calibrated_score, ported)

PL/Python functions (bench/db/plpython_scorer.sql) keep one Scorer per session in
GD.  Only the input gradient is computed (the weights do not require grad), the
second pass runs under no_grad: PyTorch at its best for this work.  set_threads(n)
sets torch's intra-op threads and OpenBLAS's (torch.set_num_threads does not
reach Debian's OpenBLAS, which would otherwise start one thread per core).

Standalone: /usr/bin/python3 bench/db/torch_scorer.py MODEL IMAGE.png... prints
"FILE<TAB>confidence<TAB>score" like `clad-train score`.
"""
import bisect
import ctypes
import io
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file (clad writes F32 and I64 only)."""
    dtypes = {"F32": (np.float32, torch.float32), "I64": (np.int64, torch.int64),
              "F64": (np.float64, torch.float64), "I32": (np.int32, torch.int32)}
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = memoryview(buf)[8 + n:]
    out = {}
    for name, spec in header.items():
        np_dt, _ = dtypes[spec["dtype"]]
        b, e = spec["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=np.dtype(np_dt).newbyteorder("<")).astype(np_dt)
        out[name] = torch.from_numpy(arr.reshape(spec["shape"]).copy())
    return out, meta


def weight_bytes(path):
    """Bytes of the tensors of a safetensors file (what the model's weights take)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    header.pop("__metadata__", None)
    return sum(s["data_offsets"][1] - s["data_offsets"][0] for s in header.values())


def calibrated_score(calib, threshold, conf):
    """core/model.c clad_model_calibrated_score, line for line (doubles, float32 result)."""
    c, n = calib, len(calib)
    if n == 0:
        return 1.0 if conf < threshold else 0.0
    lo = bisect.bisect_right(c, conf)          # how many calibration confidences are <= conf
    w = c[n - 1] - c[0] if c[n - 1] > c[0] else (c[0] if c[0] > 0.0 else 1.0)
    if lo == 0:
        s = 1.0 - math.exp(-(c[0] - conf) / w) / (n + 1)
    elif lo == n:
        s = math.exp(-(conf - c[n - 1]) / w) / (n + 1)
    else:
        s = (n - lo + 1 - (conf - c[lo - 1]) / (c[lo] - c[lo - 1])) / (n + 1)
    s = 0.0 if s < 0.0 else 1.0 if s > 1.0 else s
    return float(np.float32(s))


def _f32(text):
    return [float(np.float32(float(v))) for v in text.split(",")]


class Scorer:
    def __init__(self, path, threads=1):
        tensors, meta = read_safetensors(path)
        if meta.get("classifier") != "resnet18":
            raise ValueError("%s: classifier %r, this scorer builds resnet18" % (path, meta.get("classifier")))
        self.C, self.H, self.W = (int(v) for v in meta["input_shape"].split(","))
        self.K = int(meta["clusters"])
        m = torchvision.models.resnet18(num_classes=self.K)
        m.conv1 = torch.nn.Conv2d(self.C, 64, 7, 2, 3, bias=False)
        m.load_state_dict({k[len("classifier."):]: v for k, v in tensors.items()
                           if k.startswith("classifier.")}, strict=True)
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
        self.model = m
        self.mean = torch.tensor(_f32(meta["normalize_mean"]), dtype=torch.float32).view(1, self.C, 1, 1)
        self.std = torch.tensor(_f32(meta["normalize_std"]), dtype=torch.float32).view(1, self.C, 1, 1)
        self.T = float(np.float32(float(meta["odin_temperature"])))
        self.eps = float(np.float32(float(meta["odin_epsilon"])))
        self.threshold = float(np.float32(float(meta["threshold"])))
        self.calib = [float(v) for v in tensors["calibration.confidences"].tolist()]
        try:
            self._openblas = ctypes.CDLL("libopenblas.so.0")
        except OSError:
            self._openblas = None
        self.threads = None
        self.set_threads(threads)

    def set_threads(self, n):
        if n != self.threads:
            torch.set_num_threads(n)
            if self._openblas is not None:
                self._openblas.openblas_set_num_threads(n)
            self.threads = n

    def describe(self):
        core = "-"
        if self._openblas is not None:
            self._openblas.openblas_get_corename.restype = ctypes.c_char_p
            core = self._openblas.openblas_get_corename().decode()
        return ("torch %s, %d thread(s), OpenBLAS core %s, OMP_WAIT_POLICY=%s, OPENBLAS_CORETYPE=%s"
                % (torch.__version__, torch.get_num_threads(), core,
                   os.environ.get("OMP_WAIT_POLICY", "-"), os.environ.get("OPENBLAS_CORETYPE", "-")))

    def pixels(self, img):
        """PNG (or any PIL image) bytes to (C,H,W) float32 in [0,1]."""
        im = Image.open(io.BytesIO(img))
        im = im.convert("L" if self.C == 1 else "RGB")
        if im.size != (self.W, self.H):
            raise ValueError("image is %dx%d, the model takes %dx%d" % (im.size + (self.W, self.H)))
        a = np.asarray(im, dtype=np.float32) / np.float32(255.0)
        return a.reshape(self.H, self.W, self.C).transpose(2, 0, 1) if self.C > 1 else a.reshape(1, self.H, self.W)

    def confidence(self, px):
        """ODIN confidences of a (B,C,H,W) float32 batch of pixels in [0,1]."""
        x = ((torch.from_numpy(px) - self.mean) / self.std).requires_grad_(True)
        logits = self.model(x)
        loss = F.cross_entropy(logits / self.T, logits.argmax(1), reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            xp = x.detach() - self.eps * torch.sign(g)
            return torch.softmax(self.model(xp) / self.T, 1).max(1).values.tolist()

    def score_one(self, img):
        conf = self.confidence(self.pixels(img)[None])[0]
        return conf, calibrated_score(self.calib, self.threshold, conf)

    def score_batch(self, imgs, batch=64):
        out = [None] * len(imgs)
        idx = [i for i, v in enumerate(imgs) if v is not None]
        for s in range(0, len(idx), batch):
            part = idx[s:s + batch]
            px = np.stack([self.pixels(imgs[i]) for i in part])
            for i, conf in zip(part, self.confidence(px)):
                out[i] = calibrated_score(self.calib, self.threshold, conf)
        return out


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: torch_scorer.py MODEL.safetensors IMAGE...")
    sc = Scorer(sys.argv[1])
    print("#", sc.describe(), file=sys.stderr)
    for p in sys.argv[2:]:
        conf, score = sc.score_one(open(p, "rb").read())
        print("%s\t%.9g\t%.9g" % (p, conf, score))
