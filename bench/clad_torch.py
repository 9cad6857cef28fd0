"""bench/clad_torch.py: CLAD re-implemented in PyTorch, to compare clad-train's quality with.

usage: clad_torch.py [--data DIR] [--normal 0,3,8] [--ae-epochs 30] [--dec-epochs 30]
                     [--clf-epochs 15] [--seed S] [--threads N] [--clad-conventions]

The whole method as the reference code (JuneKyu/CLAD) runs it, on the same 8000/2000
split `make data` writes, with the same fit set clad-train uses (the normal classes of
the train split less a seeded 10% it holds out for calibration):
  1. the cvae autoencoder, Adam 1e-3, batch 512, MSE of the sigmoid output against the
     normalised input; batches in a fixed order (the reference's loader does not
     shuffle); dropout and latent sampling on while training;
  2. k-means (k-means++ seeding, 20 restarts, the least inertia kept) on the codes the
     encoder gives in training mode (the reference computes them so), then DEC: SGD
     0.01, momentum 0.9, batch 512, the target distribution of each batch, encoder in
     training mode; stop when fewer than 0.1% of the labels change in an epoch;
     pseudo-labels = argmax q on the latent means (REFERENCE.md: z = mu when not
     training);
  3. torchvision's ResNet-18 with conv1 replaced by Conv(1->64, 7x7, stride 2, pad 3)
     after construction (so PyTorch's default init for that layer), Adam 1e-4, batch
     128, shuffled, the last partial batch dropped, cross-entropy;
  4. ODIN on the test split: T = 1000, x' = x - 0.0161 * sign(grad) (the reference's
     eps 1e-4 times 50 / (79/255)), confidence = max softmax(f(x') / T); the baseline is
     max softmax(f(x)).
--clad-conventions switches to clad-train's defaults where they differ: shuffled
autoencoder batches, k-means and DEC on the latent means (no dropout, no sampling),
conv1 Kaiming-normal.
Prints one JSON object: ODIN and baseline AUROC (%), cluster purity, seconds per stage.
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_torch import CVAE, dec_kl_loss, read_idx, soft_assign  # noqa: E402


def auroc(pos, neg):
    """Area under the ROC curve, pos scored higher = better; ties count one half."""
    s = torch.cat([pos, neg]).double()
    order = torch.argsort(s)
    ranks = torch.empty_like(s)
    sorted_s = s[order]
    i, n = 0, s.numel()
    while i < n:  # average ranks over ties
        j = i
        while j + 1 < n and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    npos, nneg = pos.numel(), neg.numel()
    return float((ranks[:npos].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def kmeans(x, k, restarts, gen, iters=300, tol=1e-4):
    """Lloyd's k-means from k-means++ seeds; the restart with the least inertia."""
    best = None
    tol_abs = tol * x.var(0).mean().item()
    for _ in range(restarts):
        c = x[torch.randint(0, x.shape[0], (1,), generator=gen)]
        for _ in range(1, k):
            d = torch.cdist(x, c).pow(2).min(1).values
            c = torch.cat([c, x[torch.multinomial(d / d.sum(), 1, generator=gen)]])
        for _ in range(iters):
            lab = torch.cdist(x, c).argmin(1)
            new = torch.stack([x[lab == j].mean(0) if (lab == j).any() else c[j] for j in range(k)])
            shift = (new - c).pow(2).sum().item()
            c = new
            if shift <= tol_abs:
                break
        lab = torch.cdist(x, c).argmin(1)
        inertia = (x - c[lab]).pow(2).sum().item()
        if best is None or inertia < best[0]:
            best = (inertia, c.clone())
    return best[1]


def load_split(data_dir, kind):
    """Images (N, 1, 28, 28) in [0,1] and labels (N) of an idx split ("train" or "t10k")."""
    x = read_idx(os.path.join(data_dir, kind + "-images-idx3-ubyte"))
    y = read_idx(os.path.join(data_dir, kind + "-labels-idx1-ubyte")).long()
    return x.float().div_(255.0).unsqueeze(1), y


def is_normal(y, normal):
    """Mask of the labels that are among the normal classes."""
    m = torch.zeros_like(y, dtype=torch.bool)
    for c in normal:
        m |= y == c
    return m


def train_autoencoder(xn, h, epochs, gen, shuffle):
    """Stage 1: the cvae on normalised images xn, Adam 1e-3, batch 512, MSE against xn;
    dropout and latent sampling on; batches shuffled, or in a fixed order as the
    reference's loader gives them."""
    n = xn.shape[0]
    ae = CVAE(1, 28, 28, h)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    for _ in range(epochs):
        ae.train()
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        for idx in order.split(512):
            _, z = ae.encode(xn[idx])
            loss = F.mse_loss(ae.decode(z), xn[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ae


def codes(ae, x, train_mode):
    """Latent codes of x: sampled in training mode (dropout on), the means otherwise."""
    ae.train(train_mode)
    with torch.no_grad():
        return torch.cat([ae.encode(x[i:i + 512])[1 if train_mode else 0] for i in range(0, x.shape[0], 512)])


def self_label(ae, xn, K, epochs, gen, on_means):
    """Stage 2: k-means (20 restarts), then DEC (SGD 0.01, momentum 0.9, batch 512) until
    fewer than 0.1% of the labels change; on the latent means (clad's convention) or on
    codes sampled with dropout on (the reference's).  Returns (labels, centres, epochs run)."""
    n = xn.shape[0]
    centres = nn.Parameter(kmeans(codes(ae, xn, not on_means), K, 20, gen))
    dopt = torch.optim.SGD(list(ae.enc.parameters()) + [centres], lr=0.01, momentum=0.9)
    prev = soft_assign(codes(ae, xn, False), centres).argmax(1)
    run = 0
    for _ in range(epochs):
        run += 1
        ae.train(not on_means)
        for idx in torch.arange(n).split(512):
            mu, z = ae.encode(xn[idx])
            loss = dec_kl_loss(soft_assign(mu if on_means else z, centres))
            dopt.zero_grad()
            loss.backward()
            dopt.step()
        with torch.no_grad():
            cur = soft_assign(codes(ae, xn, False), centres).argmax(1)
        delta = (cur != prev).float().mean().item()
        prev = cur
        if delta < 0.001:
            break
    return prev, centres, run


def resnet18(kaiming_conv1):
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    if kaiming_conv1:
        nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--normal", default="0,3,8")
    ap.add_argument("--ae-epochs", type=int, default=30)
    ap.add_argument("--dec-epochs", type=int, default=30)
    ap.add_argument("--clf-epochs", type=int, default=15)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clad-conventions", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    clad = a.clad_conventions
    K, h, T, eps = 10, 10, 1000.0, 1e-4 * 50 / (79 / 255)

    normal = [int(c) for c in a.normal.split(",")]
    trx, try_ = load_split(a.data, "train")
    tex, tey = load_split(a.data, "t10k")
    keep = is_normal(try_, normal)
    pix, lab_true = trx[keep], try_[keep]
    n_all = pix.shape[0]
    n = n_all - int(math.floor(n_all * a.holdout))
    fit = torch.randperm(n_all, generator=gen)[:n]
    pix, lab_true = pix[fit].contiguous(), lab_true[fit]
    mean, std = pix.mean().item(), pix.std(unbiased=False).item()
    xn = ((pix - mean) / std).contiguous()
    times = {}

    # 1. autoencoder
    t0 = time.perf_counter()
    ae = train_autoencoder(xn, h, a.ae_epochs, gen, shuffle=clad)
    times["ae_s"] = time.perf_counter() - t0

    # 2. k-means, then DEC
    t0 = time.perf_counter()
    pseudo, _, dec_epochs_run = self_label(ae, xn, K, a.dec_epochs, gen, on_means=clad)
    purity = sum(torch.bincount(lab_true[pseudo == j], minlength=10).max().item()
                 for j in range(K) if (pseudo == j).any()) / n
    times["dec_s"] = time.perf_counter() - t0

    # 3. ResNet-18 on the pseudo-labels
    t0 = time.perf_counter()
    clf = resnet18(clad)
    copt = torch.optim.Adam(clf.parameters(), lr=1e-4)
    for _ in range(a.clf_epochs):
        clf.train()
        for idx in torch.randperm(n, generator=gen).split(128):
            if idx.numel() < 128:  # drop_last
                continue
            loss = F.cross_entropy(clf(xn[idx]), pseudo[idx])
            copt.zero_grad()
            loss.backward()
            copt.step()
    times["clf_s"] = time.perf_counter() - t0

    # 4. ODIN on the test split
    t0 = time.perf_counter()
    clf.eval()
    xt = (tex - mean) / std
    odin, base = [], []
    for i in range(0, xt.shape[0], 100):
        x = xt[i:i + 100].clone().requires_grad_(True)
        out = clf(x)
        base.append(F.softmax(out, 1).max(1).values.detach())
        loss = F.cross_entropy(out / T, out.argmax(1), reduction="sum")
        g, = torch.autograd.grad(loss, x)
        with torch.no_grad():
            xp = x - eps * torch.sign(g)
            odin.append(F.softmax(clf(xp) / T, 1).max(1).values)
    odin, base = torch.cat(odin), torch.cat(base)
    times["odin_s"] = time.perf_counter() - t0
    m = is_normal(tey, normal)
    print(json.dumps({
        "normal": a.normal, "seed": a.seed, "clad_conventions": clad,
        "epochs": [a.ae_epochs, dec_epochs_run, a.clf_epochs], "n_fit": n,
        "odin_auroc": round(100 * auroc(odin[m], odin[~m]), 2),
        "baseline_auroc": round(100 * auroc(base[m], base[~m]), 2),
        "cluster_purity": round(purity, 4),
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }))


if __name__ == "__main__":
    main()
