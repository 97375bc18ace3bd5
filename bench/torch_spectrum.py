#!/usr/bin/env python3
"""PyTorch peer of `normscope spectrum` for make bench: the same work on the
same architecture (bench/torch_models.py, eval mode) and the same images:
one forward pass over N test images with every dense, conv and ReLU output
kept in turn, per layer the float64 feature covariance (channels x samples *
positions), its eigenvalues and those of the correlation matrix, channel
quantiles of 65536 drawn observations, and the eigenvalues of the cosine
Gram matrix of the first 500 samples; then the weights' singular values.
Prints "seconds=S" (the whole analysis after the images are in memory).

usage: torch_spectrum.py --arch cnn --n 10000 --threads 2"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn

import torch_models

PROBS = torch.tensor([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99], dtype=torch.float64)


def layer_stats(acts, gram_n=500, nq=65536, gen=None):
    n = acts.shape[0]
    if acts.dim() == 4:
        c = acts.shape[1]
        obs = acts.permute(0, 2, 3, 1).reshape(-1, c).double()
    else:
        c = acts.shape[1]
        obs = acts.reshape(n, -1).double()
    mean = obs.mean(0)
    xc = obs - mean
    cov = xc.T @ xc / (obs.shape[0] - 1)
    ev = torch.linalg.eigvalsh(cov)
    sd = cov.diagonal().clamp(min=0).sqrt()
    inv = torch.where(sd > 0, 1 / sd, torch.zeros_like(sd))
    r = cov * inv[:, None] * inv[None, :]
    r.fill_diagonal_(1)
    rev = torch.linalg.eigvalsh(r)
    pos = (obs > 0).double().mean(0)
    idx = torch.randint(0, obs.shape[0], (min(nq, obs.shape[0]),), generator=gen)
    q = torch.quantile(obs[idx], PROBS, dim=0)
    v = acts.reshape(n, -1).double()
    vh = v / v.norm(dim=1, keepdim=True).clamp(min=1e-300)
    s = vh.sum(0)
    mean_cos = (s @ s - n) / (n * (n - 1))
    g = vh[:gram_n] @ vh[:gram_n].T
    gev = torch.linalg.eigvalsh(g)
    return ev, rev, q, pos, mean_cos, gev


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = torch_models.build_model(a.arch, "bn").eval()
    x, _ = torch_models.load_split("t10k")
    x = x[:a.n]
    kept = []
    hooks = [m.register_forward_hook(lambda m, i, o: kept.append(o.detach()))
             for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ReLU))]
    gen = torch.Generator().manual_seed(1)
    t0 = time.time()
    outs = {}
    with torch.no_grad():
        for i0 in range(0, len(x), 256):
            kept.clear()
            model(x[i0:i0 + 256])
            for k, o in enumerate(kept):
                outs.setdefault(k, []).append(o)
    for k in sorted(outs):
        layer_stats(torch.cat(outs[k]), gen=gen)
        outs[k] = None
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            w = m.weight.detach().double().reshape(m.weight.shape[0], -1)
            torch.linalg.svdvals(w)
    for h in hooks:
        h.remove()
    print("seconds=%.3f" % (time.time() - t0))


if __name__ == "__main__":
    main()
