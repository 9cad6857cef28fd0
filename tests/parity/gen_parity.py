"""tests/parity/gen_parity.py OUTDIR: PyTorch reference data for tests/unit/test_parity.c.

Run with /usr/bin/python3 (Debian's python3-torch and python3-torchvision).

Each case is one safetensors file OUTDIR/<case>.safetensors; OUTDIR/index.txt
lists the cases, one a line (the C test fails on a listed case it cannot
read).  A file holds, with F32 unless said otherwise:

  <p>.<name>          every weight and buffer under its state_dict name, with
                      p = "model" (classifiers) or "encoder" / "decoder"
                      (autoencoders); num_batches_tracked as I64
  input, labels (I64), output, loss (a scalar), latent (autoencoders: z = mu)
  grad.<p>.<name>     the gradient of loss wrt every parameter
  grad.input          the gradient wrt the input (autoencoders: through the
                      encoder only; the MSE target is the input, detached)
  grad.latent         autoencoders: the gradient wrt z
  after.<p>.<name>    training-mode cases: every buffer after the forward pass
                      (running statistics, num_batches_tracked)
  adam.<p>.<name>     cnn_1x28_train: the parameters after two Adam steps
                      (lr 1e-3, defaults otherwise) with the saved gradients
                      grad.<p>.<name> (float32) above
  sgd.<p>.<name>      the same with SGD (lr 0.01, momentum 0.9)
  odin.grad_input, odin.conf, odin_t1.*   resnet18 1x28x28 eval cases (see
                      classifier_case)
  dec.*, grad.z, grad.centers  the DEC KL case

and metadata: kind (classifier / autoencoder / dec), arch, C, H, W, K
(classes or latent size), B, mode (train / eval), and odin.T, odin.eps,
odin_t1.T, odin_t1.eps, D, alpha where they apply.

The modules carry exactly the tensor names of clad's core/architectures.c;
ResNet-18 is torchvision's own (conv1 replaced for C input channels), not a
re-implementation.  Weights are drawn in float32 from a per-case seed, the
BatchNorm affine parameters and running statistics are then perturbed to
non-trivial values, and the saved float32 weights and input are what every
computation starts from.  The computations themselves run in float64 (an
exact widening of those float32 values) and their results are rounded to
float32: the reference is then accurate to float32 rounding, so what the C
test measures is clad's own error, not the sum of two float32 errors.

Dropout and the variational noise are absent from the reference: clad's
side runs its training graph with clad_net_set_stochastic(net, 0) (batch
statistics, no dropout, z = mu), which is what these modules compute.
"""
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


# ---------------------------------------------------------------- modules

def resnet18(c, k):
    m = torchvision.models.resnet18(num_classes=k)
    m.conv1 = nn.Conv2d(c, 64, 7, 2, 3, bias=False)
    return m


class CNN(nn.Module):
    """clad's "cnn" / "cnn_large": three conv-BN blocks, two pools, three linears."""

    def __init__(self, c, h, w, k, large):
        super().__init__()
        a, b, d = (8 * c, 16 * c, 32 * c) if large else (16, 32, 64)
        self.large = large
        self.conv1, self.bn1 = nn.Conv2d(c, a, 3, 1, 1), nn.BatchNorm2d(a)
        self.conv2, self.bn2 = nn.Conv2d(a, b, 3, 1, 1), nn.BatchNorm2d(b)
        self.conv3, self.bn3 = nn.Conv2d(b, d, 3, 1, 1), nn.BatchNorm2d(d)
        self.fc1, self.bn4 = nn.Linear(d * (h // 4) * (w // 4), 128), nn.BatchNorm1d(128)
        self.fc2, self.bn5 = nn.Linear(128, 64), nn.BatchNorm1d(64)
        self.fc3 = nn.Linear(64, k)

    def forward(self, x):
        act = F.elu if self.large else F.relu
        x = act(self.bn1(self.conv1(x)))
        x = F.max_pool2d(act(self.bn2(self.conv2(x))), 2)
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)  # ReLU in both variants
        x = F.relu(self.bn4(self.fc1(x.flatten(1))))
        x = F.relu(self.bn5(self.fc2(x)))
        return self.fc3(x)


class FC3(nn.Module):
    """clad's "fc3": three linear layers with no activation between them (as core/architectures.c)."""

    def __init__(self, c, h, w, k):
        super().__init__()
        d = c * h * w
        self.fc1, self.fc2, self.fc3 = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, k)

    def forward(self, x):
        return self.fc3(self.fc2(self.fc1(x.flatten(1))))


class LinearClf(nn.Module):
    def __init__(self, c, h, w, k):
        super().__init__()
        self.fc = nn.Linear(c * h * w, k)

    def forward(self, x):
        return self.fc(x.flatten(1))


class CvaeEncoder(nn.Module):
    """clad's "cvae" encoder without its input dropout; returns mu (the first h of fc2)."""

    def __init__(self, c, h, w, lat):
        super().__init__()
        self.lat = lat
        self.conv1 = nn.Conv2d(c, 4 * c, 3, 1, 1)
        self.conv2 = nn.Conv2d(4 * c, 8 * c, 3, 1, 1)
        self.conv3 = nn.Conv2d(8 * c, 16 * c, 3, 1, 1)
        self.fc1 = nn.Linear(16 * c * (h // 4) * (w // 4), 512)
        self.fc2 = nn.Linear(512, 2 * lat)

    def forward(self, x):
        x = F.max_pool2d(F.elu(self.conv1(x)), 2)
        x = F.max_pool2d(F.elu(self.conv2(x)), 2)
        x = F.elu(self.conv3(x))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))[:, :self.lat]


class CvaeDecoder(nn.Module):
    def __init__(self, c, h, w, lat):
        super().__init__()
        self.shape = (16 * c, h // 4, w // 4)
        self.fc1 = nn.Linear(lat, 512)
        self.fc2 = nn.Linear(512, 16 * c * (h // 4) * (w // 4))
        self.deconv1 = nn.ConvTranspose2d(16 * c, 8 * c, 4, 2, 1)
        self.deconv2 = nn.ConvTranspose2d(8 * c, 4 * c, 4, 2, 1)
        self.conv = nn.Conv2d(4 * c, c, 3, 1, 1)

    def forward(self, z):
        x = F.relu(self.fc2(F.relu(self.fc1(z)))).view(-1, *self.shape)
        x = F.elu(self.deconv2(F.elu(self.deconv1(x))))
        return torch.sigmoid(self.conv(x))


class CvaeLargeEncoder(nn.Module):
    def __init__(self, c, h, w, lat):
        super().__init__()
        self.lat = lat
        ch = [c, 16 * c, 16 * c, 32 * c, 32 * c, 64 * c, 64 * c]
        for i in range(6):
            setattr(self, "conv%d" % (i + 1), nn.Conv2d(ch[i], ch[i + 1], 3, 1, 1))
            setattr(self, "bn%d" % (i + 1), nn.BatchNorm2d(ch[i + 1]))
        self.fc1 = nn.Linear(64 * c * (h // 4) * (w // 4), 512)
        self.fc2 = nn.Linear(512, 2 * lat)

    def forward(self, x):
        for i in range(6):
            x = F.elu(getattr(self, "bn%d" % (i + 1))(getattr(self, "conv%d" % (i + 1))(x)))
            if i in (1, 3):
                x = F.max_pool2d(x, 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))[:, :self.lat]


class CvaeLargeDecoder(nn.Module):
    def __init__(self, c, h, w, lat):
        super().__init__()
        self.shape = (64 * c, h // 4, w // 4)
        self.fc1 = nn.Linear(lat, 512)
        self.fc2 = nn.Linear(512, 64 * c * (h // 4) * (w // 4))
        self.conv1, self.bn1 = nn.Conv2d(64 * c, 64 * c, 3, 1, 1), nn.BatchNorm2d(64 * c)
        self.deconv1, self.bn2 = nn.ConvTranspose2d(64 * c, 32 * c, 4, 2, 1), nn.BatchNorm2d(32 * c)
        self.conv2, self.bn3 = nn.Conv2d(32 * c, 32 * c, 3, 1, 1), nn.BatchNorm2d(32 * c)
        self.deconv2, self.bn4 = nn.ConvTranspose2d(32 * c, 16 * c, 4, 2, 1), nn.BatchNorm2d(16 * c)
        self.conv3, self.bn5 = nn.Conv2d(16 * c, 16 * c, 3, 1, 1), nn.BatchNorm2d(16 * c)
        self.conv4 = nn.Conv2d(16 * c, c, 3, 1, 1)

    def forward(self, z):
        x = F.relu(self.fc2(F.relu(self.fc1(z)))).view(-1, *self.shape)
        for conv, bn in ((self.conv1, self.bn1), (self.deconv1, self.bn2), (self.conv2, self.bn3),
                         (self.deconv2, self.bn4), (self.conv3, self.bn5)):
            x = F.elu(bn(conv(x)))
        return torch.sigmoid(self.conv4(x))


class LinearEncoder(nn.Module):
    """clad's "linear" autoencoder (DEC's MLP): d-500-500-2000-h."""

    def __init__(self, c, h, w, lat):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c * h * w, 500), nn.Linear(500, 500)
        self.fc3, self.fc4 = nn.Linear(500, 2000), nn.Linear(2000, lat)

    def forward(self, x):
        x = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.fc4(F.relu(self.fc3(x)))


class LinearDecoder(nn.Module):
    def __init__(self, c, h, w, lat):
        super().__init__()
        self.shape = (c, h, w)
        self.fc1, self.fc2 = nn.Linear(lat, 2000), nn.Linear(2000, 500)
        self.fc3, self.fc4 = nn.Linear(500, 500), nn.Linear(500, c * h * w)

    def forward(self, z):
        x = F.relu(self.fc2(F.relu(self.fc1(z))))
        return self.fc4(F.relu(self.fc3(x))).view(-1, *self.shape)


AUTOENCODERS = {"cvae": (CvaeEncoder, CvaeDecoder), "cvae_large": (CvaeLargeEncoder, CvaeLargeDecoder),
                "linear": (LinearEncoder, LinearDecoder)}


def classifier(arch, c, h, w, k):
    if arch == "resnet18":
        return resnet18(c, k)
    if arch in ("cnn", "cnn_large"):
        return CNN(c, h, w, k, arch == "cnn_large")
    if arch == "fc3":
        return FC3(c, h, w, k)
    return LinearClf(c, h, w, k)


# ---------------------------------------------------------------- helpers

def seed_for(name):
    # a stable seed per case (Python's hash() of a string changes between runs)
    torch.manual_seed(zlib.crc32(name.encode()))


def randomise_bn(m):
    """Non-trivial BatchNorm parameters and statistics, so that BN is really exercised."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(int(torch.randint(0, 100, ())))


def f32(t):
    t = t.detach()
    return t.clone() if t.dtype == torch.int64 else t.float().contiguous().clone()


def state(prefix, m):
    """Weights and buffers as float32 (counters stay int64) under prefix + state_dict name."""
    return {prefix + k: f32(v) for k, v in m.state_dict().items()}


def buffers(prefix, m):
    return {prefix + k: f32(v) for k, v in m.named_buffers()}


def grads(prefix, m):
    return {"grad." + prefix + k: f32(p.grad) for k, p in m.named_parameters()}


def two_steps(m, prefix, kind):
    """Parameters after two optimiser steps with the current gradients (no zero_grad).

    The gradients are rounded to float32 first: the C test feeds these same
    saved gradients (grad.*) to clad's optimiser, not clad's own, because
    Adam's update lr * g / (|g| + eps) is ill-conditioned where |g| is tiny
    (a gradient error of 1e-5 of the tensor's largest entry flips the update
    of an entry near zero by up to 2 lr; the bias of a layer followed by
    BatchNorm has an exactly zero gradient, so only rounding noise is left).
    """
    names, params = [], []
    for k, p in m.named_parameters():
        q = p.detach().clone().requires_grad_(True)
        q.grad = p.grad.detach().float().to(p.dtype)
        names.append(k)
        params.append(q)
    if kind == "adam":
        opt = torch.optim.Adam(params, lr=1e-3)
    else:
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    opt.step()
    opt.step()
    return {kind + "." + prefix + k: f32(q) for k, q in zip(names, params)}


def write(out, name, t, meta, index):
    st_io.save(os.path.join(out, name + ".safetensors"), t, {k: str(v) for k, v in meta.items()})
    index.append(name)
    print("  %-24s %3d tensors" % (name, len(t)))


# ---------------------------------------------------------------- cases

def classifier_case(out, index, name, arch, c, h, w, k, b, train, optim=False, odin=False):
    seed_for(name)
    m = classifier(arch, c, h, w, k)
    randomise_bn(m)
    t = state("model.", m)
    x32 = torch.randn(b, c, h, w)
    y = torch.randint(0, k, (b,))
    m = m.double().train(train)
    x = x32.double().requires_grad_(True)
    o = m(x)
    loss = F.cross_entropy(o, y)   # mean over the batch
    loss.backward()
    t.update(input=x32, labels=y, output=f32(o), loss=f32(loss).reshape(()))
    t.update(grads("model.", m))
    t["grad.input"] = f32(x.grad)
    if train:
        t.update({"after." + n: v for n, v in buffers("model.", m).items()})
    if optim:
        t.update(two_steps(m, "model.", "adam"))
        t.update(two_steps(m, "model.", "sgd"))
    meta = dict(kind="classifier", arch=arch, C=c, H=h, W=w, K=k, B=b, mode="train" if train else "eval")
    if odin:
        assert not train
        # ODIN (eval mode): the gradient of CE(f(x)/T, argmax f(x)) wrt x with
        # reduction "sum", so each image's gradient is that of its own loss
        # (as clad_input_gradient gives it); then x' = x - eps * sign(grad),
        # conf = max softmax(f(x')/T).  "odin": T = 1000, eps = 0.01 (ODIN's
        # setting; conf is then within 1e-3 of 1/K, a weak check of x');
        # "odin_t1": T = 1, eps = 0.01, where conf depends visibly on x'.
        for key, T, eps in (("odin", 1000.0, 0.01), ("odin_t1", 1.0, 0.01)):
            xo = x32.double().requires_grad_(True)
            lo = m(xo)
            F.cross_entropy(lo / T, lo.argmax(1), reduction="sum").backward()
            xp = xo.detach() - eps * torch.sign(xo.grad)
            with torch.no_grad():
                conf = torch.softmax(m(xp) / T, 1).max(1).values
            t[key + ".grad_input"] = f32(xo.grad)
            t[key + ".conf"] = f32(conf)
            meta[key + ".T"], meta[key + ".eps"] = T, eps
    write(out, name, t, meta, index)


def autoencoder_case(out, index, name, arch, c, h, w, lat, b, train):
    seed_for(name)
    enc_cls, dec_cls = AUTOENCODERS[arch]
    e, d = enc_cls(c, h, w, lat), dec_cls(c, h, w, lat)
    randomise_bn(e)
    randomise_bn(d)
    t = state("encoder.", e)
    t.update(state("decoder.", d))
    x32 = torch.rand(b, c, h, w)
    e = e.double().train(train)
    d = d.double().train(train)
    x = x32.double().requires_grad_(True)
    z = e(x)
    z.retain_grad()
    r = d(z)
    loss = F.mse_loss(r, x.detach())   # mean; the target is a constant
    loss.backward()
    t.update(input=x32, latent=f32(z), output=f32(r), loss=f32(loss).reshape(()))
    t.update(grads("encoder.", e))
    t.update(grads("decoder.", d))
    t["grad.input"] = f32(x.grad)
    t["grad.latent"] = f32(z.grad)
    if train:
        t.update({"after." + n: v for n, v in buffers("encoder.", e).items()})
        t.update({"after." + n: v for n, v in buffers("decoder.", d).items()})
    meta = dict(kind="autoencoder", arch=arch, C=c, H=h, W=w, K=lat, B=b, mode="train" if train else "eval")
    write(out, name, t, meta, index)


def dec_case(out, index, name, b, k, dim, alpha):
    """DEC: Student-t soft assignment q, target p (a constant), loss = KL(P||Q) summed / B."""
    seed_for(name)
    z32, c32 = torch.randn(b, dim), torch.randn(k, dim)
    z, mu = z32.double().requires_grad_(True), c32.double().requires_grad_(True)
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(2)
    q = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
    q = q / q.sum(1, keepdim=True)
    p = q ** 2 / q.sum(0)
    p = (p / p.sum(1, keepdim=True)).detach()
    loss = (p * (p.log() - q.log())).sum() / b
    loss.backward()
    t = {"dec.z": z32, "dec.centers": c32, "dec.q": f32(q), "dec.p": f32(p),
         "loss": f32(loss).reshape(()), "grad.z": f32(z.grad), "grad.centers": f32(mu.grad)}
    write(out, name, t, dict(kind="dec", B=b, K=k, D=dim, alpha=alpha), index)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    index = []
    C = classifier_case
    C(out, index, "resnet18_1x28_train", "resnet18", 1, 28, 28, 10, 4, True)
    C(out, index, "resnet18_1x28_eval", "resnet18", 1, 28, 28, 10, 4, False, odin=True)
    C(out, index, "resnet18_1x28_eval_b1", "resnet18", 1, 28, 28, 10, 1, False, odin=True)
    C(out, index, "resnet18_3x32_train", "resnet18", 3, 32, 32, 10, 4, True)
    C(out, index, "resnet18_3x32_eval", "resnet18", 3, 32, 32, 10, 4, False)
    C(out, index, "cnn_1x28_train", "cnn", 1, 28, 28, 10, 4, True, optim=True)
    C(out, index, "cnn_1x28_eval", "cnn", 1, 28, 28, 10, 4, False)
    C(out, index, "cnn_large_3x32_train", "cnn_large", 3, 32, 32, 10, 4, True)
    C(out, index, "cnn_large_3x32_eval", "cnn_large", 3, 32, 32, 10, 4, False)
    # batch 20: clad's conv2 (24 -> 48 channels at 32x32) runs in chunks of 15 images
    C(out, index, "cnn_large_3x32_train_b20", "cnn_large", 3, 32, 32, 10, 20, True)
    C(out, index, "fc3_1x12_eval", "fc3", 1, 12, 12, 5, 4, False)
    C(out, index, "linear_3x8_eval", "linear", 3, 8, 8, 4, 4, False)
    A = autoencoder_case
    A(out, index, "cvae_1x28_eval", "cvae", 1, 28, 28, 10, 4, False)
    A(out, index, "cvae_1x28_train", "cvae", 1, 28, 28, 10, 4, True)
    A(out, index, "cvae_large_3x32_train", "cvae_large", 3, 32, 32, 16, 4, True)
    A(out, index, "cvae_large_3x32_eval", "cvae_large", 3, 32, 32, 16, 4, False)
    A(out, index, "linear_ae_1x28_eval", "linear", 1, 28, 28, 10, 4, False)
    dec_case(out, index, "dec_kl_alpha1", 6, 3, 5, 1.0)
    dec_case(out, index, "dec_kl_alpha2", 5, 4, 3, 2.0)
    with open(os.path.join(out, "index.txt"), "w") as f:
        f.write("".join(n + "\n" for n in index))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_parity.py OUTDIR")
    main(sys.argv[1])
