"""tests/parity/check_clad_model.py PATH: a model clad saved, run by PyTorch.

PATH comes from `tests/build/unit/test_parity --write-clad-model PATH`: a clad ResNet-18
(clad_net_save under "model.", with num_batches_tracked as I64), an "input"
batch and clad's eval-mode logits "output".  The weights are loaded into
torchvision's resnet18 (conv1 replaced for C input channels) with
load_state_dict(strict=True), so every name, shape and dtype must be the
one PyTorch uses; the weights must follow torchvision's initialisation
(check_init); the logits PyTorch computes (in float64 from the float32
weights) must match clad's within a max-norm relative error of 1e-4:
max_i |clad_i - torch_i| / max_i |torch_i|.  Exit status 0 when they do.
Run with /usr/bin/python3 (Debian's python3-torch and python3-torchvision).
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

TOL = 1e-4


def check_init(sd):
    """clad_classifier_init(net, "resnet18", seed) against torchvision's scheme (the
    BatchNorm tensors are set by the test, not checked): convs Kaiming-normal with
    mode fan_out and ReLU gain, std sqrt(2 / fan_out); fc PyTorch's Linear default,
    weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).  Sample statistics get a
    10% margin (the smallest conv has 3136 weights: a 1.3% standard error)."""
    bad = []
    for name, v in sd.items():
        v = v.double()
        if v.dim() == 4:
            fan_out = v.shape[0] * v.shape[2] * v.shape[3]
            std, want = v.std().item(), (2.0 / fan_out) ** 0.5
            if abs(std / want - 1) > 0.1 or abs(v.mean().item()) > 0.1 * want:
                bad.append("%s: std %.4g mean %.3g, want N(0, %.4g^2)" % (name, std, v.mean().item(), want))
        elif name in ("fc.weight", "fc.bias"):
            bound = 1.0 / sd["fc.weight"].shape[1] ** 0.5
            if v.abs().max().item() > bound:
                bad.append("%s: max |w| %.4g beyond the bound %.4g" % (name, v.abs().max().item(), bound))
            if name == "fc.weight" and abs(v.std().item() / (bound / 3 ** 0.5) - 1) > 0.1:
                bad.append("%s: std %.4g, want %.4g (uniform)" % (name, v.std().item(), bound / 3 ** 0.5))
    return bad


def main(path):
    t, meta = st_io.load(path)
    if meta.get("arch") != "resnet18":
        print("check_clad_model: %s: arch %r, expected resnet18" % (path, meta.get("arch")))
        return 1
    c, k = int(meta["C"]), int(meta["K"])
    m = torchvision.models.resnet18(num_classes=k)
    m.conv1 = nn.Conv2d(c, 64, 7, 2, 3, bias=False)
    sd = {name[len("model."):]: v for name, v in t.items() if name.startswith("model.")}
    want_sd = m.state_dict()
    for name, v in sd.items():   # load_state_dict would silently cast a float counter
        if name in want_sd and v.dtype != want_sd[name].dtype:
            print("check_clad_model: %s is %s, PyTorch has %s" % (name, v.dtype, want_sd[name].dtype))
            return 1
    m.load_state_dict(sd, strict=True)
    bad = check_init(sd)
    if bad:
        print("check_clad_model: clad_classifier_init does not match torchvision's initialisation:")
        for line in bad:
            print("  " + line)
        return 1
    m = m.double().eval()
    with torch.no_grad():
        ref = m(t["input"].double())
    got = t["output"].double()
    if got.shape != ref.shape:
        print("check_clad_model: output shape %s, PyTorch gives %s" % (tuple(got.shape), tuple(ref.shape)))
        return 1
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    ok = err <= TOL
    print("check_clad_model: %s: %d tensors loaded strictly into torchvision resnet18, "
          "logits max-norm rel err %.2e (tol %.0e) %s" % (os.path.basename(path), len(sd), err, TOL,
                                                          "ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_clad_model.py PATH")
    sys.exit(main(sys.argv[1]))
