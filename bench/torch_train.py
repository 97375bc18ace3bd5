"""Trains the PyTorch peer models on Fashion-MNIST with normscope's recipe.

Recipe: SGD lr 0.05 (--lr), momentum 0.9, no weight decay, batch 128,
reshuffled every epoch (last partial batch kept), LR annealed by a cosine
to zero over the run per step (normscope's default; --schedule const keeps
it constant), optionally after a linear warm-up (--warmup N: as normscope's
ns_schedule_lr, the cosine runs over the steps after the warm-up and the LR
of step t < N is multiplied by (t+1)/N) and a global gradient-norm clip
(--clip C, as normscope's), N epochs; test accuracy
after each epoch (model.eval(), batch 1000).  Data standardised with the
training set's mean and population std.

Usage (Debian's torch):
  /usr/bin/python3 bench/torch_train.py --arch mlp|cnn|resnet8 --norm bn|none|... \
      --epochs 3 --seeds 1,2,3 --threads 2 [--lr 0.05] [--warmup N] [--clip C] [--json]

Prints per seed the final test accuracy and the training throughput in
img/s (training steps only, evaluation excluded), then the mean over seeds.
With --json, one JSON object per line instead (one per seed, then the mean).
Per-epoch progress goes to stderr.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F

import torch_models

LR = 0.05
MOMENTUM = 0.9
BATCH = 128
EVAL_BATCH = 1000


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_BATCH):
            out = model(x[i:i + EVAL_BATCH])
            correct += (out.argmax(1) == y[i:i + EVAL_BATCH]).sum().item()
    return correct / x.shape[0]


def schedule_lr(lr, schedule, step, total, warmup=0):
    """The LR of step (0-based) of total, as normscope's ns_schedule_lr for
    'cosine' and 'const': the cosine anneals to zero over the steps after
    the warm-up (a warm-up not shorter than the run is ignored by the
    cosine), and step < warmup multiplies the LR by (step+1)/warmup."""
    if schedule == "cosine":
        w = warmup if warmup < total else 0
        a = math.pi * (step - min(step, w)) / (total - w) if total > w else 0.0
        lr = lr * 0.5 * (1 + math.cos(a))
    if warmup and step < warmup:
        lr *= (step + 1) / warmup
    return lr


def train_one(arch, norm, epochs, seed, data, quiet=False, schedule="cosine", lr=LR,
              warmup=0, clip=0.0):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = torch_models.build_model(arch, norm)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM,
                          weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    n = xtr.shape[0]
    total = epochs * ((n + BATCH - 1) // BATCH)
    step = 0
    train_time = 0.0
    images = 0
    accs = []
    for ep in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        model.train()
        t0 = time.perf_counter()
        loss_sum = 0.0
        for i in range(0, n, BATCH):        # drop_last=False
            idx = perm[i:i + BATCH]
            xb = xtr.index_select(0, idx)
            yb = ytr.index_select(0, idx)
            if schedule == "cosine" or warmup:
                for g in opt.param_groups:
                    g["lr"] = schedule_lr(lr, schedule, step, total, warmup)
            step += 1
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            if clip > 0:       # normscope's --clip
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            loss_sum += loss.item() * idx.numel()
        dt = time.perf_counter() - t0
        train_time += dt
        images += n
        acc = evaluate(model, xte, yte)
        accs.append(acc)
        if not quiet:
            print("  seed %d epoch %d/%d: train loss %.4f, test acc %.2f%%, "
                  "%.0f img/s" % (seed, ep, epochs, loss_sum / n, 100 * acc, n / dt),
                  file=sys.stderr, flush=True)
    return {"arch": arch, "norm": norm, "seed": seed, "epochs": epochs,
            "lr": lr, "warmup": warmup, "clip": clip, "schedule": schedule,
            "test_acc": accs[-1], "test_acc_per_epoch": accs,
            "train_img_per_s": images / train_time, "train_seconds": train_time}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=torch_models.ARCHS, required=True)
    ap.add_argument("--norm", choices=torch_models.NORMS, default="bn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="1,2,3",
                    help="comma-separated list of seeds (default 1,2,3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--schedule", choices=("cosine", "const"), default="cosine")
    ap.add_argument("--lr", type=float, default=LR, help="learning rate (default %g)" % LR)
    ap.add_argument("--warmup", type=int, default=0,
                    help="linear warm-up over N steps (default 0: none)")
    ap.add_argument("--clip", type=float, default=0.0,
                    help="clip the gradient to this global norm (default 0: off)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON line per result")
    ap.add_argument("--data-dir", default=torch_models.DATA_DIR)
    ap.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    args = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        ap.error("--seeds: expected comma-separated integers, got %r" % args.seeds)
    if not seeds:
        ap.error("--seeds: no seeds given")
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    if not args.clip >= 0:
        ap.error("--clip must be >= 0")

    torch.set_num_threads(args.threads)
    xtr, ytr, xte, yte, _ = torch_models.load_fashion_mnist(args.data_dir)
    data = (xtr.contiguous(), ytr, xte.contiguous(), yte)

    results = []
    for seed in seeds:
        r = train_one(args.arch, args.norm, args.epochs, seed, data, args.quiet,
                      args.schedule, args.lr, args.warmup, args.clip)
        r["threads"] = args.threads
        results.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print("torch %s %s seed %d: test acc %.2f%%  train %.0f img/s"
                  % (args.arch, args.norm, seed, 100 * r["test_acc"],
                     r["train_img_per_s"]), flush=True)

    k = len(results)
    mean_acc = sum(r["test_acc"] for r in results) / k
    mean_ips = sum(r["train_img_per_s"] for r in results) / k
    if args.json:
        print(json.dumps({"arch": args.arch, "norm": args.norm, "seed": "mean",
                          "seeds": seeds, "epochs": args.epochs, "lr": args.lr,
                          "warmup": args.warmup, "clip": args.clip,
                          "schedule": args.schedule,
                          "threads": args.threads, "test_acc": mean_acc,
                          "train_img_per_s": mean_ips}), flush=True)
    else:
        print("torch %s %s mean over %d seeds: test acc %.2f%%  train %.0f img/s"
              % (args.arch, args.norm, k, 100 * mean_acc, mean_ips), flush=True)


if __name__ == "__main__":
    main()
