"""Training throughput (images/s) of the PyTorch peer models.

Full SGD steps (zero_grad, forward, cross-entropy, backward, step with
momentum 0.9) on random float32 data of the right shape, batch 128,
torch.set_num_threads(2) (--threads).  ~20 warm-up steps, then R repeats of S steps;
prints the median over the repeats as a single line:

  torch <arch> <norm> <median img/s>

Usage: /usr/bin/python3 bench/torch_throughput.py --arch mlp|cnn --norm bn|none \
           [--repeats 5] [--steps N] [--threads 2]      (N defaults to 50 for mlp, 20 for cnn)
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F

import torch_models

BATCH = 128
THREADS = 2
WARMUP = 20
DEFAULT_STEPS = {"mlp": 50, "cnn": 20, "resnet8": 20}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=torch_models.ARCHS, required=True)
    ap.add_argument("--norm", choices=torch_models.NORMS, default="bn")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=WARMUP)
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    steps = args.steps if args.steps is not None else DEFAULT_STEPS[args.arch]
    if steps < 1 or args.repeats < 1 or args.threads < 1 or args.warmup < 0:
        ap.error("--steps, --repeats and --threads must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = torch_models.build_model(args.arch, args.norm)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(BATCH, 1, 28, 28, dtype=torch.float32)
    y = torch.randint(0, 10, (BATCH,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = time.perf_counter() - t0
        rates.append(steps * BATCH / dt)
    print("torch %s %s %.1f" % (args.arch, args.norm, statistics.median(rates)),
          flush=True)


if __name__ == "__main__":
    main()
