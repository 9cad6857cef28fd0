"""tests/parity/gen_parity.py OUTDIR: PyTorch reference data for tests/test_parity.c.

Each case is one safetensors file: the weights (state_dict names), the
input, PyTorch's outputs, loss, every parameter gradient and the input
gradient (and, in training mode, the updated running statistics).  The
modules below use the tensor names clad's core/models.c gives; ResNet-18 is
torchvision's own.  Run with /usr/bin/python3 (Debian's python3-torch).
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import st_io  # noqa: E402


def resnet18(c, k):
    m = torchvision.models.resnet18(num_classes=k)
    m.conv1 = nn.Conv2d(c, 64, 7, 2, 3, bias=False)
    return m


class CNN(nn.Module):
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
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)
        x = F.relu(self.bn4(self.fc1(x.flatten(1))))
        x = F.relu(self.bn5(self.fc2(x)))
        return self.fc3(x)


class CvaeEncoder(nn.Module):
    def __init__(self, c, h, w, lat):
        super().__init__()
        self.lat = lat
        self.conv1 = nn.Conv2d(c, 4 * c, 3, 1, 1)
        self.conv2 = nn.Conv2d(4 * c, 8 * c, 3, 1, 1)
        self.conv3 = nn.Conv2d(8 * c, 16 * c, 3, 1, 1)
        self.fc1 = nn.Linear(16 * c * (h // 4) * (w // 4), 512)
        self.fc2 = nn.Linear(512, 2 * lat)

    def forward(self, x):  # eval mode: no dropout, z = mu
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


def randomise_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)


def state(prefix, m):
    return {prefix + k: v.detach().clone() for k, v in m.state_dict().items()}


def grads(prefix, m):
    return {"grad." + prefix + k: p.grad.detach().clone() for k, p in m.named_parameters()}


def classifier_case(out, name, arch, c, h, w, k, b, train, optim=False):
    torch.manual_seed(hash(name) % 1000)
    m = resnet18(c, k) if arch == "resnet18" else CNN(c, h, w, k, arch == "cnn_large")
    randomise_bn(m)
    t = state("model.", m)
    x = torch.randn(b, c, h, w, requires_grad=True)
    y = torch.randint(0, k, (b,))
    m.train(train)
    o = m(x)
    loss = F.cross_entropy(o, y)
    loss.backward()
    t.update(input=x.detach(), labels=y, output=o.detach(), loss=loss.detach().reshape(()))
    t.update(grads("model.", m))
    t["grad.input"] = x.grad.detach()
    if train:
        t.update({"after." + k2: v for k2, v in state("model.", m).items()})
    if optim:
        for kind, opt in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
            mm = CNN(c, h, w, k, False)
            mm.load_state_dict({k2[6:]: v for k2, v in t.items() if k2.startswith("model.")})
            for p, p0 in zip(mm.parameters(), m.parameters()):
                p.grad = p0.grad.clone()
            o2 = opt(mm.parameters(), lr=1e-3) if kind == "adam" else opt(mm.parameters(), lr=0.01, momentum=0.9)
            o2.step()
            o2.step()
            t.update({kind + "." + k2: v.detach().clone() for k2, v in mm.named_parameters()})
    meta = dict(kind="classifier", arch=arch, C=c, H=h, W=w, K=k, B=b, mode="train" if train else "eval")
    if arch == "resnet18" and not train:
        # ODIN: each image's own CE(f(x)/T, argmax) gradient (reduction "sum")
        T, eps = 1000.0, 0.01
        xo = x.detach().clone().requires_grad_(True)
        lo = m(xo)
        F.cross_entropy(lo / T, lo.argmax(1), reduction="sum").backward()
        xp = xo.detach() - eps * torch.sign(xo.grad)
        with torch.no_grad():
            conf = torch.softmax(m(xp) / T, 1).max(1).values
        t["odin.grad_input"] = xo.grad.detach()
        t["odin.conf"] = conf
        meta.update(T=T, eps=eps)
    st_io.save(os.path.join(out, name + ".safetensors"), t, meta)


def autoencoder_case(out, name, arch, c, h, w, lat, b, train):
    torch.manual_seed(hash(name) % 1000)
    enc_cls, dec_cls = (CvaeEncoder, CvaeDecoder) if arch == "cvae" else (CvaeLargeEncoder, CvaeLargeDecoder)
    e, d = enc_cls(c, h, w, lat), dec_cls(c, h, w, lat)
    randomise_bn(e)
    randomise_bn(d)
    t = state("encoder.", e)
    t.update(state("decoder.", d))
    x = torch.rand(b, c, h, w, requires_grad=True)
    e.train(train)
    d.train(train)
    z = e(x)
    z.retain_grad()
    r = d(z)
    loss = F.mse_loss(r, x.detach())
    loss.backward()
    t.update(input=x.detach(), latent=z.detach(), output=r.detach(), loss=loss.detach().reshape(()))
    t.update(grads("encoder.", e))
    t.update(grads("decoder.", d))
    t["grad.input"] = x.grad.detach()
    t["grad.latent"] = z.grad.detach()
    if train:
        t.update({"after." + k2: v for k2, v in state("encoder.", e).items()})
        t.update({"after." + k2: v for k2, v in state("decoder.", d).items()})
    meta = dict(kind="autoencoder", arch=arch, C=c, H=h, W=w, K=lat, B=b, mode="train" if train else "eval")
    st_io.save(os.path.join(out, name + ".safetensors"), t, meta)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    classifier_case(out, "resnet18_1x28_eval", "resnet18", 1, 28, 28, 10, 4, False)
    classifier_case(out, "resnet18_1x28_eval_b1", "resnet18", 1, 28, 28, 10, 1, False)
    classifier_case(out, "resnet18_1x28_train", "resnet18", 1, 28, 28, 10, 4, True)
    classifier_case(out, "resnet18_3x32_eval", "resnet18", 3, 32, 32, 10, 4, False)
    classifier_case(out, "resnet18_3x32_train", "resnet18", 3, 32, 32, 10, 4, True)
    classifier_case(out, "cnn_1x28_train", "cnn", 1, 28, 28, 10, 4, True, optim=True)
    classifier_case(out, "cnn_1x28_eval", "cnn", 1, 28, 28, 10, 4, False)
    classifier_case(out, "cnn_large_3x32_train", "cnn_large", 3, 32, 32, 10, 4, True)
    classifier_case(out, "cnn_large_3x32_eval", "cnn_large", 3, 32, 32, 10, 4, False)
    autoencoder_case(out, "cvae_1x28_eval", "cvae", 1, 28, 28, 10, 4, False)
    autoencoder_case(out, "cvae_large_3x32_train", "cvae_large", 3, 32, 32, 16, 4, True)
    autoencoder_case(out, "cvae_large_3x32_eval", "cvae_large", 3, 32, 32, 16, 4, False)


if __name__ == "__main__":
    main(sys.argv[1])
