"""bench/explore_quality.py: experiments on what CLAD's score separates, on a validation split.

usage: explore_quality.py [--normal 0,3,8] [--ae-epochs 30] [--dec-epochs 30]
                          [--clf-epochs 15] [--rotations 1|4] [--K 10] [--seed S]
                          [--fraction 1.0] [--split val|test] [--threads N]

The validation split is carved from the 8,000 training digits of `make data` alone:
the normal classes' training digits are cut (seeded) into a fit set (80%) and held-out
normal digits (20%); the validation anomalies are the training digits of every other
class.  The 2,000 test digits are read only with --split test.

Trains CLAD with clad-train's conventions (cvae autoencoder; k-means on the latent means,
then DEC; ResNet-18 on the pseudo-labels; Adam 1e-4, batch 128) and, with --rotations 4,
on self-labels that pair each image's cluster k with one of four rotations r of it
(label k * 4 + r; every fit image seen in all four orientations).  Then scores the
evaluation images in several ways and prints one JSON object of AUROCs (%):
  odin        ODIN (T = 1000, step 0.0161) on the upright image;
  msp         max softmax of the upright image;
  rot_joint   max over k of the mean over r of log p(k, r | rot_r x);
  rot_max     mean over r of max over k of log p(k, r | rot_r x);
  rot_marg    mean over r of log sum_k p(k, r | rot_r x) (the orientation alone);
  ae_recon    minus the autoencoder's reconstruction error;
  dec_dist    minus the latent distance to the nearest DEC centre.
The rot_* scores need --rotations 4.  Run with /usr/bin/python3.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clad_torch import auroc, codes, is_normal, load_split, resnet18, self_label, train_autoencoder  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--normal", default="0,3,8")
    ap.add_argument("--ae-epochs", type=int, default=30)
    ap.add_argument("--dec-epochs", type=int, default=30)
    ap.add_argument("--clf-epochs", type=int, default=15)
    ap.add_argument("--rotations", type=int, choices=(1, 4), default=1)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--fraction", type=float, default=1.0, help="share of the fit set used")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="write the classifier, pseudo-labels and splits here (torch.save)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    K, R, h, T, eps = a.K, a.rotations, 10, 1000.0, 0.0161
    normal = [int(c) for c in a.normal.split(",")]

    trx, try_ = load_split(a.data, "train")
    keep = is_normal(try_, normal)
    pix_all, lab_all = trx[keep], try_[keep]
    perm = torch.randperm(pix_all.shape[0], generator=gen)
    n_fit = int(0.8 * pix_all.shape[0])
    fit_idx = perm[:max(int(n_fit * a.fraction), 64)]
    pix, lab_true = pix_all[fit_idx].contiguous(), lab_all[fit_idx]
    if a.split == "val":
        ev_x = torch.cat([pix_all[perm[n_fit:]], trx[~keep]])
        ev_normal = torch.cat([torch.ones(pix_all.shape[0] - n_fit, dtype=torch.bool),
                               torch.zeros(int((~keep).sum()), dtype=torch.bool)])
    else:
        ev_x, tey = load_split(a.data, "t10k")
        ev_normal = is_normal(tey, normal)
    n = pix.shape[0]
    mean, std = pix.mean().item(), pix.std(unbiased=False).item()
    xn = ((pix - mean) / std).contiguous()
    xe = ((ev_x - mean) / std).contiguous()
    times = {}

    # 1. autoencoder (shuffled batches, as clad-train)
    t0 = time.perf_counter()
    ae = train_autoencoder(xn, h, a.ae_epochs, gen, shuffle=True)
    times["ae_s"] = time.perf_counter() - t0

    with torch.no_grad():
        ae.eval()
        rec = torch.cat([(ae.decode(ae.encode(xe[i:i + 512])[0]) - xe[i:i + 512]).pow(2).flatten(1).mean(1)
                         for i in range(0, xe.shape[0], 512)])

    # 2. k-means on the latent means, then DEC
    t0 = time.perf_counter()
    pseudo, centres, dec_run = self_label(ae, xn, K, a.dec_epochs, gen, on_means=True)
    sizes = torch.bincount(pseudo, minlength=K)
    purity = sum(torch.bincount(lab_true[pseudo == j], minlength=10).max().item()
                 for j in range(K) if (pseudo == j).any()) / n
    with torch.no_grad():
        dec_dist = torch.cdist(codes(ae, xe, False), centres.detach()).min(1).values
    times["dec_s"] = time.perf_counter() - t0

    # 3. ResNet-18 on (cluster, rotation) labels
    t0 = time.perf_counter()
    clf = resnet18(True)
    clf.fc = nn.Linear(512, K * R)
    copt = torch.optim.Adam(clf.parameters(), lr=1e-4)
    for _ in range(a.clf_epochs):
        clf.train()
        for idx in torch.randperm(n * R, generator=gen).split(128):
            if idx.numel() < 128:
                continue
            img, r = idx // R, idx % R
            xb = xn[img].clone()
            for rr in range(1, R):
                sel = r == rr
                if sel.any():
                    xb[sel] = torch.rot90(xb[sel], rr, (2, 3))
            loss = F.cross_entropy(clf(xb), pseudo[img] * R + r)
            copt.zero_grad()
            loss.backward()
            copt.step()
    times["clf_s"] = time.perf_counter() - t0

    if a.save:
        torch.save({"clf": clf.state_dict(), "ae": ae.state_dict(), "centres": centres.detach(),
                    "pseudo": pseudo, "xn": xn, "xe": xe, "ev_normal": ev_normal, "K": K, "R": R}, a.save)

    # 4. scores
    t0 = time.perf_counter()
    clf.eval()
    res = {}

    def features(x):
        """ResNet-18's penultimate features (B, 512) of normalised images."""
        y = clf.maxpool(clf.relu(clf.bn1(clf.conv1(x))))
        y = clf.layer4(clf.layer3(clf.layer2(clf.layer1(y))))
        return torch.flatten(clf.avgpool(y), 1)

    with torch.no_grad():
        # per rotation: the fit images' features, their (cluster) means and a shared
        # covariance; evaluation images scored by Mahalanobis distance to the nearest
        # mean and by cosine distance to the nearest fit image, averaged over rotations
        maha, knn, knn0 = torch.zeros(xe.shape[0]), torch.zeros(xe.shape[0]), None
        for r in range(R):
            ff = torch.cat([features(torch.rot90(xn[i:i + 256], r, (2, 3))) for i in range(0, n, 256)])
            fe = torch.cat([features(torch.rot90(xe[i:i + 256], r, (2, 3))) for i in range(0, xe.shape[0], 256)])
            mu = torch.stack([ff[pseudo == k].mean(0) if (pseudo == k).any() else ff.mean(0) for k in range(K)])
            cen = ff - mu[pseudo]
            cov = cen.T @ cen / n + 1e-3 * torch.eye(ff.shape[1])
            prec = torch.linalg.inv(cov.double()).float()
            d = fe.unsqueeze(1) - mu.unsqueeze(0)  # (N, K, 512)
            maha -= torch.einsum("nkd,de,nke->nk", d, prec, d).min(1).values / R
            ffn, fen = F.normalize(ff, dim=1), F.normalize(fe, dim=1)
            d1 = torch.cat([(1 - fen[i:i + 512] @ ffn.T).min(1).values for i in range(0, fe.shape[0], 512)])
            knn -= d1 / R
            if knn0 is None:
                knn0 = -d1
        res["feat_maha"], res["feat_knn"], res["feat_knn_upright"] = maha, knn, knn0
    odin, msp, rj, rm, rg = [], [], [], [], []
    for i in range(0, xe.shape[0], 200):
        x = xe[i:i + 200].clone().requires_grad_(True)
        out = clf(x)
        if R == 1:
            msp.append(F.softmax(out, 1).max(1).values.detach())
            loss = F.cross_entropy(out / T, out.argmax(1), reduction="sum")
            g, = torch.autograd.grad(loss, x)
            with torch.no_grad():
                odin.append(F.softmax(clf(x - eps * torch.sign(g)) / T, 1).max(1).values)
        else:
            with torch.no_grad():
                lp = torch.stack([F.log_softmax(clf(torch.rot90(x, r, (2, 3))), 1).view(-1, K, R)[:, :, r]
                                  for r in range(R)], 1)  # (B, R, K)
                rj.append(lp.mean(1).max(1).values)
                rm.append(lp.max(2).values.mean(1))
                rg.append(torch.logsumexp(lp, 2).mean(1))
    m = ev_normal
    if R == 1:
        res["odin"] = torch.cat(odin)
        res["msp"] = torch.cat(msp)
    else:
        res["rot_joint"], res["rot_max"], res["rot_marg"] = torch.cat(rj), torch.cat(rm), torch.cat(rg)
    if R > 1:
        # scores standardised on the held-out normal images, then summed
        def z(v):
            return (v - v[ev_normal].mean()) / v[ev_normal].std()
        res["fuse_rot_knn"] = z(res["rot_marg"]) + z(res["feat_knn"])
    res["ae_recon"] = -rec
    res["dec_dist"] = -dec_dist
    times["score_s"] = time.perf_counter() - t0
    print(json.dumps({
        "normal": a.normal, "seed": a.seed, "split": a.split, "rotations": R, "K": K,
        "fraction": a.fraction, "epochs": [a.ae_epochs, dec_run, a.clf_epochs], "n_fit": n,
        "auroc": {k: round(100 * auroc(v[m], v[~m]), 2) for k, v in res.items()},
        "cluster_purity": round(purity, 4), "cluster_sizes": sizes.tolist(),
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }), flush=True)


if __name__ == "__main__":
    main()
