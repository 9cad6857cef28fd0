"""tests/parity/check_orientation.py PATH: clad's orientation confidence, recomputed by PyTorch.

PATH comes from `tests/build/unit/test_orientation --write PATH`: a clad model file of format 2
(a ResNet-18 classifier with K * R outputs, "score" "orientation") and, in PATH.cases,
seeded images in [0,1] ("input") with the confidences clad gave them ("confidence").
The classifier's tensors are loaded into torchvision's resnet18 (conv1 replaced for one
channel, fc with K * R outputs) with load_state_dict(strict=True); the images are
normalised with the file's mean and std, turned with torch.rot90(x, r, (2, 3)), and
    conf = exp(mean_r log sum_k softmax(f(rot_r x))[k * R + r])
is computed in float64; it must match clad's within a relative error of 1e-5.
Run with /usr/bin/python3 (Debian's python3-torch and python3-torchvision).
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

TOL = 1e-5


def load_classifier(t, meta):
    """A model file's classifier (tensors t, K * R outputs, one channel) as torchvision's
    resnet18, loaded with load_state_dict(strict=True), in float64 and eval mode."""
    K, R = int(meta["clusters"]), int(meta["rotations"])
    m = torchvision.models.resnet18(num_classes=K * R)
    m.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    sd = {name[len("classifier."):]: v for name, v in t.items() if name.startswith("classifier.")}
    m.load_state_dict(sd, strict=True)
    return m.double().eval()


def main(path):
    t, meta = st_io.load(path)
    cases, _ = st_io.load(path + ".cases")
    if meta.get("format_version") != "2" or meta.get("score") != "orientation":
        print("check_orientation: %s is not an orientation model: %r" % (path, meta))
        return 1
    K, R = int(meta["clusters"]), int(meta["rotations"])
    mean, std = float(meta["normalize_mean"]), float(meta["normalize_std"])
    m = load_classifier(t, meta)
    x = (cases["input"].double() - mean) / std
    with torch.no_grad():
        lp = []
        for r in range(R):
            logp = torch.log_softmax(m(torch.rot90(x, r * 4 // R, (2, 3))), 1).view(-1, K, R)
            lp.append(torch.logsumexp(logp[:, :, r], 1))
        conf = torch.exp(torch.stack(lp, 1).mean(1))
    got = cases["confidence"].double()
    err = ((got - conf).abs() / conf.abs()).max().item()
    print("check_orientation: %d images, K %d, %d turns: max relative error %.3g (tolerance %g)"
          % (x.shape[0], K, R, err, TOL))
    print("  clad   ", " ".join("%.6f" % v for v in got.tolist()))
    print("  PyTorch", " ".join("%.6f" % v for v in conf.tolist()))
    return 0 if err <= TOL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
