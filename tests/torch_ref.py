#!/usr/bin/env python3
"""PyTorch reference for tests/test_torch.c and tests/test_norm_torch.c.

usage: torch_ref.py IN.h5 OUT.h5 [IN.h5 OUT.h5 ...]

Each IN.h5 describes one normscope network and one batch:
  attributes of /: mode ("train" or "eval"), dtype ("float32" or "float64"),
      names (the layer names in forward order, comma separated),
      group (BN samples per group, 0: whole batch), eps, momentum, and
      optionally gn_groups, psbn_alpha, frn_eps (the normalization options)
  /x (n, c, h, w), /y (n,) int32 labels
  /layers/<name>: attributes kind, src, src2, in_shape (c, h, w), k, stride,
      pad, alpha (lrelu), p (dropout), affine (bn), method (layers in
      normalization slots: the --norm method, default "bn"); datasets
      weight, bias, tau, eps, running_mean, running_var, num_batches_tracked
      as the layer has them
The network is rebuilt layer by layer from torch.nn modules, run forward in
the given mode, and the mean cross-entropy is backpropagated.  OUT.h5 gets
/logits, /loss, /grad/<name>/<tensor> for every parameter and
/state/<name>/<tensor> for every BN buffer after the pass, all float64.
Several pairs share one interpreter start (importing torch takes seconds).

The normalization layers (src/norm) are rebuilt as:
  bn    nn.BatchNorm1d/2d; method psbn adds psbn_alpha to its output
        (FixMatch-pytorch's PSBatchNorm2d); other BN variants are refused
  gn    nn.GroupNorm(G, C), G the largest divisor of C not above gn_groups
  ln    nn.GroupNorm(1, C) on maps, nn.LayerNorm(C) on dense activations
  in    nn.GroupNorm(C, C), i.e. nn.InstanceNorm2d(C, affine=True)
  frn   FRN below: FRN + TLU, learned eps = |eps| + frn_eps when the layer
        has an eps parameter
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


class FRN(nn.Module):
    """Filter response normalization + TLU (Singh & Krishnan 2020)."""

    def __init__(self, c, eps0, learned):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.tau = nn.Parameter(torch.zeros(c))
        self.eps = nn.Parameter(torch.full((1,), 1e-4)) if learned else None
        self.eps0 = eps0

    def forward(self, x):
        c = x.shape[1]
        nu2 = x.pow(2).mean((2, 3), keepdim=True)
        eps = self.eps.abs() + self.eps0 if self.eps is not None else self.eps0
        y = self.weight.view(1, c, 1, 1) * x * torch.rsqrt(nu2 + eps) \
            + self.bias.view(1, c, 1, 1)
        return torch.max(y, self.tau.view(1, c, 1, 1))


def largest_divisor(c, g):
    """The largest divisor of c not above g."""
    return max(d for d in range(1, min(c, g) + 1) if c % d == 0)


def build(kind, a, g, dtype):
    """The module of one layer (None for layers written as functions)."""
    c, h, w = (int(v) for v in a["in_shape"])
    if kind == "dense":
        wt = g["weight"]
        m = nn.Linear(wt.shape[1], wt.shape[0])
    elif kind == "conv":
        wt = g["weight"]
        m = nn.Conv2d(wt.shape[1], wt.shape[0], int(a["k"]), stride=int(a["stride"]),
                      padding=int(a["pad"]))
    elif kind == "maxpool":
        m = nn.MaxPool2d(int(a["k"]), stride=int(a["stride"]))
    elif kind == "avgpool":
        m = nn.AvgPool2d(int(a["k"]), stride=int(a["stride"]))
    elif kind == "relu":
        m = nn.ReLU()
    elif kind == "lrelu":
        m = nn.LeakyReLU(float(a["alpha"]))
    elif kind == "tanh":
        m = nn.Tanh()
    elif kind == "dropout":
        m = nn.Dropout(float(a["p"]))
    elif kind == "bn":
        method = text(a.get("method", "bn"))
        if method not in ("bn", "psbn"):
            raise SystemExit("torch_ref.py: no reference for BN method '%s'" % method)
        # dense activations are (N, C); convolutional maps (N, C, H, W)
        cls = nn.BatchNorm1d if h * w == 1 else nn.BatchNorm2d
        m = cls(c, eps=float(a["eps"]), momentum=float(a["momentum"]),
                affine=bool(int(a["affine"])))
    elif kind in ("gn", "ln", "in"):
        method = text(a.get("method", kind))
        if method != kind:
            raise SystemExit("torch_ref.py: no reference for method '%s'" % method)
        eps = float(a["eps"])
        if kind == "ln" and h * w == 1:
            m = nn.LayerNorm(c, eps=eps)
        else:
            groups = {"gn": largest_divisor(c, int(a["gn_groups"])), "ln": 1, "in": c}[kind]
            m = nn.GroupNorm(groups, c, eps=eps)
    elif kind == "frn":
        m = FRN(c, float(a["frn_eps"]), "eps" in g)
    elif kind in ("erf", "id", "gap", "flatten", "add"):
        return None
    else:
        raise SystemExit("torch_ref.py: unknown layer kind '%s'" % kind)
    m = m.to(dtype)
    with torch.no_grad():
        for tname, t in list(m.named_parameters()) + list(m.named_buffers()):
            if tname not in g:
                raise SystemExit("torch_ref.py: layer lacks tensor '%s'" % tname)
            v = torch.from_numpy(np.asarray(g[tname], dtype=np.float64))
            t.copy_(v.reshape(t.shape).to(t.dtype))
    return m


def run(inpath, outpath):
    """One network: IN.h5 to OUT.h5."""
    with h5py.File(inpath, "r") as f:
        dtype = {"float32": torch.float32, "float64": torch.float64}[text(f.attrs["dtype"])]
        train = text(f.attrs["mode"]) == "train"
        group = int(f.attrs["group"])
        names = text(f.attrs["names"]).split(",")
        x = torch.from_numpy(np.asarray(f["x"], dtype=np.float64)).to(dtype)
        y = torch.from_numpy(np.asarray(f["y"], dtype=np.int64))
        layers = []
        for name in names:
            g = f["layers"][name]
            a = dict(g.attrs)
            for key in ("eps", "momentum", "gn_groups", "psbn_alpha", "frn_eps"):
                if key in f.attrs:
                    a[key] = f.attrs[key]
            kind = text(a["kind"])
            layers.append((name, kind, a, build(kind, a, g, dtype)))

    n = x.shape[0]
    acts = []
    for name, kind, a, m in layers:
        src, src2 = int(a["src"]), int(a["src2"])
        inp = x if src < 0 else acts[src]
        c, h, w = (int(v) for v in a["in_shape"])
        if m is not None:
            m.train(train)
        if kind == "dense":
            out = m(inp.reshape(n, -1))
        elif kind in ("conv", "maxpool", "avgpool"):
            out = m(inp.reshape(n, c, h, w))
        elif kind == "gap":
            out = F.adaptive_avg_pool2d(inp.reshape(n, c, h, w), 1).flatten(1)
        elif kind == "flatten":
            out = inp.reshape(n, -1)
        elif kind == "erf":
            out = torch.erf(inp)
        elif kind == "id":
            out = inp
        elif kind == "add":
            out = inp + acts[src2]
        elif kind == "bn":
            inp = inp.reshape(n, c) if h * w == 1 else inp.reshape(n, c, h, w)
            if train and group and group < n:
                # ghost batch norm: PyTorch's BN applied chunk by chunk
                out = torch.cat([m(chunk) for chunk in torch.split(inp, group)])
            else:
                out = m(inp)
            if text(a.get("method", "bn")) == "psbn":
                out = out + float(a["psbn_alpha"])
        elif kind in ("gn", "in") or (kind == "ln" and h * w > 1):
            out = m(inp.reshape(n, c, h, w))
        elif kind == "ln":
            out = m(inp.reshape(n, c))
        elif kind == "frn":
            out = m(inp.reshape(n, c, h, w))
        else:
            out = m(inp)
        acts.append(out)

    logits = acts[-1].reshape(n, -1)
    loss = F.cross_entropy(logits, y)
    loss.backward()

    with h5py.File(outpath, "w") as f:
        f["logits"] = logits.detach().double().numpy()
        f["loss"] = np.array([loss.item()], dtype=np.float64)
        for name, kind, a, m in layers:
            if m is None:
                continue
            for tname, t in m.named_parameters():
                f["grad/%s/%s" % (name, tname)] = t.grad.detach().double().numpy().ravel()
            for tname, t in m.named_buffers():
                f["state/%s/%s" % (name, tname)] = t.detach().double().numpy().ravel()


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        raise SystemExit("usage: torch_ref.py IN.h5 OUT.h5 [IN.h5 OUT.h5 ...]")
    torch.set_num_threads(1)
    for i in range(0, len(args), 2):
        run(args[i], args[i + 1])


if __name__ == "__main__":
    main()
