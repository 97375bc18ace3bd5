#!/usr/bin/env python3
"""PyTorch peer of `normscope spectrum` for make bench: the same work on the
same architecture (bench/torch_models.py, eval mode) and the same images:
one forward pass over N test images with every dense, conv and ReLU output
streamed into float64 sums per layer (hooks), then the feature covariance
(channels x samples * positions) and its eigenvalues and those of the
correlation matrix, channel quantiles of about 65536 drawn observations, and
the eigenvalues of the cosine Gram matrix of the first 500 samples; then the
weights' singular values.
Prints "seconds=S" (the whole analysis after the images are in memory).

usage: torch_spectrum.py --arch cnn --n 10000 --threads 2"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn

import torch_models

PROBS = torch.tensor([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99], dtype=torch.float64)


class Stats:
    """One layer's statistics, streamed batch by batch as normscope does:
    float64 sums and cross products of the observations, positives, the sum
    of normalised sample vectors, the first gram_n vectors, and the drawn
    observations for the quantiles."""

    def __init__(self, total, gram_n=500, nq=65536):
        self.total, self.gram_n, self.nq = total, gram_n, nq
        self.n = self.nobs = 0
        self.s = self.xtx = self.pos = self.vsum = None
        self.gram = []
        self.q = []

    def add(self, o):
        m = o.shape[0]
        c = o.shape[1]
        obs = (o.permute(0, 2, 3, 1).reshape(-1, c) if o.dim() == 4 else o).double()
        if self.s is None:
            self.s = torch.zeros(c, dtype=torch.float64)
            self.xtx = torch.zeros(c, c, dtype=torch.float64)
            self.pos = torch.zeros(c, dtype=torch.float64)
            self.vsum = torch.zeros(o[0].numel(), dtype=torch.float64)
        self.nobs += obs.shape[0]
        self.s += obs.sum(0)
        self.xtx += obs.T @ obs
        self.pos += (obs > 0).sum(0)
        v = o.reshape(m, -1).double()
        self.vsum += (v / v.norm(dim=1, keepdim=True).clamp(min=1e-300)).sum(0)
        if self.n < self.gram_n:
            self.gram.append(o.reshape(m, -1)[:self.gram_n - self.n].clone())
        k = max(1, self.nq * m // self.total)   # about nq draws in all
        self.q.append(obs[torch.randint(0, obs.shape[0], (k,))])
        self.n += m

    def finish(self):
        cnt = self.s.new_tensor(float(self.nobs))
        mean = self.s / cnt
        cov = (self.xtx - cnt * torch.outer(mean, mean)) / (cnt - 1)
        torch.linalg.eigvalsh(cov)
        sd = cov.diagonal().clamp(min=0).sqrt()
        inv = torch.where(sd > 0, 1 / sd, torch.zeros_like(sd))
        r = cov * inv[:, None] * inv[None, :]
        r.fill_diagonal_(1)
        torch.linalg.eigvalsh(r)
        torch.quantile(torch.cat(self.q), PROBS, dim=0)
        g = torch.cat(self.gram).double()
        g = g / g.norm(dim=1, keepdim=True).clamp(min=1e-300)
        torch.linalg.eigvalsh(g @ g.T)


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
    stats = {}
    hooks = []
    for k, mod in enumerate(m for m in model.modules()
                            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ReLU))):
        stats[k] = Stats(len(x))
        hooks.append(mod.register_forward_hook(
            lambda mod, i, o, st=stats[k]: st.add(o.detach())))
    t0 = time.time()
    with torch.no_grad():
        for i0 in range(0, len(x), 256):
            model(x[i0:i0 + 256])
    for k in stats:
        stats[k].finish()
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            w = m.weight.detach().double().reshape(m.weight.shape[0], -1)
            torch.linalg.svdvals(w)
    for h in hooks:
        h.remove()
    print("seconds=%.3f" % (time.time() - t0))


if __name__ == "__main__":
    main()
