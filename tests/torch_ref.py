#!/usr/bin/env python3
"""PyTorch reference for tests/test_torch.c, tests/test_norm_torch.c and
tests/test_norm_torch2.c.

usage: torch_ref.py IN.h5 OUT.h5 [IN.h5 OUT.h5 ...]

Each IN.h5 describes one normscope network and one batch:
  attributes of /: mode ("train" or "eval"), dtype ("float32" or "float64"),
      names (the layer names in forward order, comma separated),
      group (BN samples per group, 0: whole batch), eps, momentum, and
      optionally gn_groups, psbn_alpha, frn_eps, norm (the --norm method),
      wm_all, brn_warmup, brn_ramp, bkn_p, bkn_predict ("group", the
      default, or "last"), bkn_grad (1: gradient through BKN's prediction),
      mabn_buffer, mabn_warmup,
      pn_warmup, agc (the normalization options), step (the optimiser step
      of the forward, 0 if absent), and for training runs train_steps, lr,
      sgd_momentum
  /x (n, c, h, w), /y (n,) int32 labels
  /batches/<k>/x, /batches/<k>/y: the batch of training step k >= 1 (step 0
      uses /x and /y)
  /bkn_noise/<name> (predictions x samples, inputs): the N(0, 1) draws of
      a BKN layer's pseudo-inputs, prediction by prediction (one per group,
      or one for the batch with bkn_predict "last")
  /layers/<name>: attributes kind, src, src2, in_shape (c, h, w), k, stride,
      pad, alpha (lrelu), p (dropout), affine (bn), method (layers in
      normalization slots: the --norm method, default "bn"; "lastbn" for
      MimicNorm's BN on the logits), wrule and weight_mean (dense and conv:
      the weight rule normscope applies); datasets weight, bias, gain, tau,
      eps, running_mean, running_var, num_batches_tracked, ... as the layer
      has them
The network is rebuilt layer by layer from torch.nn modules and the modules
of norm_ref.py.  Without train_steps it runs forward in the given mode and
backpropagates the mean cross-entropy; OUT.h5 gets /logits, /loss,
/grad/<name>/<tensor> for every parameter and /state/<name>/<tensor> for
every buffer after the pass.  With train_steps = K it takes K steps of
torch.optim.SGD (lr, sgd_momentum) on the batches, each step: train-mode
forward, cross-entropy backward, adaptive gradient clipping (method nf),
the optimiser step, MimicNorm's weight-mean projection (methods mimic, wm);
OUT.h5 gets /losses (K), /logits of the last forward,
/param/<name>/<tensor> and /state/<name>/<tensor> after the last step.
Either way /diag/<name>/... holds what a method decided in the last
forward (BRN's r, d, rmax, dmax; BKN's mixed flag per group; MABN's r).
All outputs are float64.  Several pairs share one interpreter start
(importing torch takes seconds).

The layers of src/norm are rebuilt as:
  bn    nn.BatchNorm1d/2d; method psbn adds psbn_alpha to its output
        (FixMatch-pytorch's PSBatchNorm2d); cenconv, lastbn (affine per the
        layer) are plain BN; brn is norm_ref.BatchRenorm; ubn is refused
  gn    nn.GroupNorm(G, C), G the largest divisor of C not above gn_groups
        (also with method ws)
  ln    nn.GroupNorm(1, C) on maps, nn.LayerNorm(C) on dense activations
  in    nn.GroupNorm(C, C), i.e. nn.InstanceNorm2d(C, affine=True)
  frn   FRN below: FRN + TLU, learned eps = |eps| + frn_eps when the layer
        has an eps parameter
  bkn, mabn, pn   norm_ref.BKN, MABN, PowerNorm
  scale           norm_ref.Scale (MimicNorm's residual scalar)
  dense/conv with a weight rule   norm_ref.ReparamLinear/ReparamConv2d;
        which layers carry which rule is derived here from the method and
        must agree with the rule normscope reports for each layer
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import norm_ref  # noqa: E402


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


NORM_KINDS = ("bn", "gn", "ln", "in", "frn", "bkn", "mabn", "pn")


def build(kind, a, g, dtype, ctx, rule, gamma):
    """The module of one layer (None for layers written as functions)."""
    c, h, w = (int(v) for v in a["in_shape"])
    if kind == "dense":
        wt = g["weight"]
        if rule in ("center", "standardize", "scaled"):
            m = norm_ref.ReparamLinear(wt.shape[1], wt.shape[0], rule, gamma)
        else:
            m = nn.Linear(wt.shape[1], wt.shape[0])
    elif kind == "conv":
        wt = g["weight"]
        if rule in ("center", "standardize", "scaled"):
            m = norm_ref.ReparamConv2d(wt.shape[1], wt.shape[0], int(a["k"]), int(a["stride"]),
                                       int(a["pad"]), rule, gamma)
        else:
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
        affine = bool(int(a["affine"]))
        if method == "brn":
            warmup, ramp = int(ctx["brn_warmup"]), int(ctx["brn_ramp"])
            m = norm_ref.BatchRenorm(c, float(a["eps"]), float(a["momentum"]), affine,
                                     lambda: norm_ref.brn_limits(ctx["step"], warmup, ramp))
        elif method in ("bn", "psbn", "cenconv", "lastbn"):
            # dense activations are (N, C); convolutional maps (N, C, H, W)
            cls = nn.BatchNorm1d if h * w == 1 else nn.BatchNorm2d
            m = cls(c, eps=float(a["eps"]), momentum=float(a["momentum"]), affine=affine)
        else:
            raise SystemExit("torch_ref.py: no reference for BN method '%s'" % method)
    elif kind in ("gn", "ln", "in"):
        method = text(a.get("method", kind))
        if method != kind and not (kind == "gn" and method == "ws"):
            raise SystemExit("torch_ref.py: no reference for method '%s'" % method)
        eps = float(a["eps"])
        if kind == "ln" and h * w == 1:
            m = nn.LayerNorm(c, eps=eps)
        else:
            groups = {"gn": largest_divisor(c, int(a["gn_groups"])), "ln": 1, "in": c}[kind]
            m = nn.GroupNorm(groups, c, eps=eps)
    elif kind == "frn":
        m = FRN(c, float(a["frn_eps"]), "eps" in g)
    elif kind == "bkn":
        group = int(ctx["group"])
        p = float(ctx["bkn_p"])
        m = norm_ref.BKN(c, float(a["eps"]), p if p >= 0 else norm_ref.bkn_default_p(group),
                         group, ctx["bkn_predict"], bool(ctx["bkn_grad"]))
    elif kind == "mabn":
        m = norm_ref.MABN(c, float(a["eps"]), int(ctx["mabn_buffer"]), int(ctx["mabn_warmup"]))
    elif kind == "pn":
        m = norm_ref.PowerNorm(c, float(a["eps"]), int(ctx["pn_warmup"]))
    elif kind == "scale":
        m = norm_ref.Scale()
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


def weight_rules(f, names, ctx):
    """The rule of each layer as derived from the method, checked against
    the one normscope reports; and the ReLU gain of scaled WS."""
    kinds, fans, srcs = [], [], []
    for name in names:
        a = f["layers"][name].attrs
        kinds.append(text(a["kind"]))
        srcs.append(int(a["src"]))
        g = f["layers"][name]
        fans.append(g["weight"].size // g["weight"].shape[0]
                    if kinds[-1] in ("conv", "dense") else 0)
    rules = norm_ref.weight_rule_layers(ctx["norm"], ctx["wm_all"], kinds, fans)
    for name, kind, rule in zip(names, kinds, rules):
        a = f["layers"][name].attrs
        if kind not in ("conv", "dense") or "wrule" not in a:
            continue
        said = "mean" if int(a["weight_mean"]) else text(a["wrule"])
        if said != (rule or "none"):
            raise SystemExit("torch_ref.py: layer %s: normscope applies weight rule '%s', "
                             "the method '%s' implies '%s'" % (name, said, ctx["norm"],
                                                                rule or "none"))
    gammas = [norm_ref.RELU_GAIN if s >= 0 and kinds[s] == "relu" else 1.0 for s in srcs]
    return rules, gammas


def load(inpath):
    """Reads IN.h5: the network's modules, the batches and the settings."""
    with h5py.File(inpath, "r") as f:
        dtype = {"float32": torch.float32, "float64": torch.float64}[text(f.attrs["dtype"])]
        names = text(f.attrs["names"]).split(",")
        ctx = {
            "dtype": dtype,
            "train": text(f.attrs["mode"]) == "train",
            "group": int(f.attrs["group"]),
            "norm": text(f.attrs.get("norm", "bn")),
            "wm_all": int(f.attrs.get("wm_all", 0)),
            "step": int(f.attrs.get("step", 0)),
            "train_steps": int(f.attrs.get("train_steps", 0)),
            "lr": float(f.attrs.get("lr", 0)),
            "sgd_momentum": float(f.attrs.get("sgd_momentum", 0)),
            "agc": float(f.attrs.get("agc", 0)),
        }
        for key in ("brn_warmup", "brn_ramp", "bkn_p", "mabn_buffer", "mabn_warmup",
                    "pn_warmup"):
            ctx[key] = f.attrs.get(key, -1)
        ctx["bkn_predict"] = text(f.attrs.get("bkn_predict", "group"))
        ctx["bkn_grad"] = int(f.attrs.get("bkn_grad", 0))

        def tensor(path, kind=np.float64):
            return torch.from_numpy(np.asarray(f[path], dtype=kind))

        batches = [(tensor("x").to(dtype), tensor("y", np.int64))]
        for k in range(1, ctx["train_steps"]):
            batches.append((tensor("batches/%d/x" % k).to(dtype),
                            tensor("batches/%d/y" % k, np.int64)))
        rules, gammas = weight_rules(f, names, ctx)
        layers = []
        # source[i]: where the BKN statistics of layer i's output come from,
        # following the data flow: a BKN layer itself, a SkipSum after a
        # residual add, else its input's
        source = []
        for i, name in enumerate(names):
            g = f["layers"][name]
            a = dict(g.attrs)
            for key in ("eps", "momentum", "gn_groups", "psbn_alpha", "frn_eps"):
                if key in f.attrs:
                    a[key] = f.attrs[key]
            kind = text(a["kind"])
            m = build(kind, a, g, dtype, ctx, rules[i], gammas[i])
            src, src2 = int(a["src"]), int(a["src2"])
            if kind == "bkn":
                # the prediction's inputs: the statistics flowing into the
                # weight layer feeding this one, that layer, normscope's draws
                if src >= 0 and layers[src][1] in ("dense", "conv"):
                    wsrc = int(layers[src][2]["src"])
                    norm_ref.link(m, "prev", source[wsrc] if wsrc >= 0 else None)
                    norm_ref.link(m, "wl", layers[src][3])
                    m.wl_shape = tuple(int(v) for v in layers[src][2]["in_shape"])
                    m.wl_is_conv = layers[src][1] == "conv"
                if "bkn_noise/" + name in f:
                    m.noise = tensor("bkn_noise/" + name).to(dtype)
            if kind in NORM_KINDS:
                source.append(m if kind == "bkn" else None)
            elif kind == "add":
                source.append(norm_ref.SkipSum(source[src], source[src2]))
            else:
                source.append(source[src] if src >= 0 else None)
            layers.append((name, kind, a, m))
    return ctx, layers, batches, rules


def forward(layers, x, ctx):
    """One forward pass; returns the logits (n, classes)."""
    n = x.shape[0]
    train, group = ctx["train"], ctx["group"]
    acts = []
    for name, kind, a, m in layers:
        src, src2 = int(a["src"]), int(a["src2"])
        inp = x if src < 0 else acts[src]
        c, h, w = (int(v) for v in a["in_shape"])
        if m is not None:
            m.train(train)
        if isinstance(m, norm_ref.BatchRenorm):
            m.last_r, m.last_d = [], []
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
        elif kind in ("bkn", "mabn", "pn"):
            if kind == "mabn" and train and group and group < n:
                raise SystemExit("torch_ref.py: no reference for MABN in groups")
            if kind == "pn" and group:
                raise SystemExit("torch_ref.py: PowerNorm takes the whole batch")
            out = m(inp.reshape(n, c) if h * w == 1 else inp.reshape(n, c, h, w))
        elif kind in ("gn", "in") or (kind == "ln" and h * w > 1):
            out = m(inp.reshape(n, c, h, w))
        elif kind == "ln":
            out = m(inp.reshape(n, c))
        elif kind == "frn":
            out = m(inp.reshape(n, c, h, w))
        else:
            out = m(inp)
        acts.append(out)
    return acts[-1].reshape(n, -1)


def write_diag(f, layers, ctx):
    """What the methods decided in the last forward."""
    for name, kind, a, m in layers:
        if isinstance(m, norm_ref.BatchRenorm) and m.last_r:
            rmax, dmax = m.limits()
            f["diag/%s/r" % name] = torch.cat(m.last_r).detach().double().numpy()
            f["diag/%s/d" % name] = torch.cat(m.last_d).detach().double().numpy()
            f["diag/%s/rmax" % name] = np.array([rmax])
            f["diag/%s/dmax" % name] = np.array([dmax])
        elif isinstance(m, norm_ref.BKN) and ctx["train"]:
            f["diag/%s/mixed" % name] = np.array(m.mixed, dtype=np.int32)
        elif isinstance(m, norm_ref.MABN) and m.last_r is not None:
            f["diag/%s/r" % name] = m.last_r.detach().double().numpy()


def run(inpath, outpath):
    """One network: IN.h5 to OUT.h5."""
    ctx, layers, batches, rules = load(inpath)
    modules = [m for _, _, _, m in layers if m is not None]
    if ctx["train_steps"] == 0:
        x, y = batches[0]
        logits = forward(layers, x, ctx)
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
            write_diag(f, layers, ctx)
        return

    # training steps (train mode throughout)
    ctx["train"] = True
    if ctx["train_steps"] > 1 and any(k == "bkn" for _, k, _, _ in layers):
        raise SystemExit("torch_ref.py: BKN's draws are given for one step only")
    params = [t for m in modules for t in m.parameters()]
    opt = torch.optim.SGD(params, lr=ctx["lr"], momentum=ctx["sgd_momentum"])
    step0, losses = ctx["step"], []
    for k in range(ctx["train_steps"]):
        ctx["step"] = step0 + k
        x, y = batches[k]
        logits = forward(layers, x, ctx)
        loss = F.cross_entropy(logits, y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        if ctx["norm"] == "nf":
            for (name, kind, a, m), rule in zip(layers, rules):
                if rule == "scaled":
                    norm_ref.agc_(m.weight, ctx["agc"])
        opt.step()
        for (name, kind, a, m), rule in zip(layers, rules):
            if rule == "mean":
                norm_ref.weight_mean_(m.weight)
    with h5py.File(outpath, "w") as f:
        f["logits"] = logits.detach().double().numpy()
        f["losses"] = np.array(losses, dtype=np.float64)
        for name, kind, a, m in layers:
            if m is None:
                continue
            for tname, t in m.named_parameters():
                f["param/%s/%s" % (name, tname)] = t.detach().double().numpy().ravel()
            for tname, t in m.named_buffers():
                f["state/%s/%s" % (name, tname)] = t.detach().double().numpy().ravel()
        write_diag(f, layers, ctx)


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        raise SystemExit("usage: torch_ref.py IN.h5 OUT.h5 [IN.h5 OUT.h5 ...]")
    torch.set_num_threads(1)
    for i in range(0, len(args), 2):
        run(args[i], args[i + 1])


if __name__ == "__main__":
    main()
