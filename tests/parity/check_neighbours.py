"""tests/parity/check_neighbours.py PATH: clad's neighbour confidence, recomputed by PyTorch.

PATH comes from `tests/build/unit/test_neighbours --write PATH`: a clad model file of format 3
(a ResNet-18 classifier with K * R outputs, "score" "neighbours", a bank of normal images'
features, stored as bfloat16 or F32) and, in PATH.cases, seeded images in [0,1] ("input"),
the bank's images ("bank_input"), and the distances and confidences clad gave the images.
The classifier's tensors are loaded into torchvision's resnet18 (conv1 replaced for one
channel) with load_state_dict(strict=True), as check_orientation.py loads them.  In float64,
for each image and turn r (torch.rot90), the features of layer2's output average-pooled to
2 x 2 cells and of the global average pool (the penultimate features) are scaled to unit
length; the bank is recomputed from its images the same way and must match the file's
(a bfloat16 bank: PyTorch's own rounding of the recomputed features to bfloat16 must be the
stored values but for a last-bit tie broken the other way, 1 element in 1,000 at most, and
every stored value within 2^-8 of its feature); each tap's distance is the mean over turns
of 1 - the largest cosine to a stored bank row of the same turn, and
    conf = - sum_t (d_t - neighbour_mean_t) / neighbour_std_t.
Distances must match clad's within 1e-5, and confidences within what that allows once
divided by the spreads: 1e-5 x sum_t 1 / neighbour_std_t.  Run with /usr/bin/python3.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from check_orientation import load_classifier  # noqa: E402


def features(m, x):
    """[(B, 512) layer2 pooled 2x2, (B, 512) penultimate], each row of unit length."""
    y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    l2 = m.layer2(m.layer1(y))
    pen = torch.flatten(m.avgpool(m.layer4(m.layer3(l2))), 1)
    return [F.normalize(F.adaptive_avg_pool2d(l2, 2).flatten(1), dim=1), F.normalize(pen, dim=1)]


def main(path):
    t, meta = st_io.load(path)
    cases, _ = st_io.load(path + ".cases")
    if meta.get("format_version") != "3" or meta.get("score") != "neighbours" or meta.get("neighbour_pool") != "2,1":
        print("check_neighbours: %s is not a ResNet-18 neighbour model: %r" % (path, meta))
        return 1
    K, R = int(meta["clusters"]), int(meta["rotations"])
    mean, std = float(meta["normalize_mean"]), float(meta["normalize_std"])
    nmean = [float(v) for v in meta["neighbour_mean"].split(",")]
    nstd = [float(v) for v in meta["neighbour_std"].split(",")]
    m = load_classifier(t, meta)
    x = (cases["input"].double() - mean) / std
    xb = (cases["bank_input"].double() - mean) / std
    dist = torch.zeros(x.shape[0], 2, dtype=torch.float64)
    bank_err = 0.0
    bf16 = t["neighbours.bank.0"].dtype == torch.bfloat16
    flips, elems = 0, 0
    bank_tol = 1.0 if bf16 else 1e-5
    with torch.no_grad():
        for r in range(R):
            fx = features(m, torch.rot90(x, r * 4 // R, (2, 3)))
            fb = features(m, torch.rot90(xb, r * 4 // R, (2, 3)))
            for k in range(2):
                stored = t["neighbours.bank.%d" % k][r]
                if bf16:
                    # torch rounds float64 to bfloat16 directly; clad rounds its float features
                    ours = fb[k].float().to(torch.bfloat16)
                    flips += int((ours.view(torch.int16) != stored.view(torch.int16)).sum())
                    elems += stored.numel()
                    stored = stored.double()
                    # as a share of the rounding's bound, 2^-8 relative (and 1e-5 for float's own)
                    bank_err = max(bank_err, ((stored - fb[k]).abs() / (fb[k].abs() / 256 + 1e-5)).max().item())
                else:
                    stored = stored.double()
                    bank_err = max(bank_err, (stored - fb[k]).abs().max().item())
                dist[:, k] += (1 - fx[k] @ stored.T).min(1).values / R
    conf = -sum((dist[:, k] - nmean[k]) / nstd[k] for k in range(2))
    got_d, got_c = cases["distance"].double(), cases["confidence"].double()
    d_err = (got_d - dist).abs().max().item()
    c_err = (got_c - conf).abs().max().item()
    c_tol = 1e-5 * sum(1 / v for v in nstd)
    print("check_neighbours: %d images, %d bank images, %d turns, %s bank: bank features off by %.3g%s, "
          "distances by %.3g, confidences by %.3g (tolerance %.3g)"
          % (x.shape[0], xb.shape[0], R, "bfloat16" if bf16 else "F32", bank_err,
             " of the rounding's bound, %d of %d elements rounded otherwise" % (flips, elems) if bf16 else "",
             d_err, c_err, c_tol))
    print("  clad   ", " ".join("%.6f" % v for v in got_c.tolist()))
    print("  PyTorch", " ".join("%.6f" % v for v in conf.tolist()))
    return 0 if bank_err <= bank_tol and flips * 1000 <= elems and d_err <= 1e-5 and c_err <= c_tol else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
