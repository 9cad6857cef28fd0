"""bench/explore_features.py: nearest-neighbour scores on an orientation classifier's features.

usage: explore_features.py RUN.pt [RUN.pt ...]

Reads what `explore_quality.py --rotations 4 --save RUN.pt` wrote (the classifier, the
fit images, the validation images and which of them are normal) and scores the
validation images by their distance to the nearest fit images in several feature
spaces of the classifier, each averaged over the four turns of the image.  Prints one
JSON object of AUROCs (%) per run.  Validation split only (see explore_quality.py):
the 2,000 test digits are never read.  Run with /usr/bin/python3.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clad_torch import auroc, resnet18  # noqa: E402


def taps(clf, x):
    """The classifier's activations after each stage, {name: (B, C, h, w)} and logits."""
    y = clf.maxpool(clf.relu(clf.bn1(clf.conv1(x))))
    out = {}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        y = getattr(clf, name)(y)
        out[name] = y
    out["logits"] = clf.fc(torch.flatten(clf.avgpool(y), 1))
    return out


def nn_dist(fe, ff, k=1, metric="cos"):
    """Mean distance of each row of fe to its k nearest rows of ff."""
    if metric == "cos":
        fe, ff = F.normalize(fe, dim=1), F.normalize(ff, dim=1)
    res = []
    for i in range(0, fe.shape[0], 512):
        if metric == "cos":
            d = 1 - fe[i:i + 512] @ ff.T
        else:
            d = torch.cdist(fe[i:i + 512], ff)
        res.append(d.topk(k, 1, largest=False).values.mean(1))
    return torch.cat(res)


def main():
    for path in sys.argv[1:]:
        s = torch.load(path)
        K, R = s["K"], s["R"]
        clf = resnet18(True)
        clf.fc = nn.Linear(512, K * R)
        clf.load_state_dict(s["clf"])
        clf.eval()
        xn, xe, normal = s["xn"], s["xe"], s["ev_normal"]
        torch.manual_seed(0)
        bank_idx = torch.randperm(xn.shape[0])[:1024]
        feats = {}
        with torch.no_grad():
            for r in range(R):
                for tag, x in (("fit", xn), ("ev", xe)):
                    acts = [taps(clf, torch.rot90(x[i:i + 256], r, (2, 3))) for i in range(0, x.shape[0], 256)]
                    for name in acts[0]:
                        a = torch.cat([b[name] for b in acts])
                        if a.dim() == 4:
                            feats.setdefault((name + "_pool", tag), []).append(a.mean((2, 3)))
                            if name in ("layer2", "layer3"):  # (layer1's 7 x 7 map: pooled only)
                                feats.setdefault((name + "_flat", tag), []).append(a.flatten(1))
                            if name == "layer2":
                                feats.setdefault((name + "_p2", tag), []).append(
                                    F.adaptive_avg_pool2d(a, 2).flatten(1))
                        else:
                            feats.setdefault((name, tag), []).append(a)
        scores = {}
        names = sorted({n for n, _ in feats})
        for name in names:
            ff, fe = feats[(name, "fit")], feats[(name, "ev")]
            scores[f"{name}_cos_k1"] = -sum(nn_dist(fe[r], ff[r], 1) for r in range(R)) / R
            scores[f"{name}_cos_k1_bank1024"] = -sum(nn_dist(fe[r], ff[r][bank_idx], 1) for r in range(R)) / R
            scores[f"{name}_cos_k1_bank512"] = -sum(nn_dist(fe[r], ff[r][bank_idx[:512]], 1)
                                                    for r in range(R)) / R
            if name == "layer4_pool":
                scores[f"{name}_cos_k5"] = -sum(nn_dist(fe[r], ff[r], 5) for r in range(R)) / R
                scores[f"{name}_l2_k1"] = -sum(nn_dist(fe[r], ff[r], 1, "l2") for r in range(R)) / R

        def z(v):
            return (v - v[normal].mean()) / v[normal].std()
        for combo in (("layer2_pool", "layer3_pool", "layer4_pool"), ("layer2_p2", "layer4_pool"),
                      ("layer2_p2", "layer3_pool", "layer4_pool"), ("layer2_flat", "layer4_pool"),
                      ("layer2_pool", "layer4_pool")):
            for bank in ("", "_bank1024", "_bank512"):
                scores["sum_z_" + "+".join(combo) + bank] = sum(z(scores[f"{c}_cos_k1{bank}"]) for c in combo)
        scores["pixels_cos_k1"] = -nn_dist(xe.flatten(1), xn.flatten(1), 1)
        res = {k: round(100 * auroc(v[normal], v[~normal]), 2) for k, v in scores.items()}
        print(json.dumps({"run": os.path.basename(path), "n_fit": xn.shape[0], "auroc": res}), flush=True)


if __name__ == "__main__":
    main()
