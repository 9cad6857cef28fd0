"""bench/bench_train_torch.py: PyTorch's side of the trainer comparison in `make bench`.

usage: bench_train_torch.py THREADS [--data DIR] [--normal 1,4,7] [--epochs N]
                            [--warmup N] [--clf-epochs N] [--seed S]

Trains the three learned stages of CLAD the way the reference does, on the same
normal images clad-train fits (the normal classes of the train split of DIR, less
the 10% clad holds out), with torch.set_num_threads(THREADS):
  ae   the cvae autoencoder (REFERENCE.md), Adam 1e-3, batch 512, MSE against the
       [0,1] pixels;
  dec  per epoch: encode every image (eval), soft assignment q, then minibatches of
       512 (encoder in train mode, KL(P||Q) with the per-batch target), SGD 0.01
       momentum 0.9 on encoder + centres (centres = K random codes: no k-means);
  clf  torchvision ResNet-18 (1-channel conv1, K = 10) on random pseudo-labels,
       Adam 1e-4, batch 128, cross-entropy.
Each stage runs --warmup untimed epochs, then --epochs timed ones (--clf-epochs for
ResNet-18); prints seconds per epoch per 1,000 images as `torch_STAGE_s_per_kimg X`.
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def read_idx(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit("bench_train_torch: %s is not an unsigned-byte idx file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(dims)


class CVAE(nn.Module):
    """The reference's cvae for c x H x W inputs, latent h."""

    def __init__(self, c=1, H=28, W=28, h=10):
        super().__init__()
        self.h = h
        flat = 16 * c * (H // 4) * (W // 4)
        self.shape = (16 * c, H // 4, W // 4)
        self.enc = nn.Sequential(
            nn.Dropout(0.1),
            nn.Conv2d(c, 4 * c, 3, padding=1), nn.ELU(), nn.MaxPool2d(2),
            nn.Conv2d(4 * c, 8 * c, 3, padding=1), nn.ELU(), nn.MaxPool2d(2),
            nn.Conv2d(8 * c, 16 * c, 3, padding=1), nn.ELU(), nn.Flatten(),
            nn.Linear(flat, 512), nn.ReLU(), nn.Linear(512, 2 * h))
        self.dec_fc = nn.Sequential(nn.Linear(h, 512), nn.ReLU(), nn.Linear(512, flat), nn.ReLU())
        self.dec_conv = nn.Sequential(
            nn.ConvTranspose2d(16 * c, 8 * c, 4, 2, 1), nn.ELU(),
            nn.ConvTranspose2d(8 * c, 4 * c, 4, 2, 1), nn.ELU(),
            nn.Conv2d(4 * c, c, 3, padding=1), nn.Sigmoid())
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def encode(self, x):
        """mu, and z = mu + sigma * N(0,1) when training (mu when not)."""
        o = self.enc(x)
        mu, sigma = o[:, :self.h], o[:, self.h:]
        if self.training:
            return mu, mu + sigma * torch.randn_like(sigma)
        return mu, mu

    def decode(self, z):
        return self.dec_conv(self.dec_fc(z).view(-1, *self.shape))


def resnet18(channels=1, classes=10):
    m = torchvision.models.resnet18(num_classes=classes)
    m.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
    return m


def soft_assign(z, centres):
    """Student-t, alpha = 1."""
    q = 1.0 / (1.0 + torch.cdist(z, centres).pow(2))
    return q / q.sum(1, keepdim=True)


def dec_kl_loss(q):
    """DEC's loss for a batch: KL(P||Q) summed, over the batch size; P the batch's target."""
    with torch.no_grad():
        p = q.pow(2) / q.sum(0)
        p = p / p.sum(1, keepdim=True)
    return F.kl_div(q.log(), p, reduction="sum") / q.shape[0]


def timed(epoch_fn, warmup, epochs):
    """Seconds per epoch over `epochs` epochs after `warmup` untimed ones."""
    for _ in range(warmup):
        epoch_fn()
    t0 = time.perf_counter()
    for _ in range(epochs):
        epoch_fn()
    return (time.perf_counter() - t0) / epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("threads", type=int)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--normal", default="1,4,7", help="normal class ids (mnist:STR)")
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs, autoencoder and DEC")
    ap.add_argument("--clf-epochs", type=int, default=2, help="timed epochs, ResNet-18")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    images = read_idx(os.path.join(a.data, "train-images-idx3-ubyte"))
    labels = read_idx(os.path.join(a.data, "train-labels-idx1-ubyte")).long()
    normal = [int(c) for c in a.normal.split(",")]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    for c in normal:
        keep |= labels == c
    pix = images[keep].float().div_(255.0).unsqueeze(1).contiguous()  # (n, 1, 28, 28) in [0,1]
    n_all = pix.shape[0]
    # clad-train fits on all but floor(10%) of the normal images
    n = n_all - int(math.floor(n_all * a.holdout))
    pix = pix[torch.randperm(n_all)[:n]].contiguous()
    mean, std = pix.mean().item(), pix.std(unbiased=False).item()
    xn = ((pix - mean) / std).contiguous()
    kimg = n / 1000.0
    K, h = 10, 10

    print("torch", torch.__version__, "threads", torch.get_num_threads(),
          "OPENBLAS_CORETYPE", os.environ.get("OPENBLAS_CORETYPE", "-"),
          "OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "-"))
    print("n_fit", n)
    print("epochs warmup %d timed %d clf_timed %d" % (a.warmup, a.epochs, a.clf_epochs))

    # (a) autoencoder
    ae = CVAE(1, 28, 28, h)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)

    def ae_epoch():
        ae.train()
        for idx in torch.randperm(n).split(512):
            _, z = ae.encode(xn[idx])
            loss = F.mse_loss(ae.decode(z), pix[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    s = timed(ae_epoch, a.warmup, a.epochs)
    print("torch_ae_s_per_epoch %.4f" % s)
    print("torch_ae_s_per_kimg %.4f" % (s / kimg))

    # (b) DEC on the trained encoder; centres = K random latent means
    ae.eval()
    with torch.no_grad():
        mu0 = torch.cat([ae.encode(xn[i:i + 256])[0] for i in range(0, n, 256)])
    centres = nn.Parameter(mu0[torch.randperm(n)[:K]].clone())
    dopt = torch.optim.SGD(list(ae.enc.parameters()) + [centres], lr=0.01, momentum=0.9)
    prev = [None]

    def dec_epoch():
        ae.eval()
        with torch.no_grad():
            mu = torch.cat([ae.encode(xn[i:i + 256])[0] for i in range(0, n, 256)])
            lab = soft_assign(mu, centres).argmax(1)
            if prev[0] is not None:
                (lab != prev[0]).float().mean().item()  # labels changed (the stopping test)
            prev[0] = lab
        ae.train()
        for idx in torch.randperm(n).split(512):
            z, _ = ae.encode(xn[idx])  # the mean, as clad's DEC trains on
            loss = dec_kl_loss(soft_assign(z, centres))
            dopt.zero_grad()
            loss.backward()
            dopt.step()

    s = timed(dec_epoch, a.warmup, a.epochs)
    print("torch_dec_s_per_epoch %.4f" % s)
    print("torch_dec_s_per_kimg %.4f" % (s / kimg))

    # (c) ResNet-18 on random pseudo-labels
    clf = resnet18(1, K)
    y = torch.randint(0, K, (n,))
    copt = torch.optim.Adam(clf.parameters(), lr=1e-4)

    def clf_epoch():
        clf.train()
        for idx in torch.randperm(n).split(128):
            if idx.numel() < 2:  # BatchNorm needs two values (clad drops a lone image too)
                continue
            out = clf(xn[idx])
            loss = F.cross_entropy(out, y[idx])
            copt.zero_grad()
            loss.backward()
            copt.step()

    s = timed(clf_epoch, a.warmup, a.clf_epochs)
    print("torch_clf_s_per_epoch %.4f" % s)
    print("torch_clf_s_per_kimg %.4f" % (s / kimg))


if __name__ == "__main__":
    main()
