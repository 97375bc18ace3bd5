"""PyTorch peer models and data loading for normscope comparisons.

The architectures mirror the ones normscope builds:

  mlp: Flatten, Linear(784,512), [BatchNorm1d(512)], ReLU,
       Linear(512,512), [BatchNorm1d(512)], ReLU, Linear(512,10)
  cnn: Conv2d(1,32,3,p=1), [BN2d], ReLU, Conv2d(32,64,3,s=2,p=1), [BN2d], ReLU,
       Conv2d(64,128,3,s=2,p=1), [BN2d], ReLU, AdaptiveAvgPool2d(1), Flatten,
       Linear(128,10)
  resnet8: Conv2d(1,16,3,p=1), [norm], ReLU, then three residual blocks of
       widths 16, 32, 64 (stride 1, 2, 2), AdaptiveAvgPool2d(1), Flatten,
       Linear(64,10).  A block: branch Conv2d(3,s,p=1), [norm], ReLU,
       Conv2d(3,p=1), [norm]; shortcut identity when the shapes match, else
       Conv2d(1,s,p=0), [norm]; output ReLU(branch + shortcut)
       (normscope's res:C[/S], src/nn/net.c add_resblock).

Conv/Linear keep bias=True (also before a norm), PyTorch default init,
BN eps 1e-5 and momentum 0.1.  norm is 'bn' or 'none' for every arch;
cnn and resnet8 also take 'gn', 'ln', 'in' and 'frn' (_norm2d).

Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn

ARCHS = ("mlp", "cnn", "resnet8")
NORMS = ("bn", "none", "gn", "ln", "in", "frn")  # gn, ln, in, frn: cnn and resnet8 only

DATA_DIR = os.environ.get("NS_DATA_DIR", "/usr/share/datasets/fashion-mnist")

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def _check(arch, norm):
    """Refuses an unknown arch or norm; the mlp takes bn or none only, cnn and
    resnet8 take every norm in NORMS."""
    if arch not in ARCHS:
        raise ValueError("unknown arch %r (expected one of %s)" % (arch, ", ".join(ARCHS)))
    if norm not in NORMS:
        raise ValueError("unknown norm %r (expected one of %s)" % (norm, ", ".join(NORMS)))
    if arch == "mlp" and norm not in ("bn", "none"):
        raise ValueError("the mlp peer has bn or none only")


class FRN(nn.Module):
    """Filter response normalization + TLU (Singh & Krishnan 2020), eps 1e-6,
    as normscope's frn on maps larger than 1x1."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        y = self.weight * x * torch.rsqrt(nu2 + self.eps) + self.bias
        return torch.max(y, self.tau)


def _act(norm):
    """The activation after a norm slot: FRN's TLU takes the place of the
    ReLU (normscope's default; its --frn-relu keeps it)."""
    return [] if norm == "frn" else [nn.ReLU()]


def _norm2d(norm, c):
    """normscope's conv norm layers: gn takes 32 groups (or fewer, dividing C)."""
    if norm == "bn":
        return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)
    if norm == "gn":
        return nn.GroupNorm(max(g for g in range(1, 33) if c % g == 0), c, eps=BN_EPS)
    if norm == "ln":
        return nn.GroupNorm(1, c, eps=BN_EPS)
    if norm == "in":
        return nn.GroupNorm(c, c, eps=BN_EPS)
    if norm == "frn":
        return FRN(c)
    return None


def build_mlp(norm="bn"):
    _check("mlp", norm)
    bn = norm == "bn"
    layers = [nn.Flatten(), nn.Linear(784, 512)]
    if bn:
        layers.append(nn.BatchNorm1d(512, eps=BN_EPS, momentum=BN_MOMENTUM))
    layers += [nn.ReLU(), nn.Linear(512, 512)]
    if bn:
        layers.append(nn.BatchNorm1d(512, eps=BN_EPS, momentum=BN_MOMENTUM))
    layers += [nn.ReLU(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def build_cnn(norm="bn"):
    _check("cnn", norm)
    layers = []
    for cin, cout, stride in ((1, 32, 1), (32, 64, 2), (64, 128, 2)):
        layers.append(nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
        if norm != "none":
            layers.append(_norm2d(norm, cout))
        layers += _act(norm)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """normscope's residual block res:C[/S]: ReLU(branch(x) + shortcut(x)) with
    branch conv3x3(s), norm, ReLU (none after FRN), conv3x3, norm and shortcut the identity
    when the shapes match, else conv1x1(s, p=0), norm.  Empty norm slots
    (norm 'none') are left out."""

    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1)]
        if norm != "none":
            layers.append(_norm2d(norm, cout))
        layers += _act(norm) + [nn.Conv2d(cout, cout, 3, stride=1, padding=1)]
        if norm != "none":
            layers.append(_norm2d(norm, cout))
        self.branch = nn.Sequential(*layers)
        self.shortcut = nn.Identity()
        if cin != cout or stride != 1:
            layers = [nn.Conv2d(cin, cout, 1, stride=stride, padding=0)]
            if norm != "none":
                layers.append(_norm2d(norm, cout))
            self.shortcut = nn.Sequential(*layers)

    def forward(self, x):
        return torch.relu(self.branch(x) + self.shortcut(x))


def build_resnet8(norm="bn"):
    _check("resnet8", norm)
    layers = [nn.Conv2d(1, 16, 3, stride=1, padding=1)]
    if norm != "none":
        layers.append(_norm2d(norm, 16))
    layers += _act(norm)
    for cin, cout, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
        layers.append(ResBlock(cin, cout, stride, norm))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def build_model(arch, norm="bn"):
    """Returns a new nn.Sequential for arch ('mlp'|'cnn'|'resnet8') and norm
    (one of NORMS; the mlp takes 'bn' or 'none' only)."""
    _check(arch, norm)
    if arch == "mlp":
        return build_mlp(norm)
    return build_cnn(norm) if arch == "cnn" else build_resnet8(norm)


def read_idx(path):
    """Reads an IDX file (gzip or plain, detected by magic) into a numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError("%s: not an IDX file" % path)
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
              0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError("%s: unsupported IDX type 0x%02x" % (path, raw[2]))
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(dtypes[raw[2]])
    off = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 1
    if len(raw) < off + count * dtype.itemsize:
        raise ValueError("%s: truncated IDX file" % path)
    return np.frombuffer(raw, dtype=dtype, count=count, offset=off).reshape(dims)


def _find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s: %s[.gz] not found" % (data_dir, stem))


def load_split(split, data_dir=DATA_DIR):
    """Returns (x float32 (N,1,28,28) in [0,1], y int64 (N,)) for 'train' or 't10k'."""
    xi = read_idx(_find(data_dir, split + "-images-idx3-ubyte"))
    yi = read_idx(_find(data_dir, split + "-labels-idx1-ubyte"))
    if xi.shape[0] != yi.shape[0]:
        raise ValueError("%s: %d images but %d labels" % (split, xi.shape[0], yi.shape[0]))
    x = torch.from_numpy(xi.astype(np.float32) / np.float32(255.0))
    x = x.reshape(xi.shape[0], 1, xi.shape[1], xi.shape[2])
    y = torch.from_numpy(yi.astype(np.int64))
    return x, y


def channel_stats(x):
    """Per-channel mean and population std over (N, H, W), accumulated in double
    (as ns_data_channel_stats).  Returns two lists of floats."""
    xd = x.double()
    dims = [0] + list(range(2, x.dim()))
    mean = xd.mean(dim=dims)
    std = xd.var(dim=dims, unbiased=False).sqrt()
    return mean.tolist(), std.tolist()


def standardize(x, mean, std):
    """(x - mean[c]) / std[c] per channel, in float32, returned as a new tensor."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    m = torch.tensor(mean, dtype=torch.float64).reshape(shape)
    s = torch.tensor(std, dtype=torch.float64).reshape(shape)
    return ((x.double() - m) / s).float()


def load_fashion_mnist(data_dir=DATA_DIR, standardise=True):
    """Loads Fashion-MNIST as normscope does.

    Returns (x_train, y_train, x_test, y_test, stats): x float32 (N,1,28,28)
    scaled to [0,1] and, if standardise, standardised with the single-channel
    mean and population std of the training set (applied to both splits);
    y int64; stats = {'mean': [m], 'std': [s]}.
    """
    xtr, ytr = load_split("train", data_dir)
    xte, yte = load_split("t10k", data_dir)
    mean, std = channel_stats(xtr)
    if standardise:
        xtr = standardize(xtr, mean, std)
        xte = standardize(xte, mean, std)
    return xtr, ytr, xte, yte, {"mean": mean, "std": std}


if __name__ == "__main__":
    xtr, ytr, xte, yte, st = load_fashion_mnist()
    print("train", tuple(xtr.shape), "test", tuple(xte.shape),
          "mean %.6f std %.6f" % (st["mean"][0], st["std"][0]))
    for a in ARCHS:
        for n in NORMS if a != "mlp" else ("bn", "none"):
            m = build_model(a, n)
            print(a, n, sum(p.numel() for p in m.parameters()), "parameters")
