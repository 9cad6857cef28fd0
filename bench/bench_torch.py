"""bench/bench_torch.py: PyTorch's side of `make bench` (the anchor).

usage: bench_torch.py make-model PATH   write a seeded ResNet-18 (1x28x28, K=10) and 64 inputs
       bench_torch.py time PATH         time the same work as bench_core, one thread
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "parity"))
import torch  # noqa: E402
import torchvision  # noqa: E402
import st_io  # noqa: E402


def resnet18(channels=1, classes=10):
    m = torchvision.models.resnet18(num_classes=classes)
    m.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    torch.nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
    return m


def make_model(path):
    torch.manual_seed(7)
    m = resnet18()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    tensors = {"model." + k: v.contiguous() for k, v in m.state_dict().items()}
    tensors["input"] = torch.rand(64, 1, 28, 28)
    st_io.save(path, tensors)


def best_ms_per_image(fn, batch, min_s):
    fn()
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t >= min_s:
                break
        best = min(best, t / n)
    return best * 1e3 / batch


def time_model(path):
    torch.set_num_threads(1)
    tensors, _ = st_io.load(path)
    m = resnet18()
    m.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    m.eval()
    x_all = tensors["input"]
    T, eps = 1000.0, 0.0161

    def forward(x):
        with torch.no_grad():
            m(x)

    def odin(x):
        x = x.clone().requires_grad_(True)
        out = m(x)
        loss = torch.nn.functional.cross_entropy(out / T, out.argmax(1), reduction="sum")
        loss.backward()
        xp = x.detach() - eps * torch.sign(x.grad)
        with torch.no_grad():
            torch.softmax(m(xp) / T, 1).max(1)

    print("torch", torch.__version__, "threads", torch.get_num_threads(),
          "OPENBLAS_CORETYPE", os.environ.get("OPENBLAS_CORETYPE", "-"))
    for b in (1, 64):
        x = x_all[:b].contiguous()
        print("forward_b%d_ms %.4f" % (b, best_ms_per_image(lambda: forward(x), b, 0.5 if b == 1 else 1.0)))
        print("odin_b%d_ms %.4f" % (b, best_ms_per_image(lambda: odin(x), b, 0.5 if b == 1 else 1.0)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make-model", "time"):
        sys.exit(__doc__)
    (make_model if sys.argv[1] == "make-model" else time_model)(sys.argv[2])
