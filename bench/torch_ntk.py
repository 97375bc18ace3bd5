"""Empirical NTK in PyTorch: the peer of `normscope ntk` for make bench.

Computes the full empirical NTK Theta (N*K, N*K), sample-major (row i*K + k
is sample i, output k; Theta[(i,k),(j,l)] = sum_p df_ik/dp df_jl/dp over all
weights and biases), of the logits (K = 10) of a bench model, in float32,
by two methods, each measurement in its own subprocess so that the peak
RSS is that method's alone:

  functorch   the functorch NTK tutorial's method: per-sample Jacobians
              vmap(jacrev(f_single)) of make_functional_with_buffers(model),
              then Theta = sum over parameter tensors of
              einsum('iaf,jbf->iajb', J, J).  Holds the whole Jacobian
              (N*K*P floats: 6.9 GB for the mlp at N = 256).
  structured  per layer, from one forward (inputs a of every layer) and K
              backward passes of the one-hot cotangents e_k of the whole
              batch (output cotangents d_ik of every layer; samples are
              independent, so one backward serves all N samples):
                dense   Theta_l[(i,k),(j,m)] = (a_i . a_j + 1) (d_ik . d_jm),
                        i.e. (A A^T + 1) (Hadamard, expanded over the K x K
                        blocks) (D D^T), cost N^2 n_in + (NK)^2 n_out;
                conv    per-(sample, output) gradients from the unfolded
                        input patches, g_ik = sum_pos d_ik[:, pos] patch_i[pos]^T
                        (+ the bias), then G G^T: a Jacobian contraction per
                        layer, NOT the sum over position pairs, which for
                        these layers costs more (e.g. the cnn's last conv:
                        (NK)^2 S^2 C_out = 2401 * 128 per pair of rows against
                        its P = 73856 parameters);
                BN      (eval mode, --norm bn) gamma and beta: per-(sample,
                        output) gradients sum_pos d * xhat and sum_pos d.
              Theta = the sum over layers.

Models (bench/torch_models.py): mlp = 784-512-512-10 ReLU, cnn = three 3x3
convs (32, 64/2, 128/2), ReLU, global average pool, fc 10; --norm none (the
default) or bn, the BN layers in eval mode (running statistics, here the
initial ones) so samples stay independent.  PyTorch default init, seed 1.
Inputs: the first N images of the Fashion-MNIST training set, standardised
as normscope does (torch_models.load_fashion_mnist; prepared once in a
separate subprocess), or with --data random (or when the data set is
missing) N(0, 1) inputs of shape (N, 1, 28, 28).

Each measurement: torch.set_num_threads(--threads), build the model and
inputs, one untimed warm-up on 2 samples, then the timed kernel
computation (--repeats times; the median is reported).  Peak RSS is the
worker process's VmHWM (/proc/self/status) at its end: model, inputs,
warm-up and the measurement (base_mb is its RSS just before the timed part).

Output: one line per measurement on stdout, key=value fields separated by
single spaces, fixed order:

  torch-ntk arch=mlp norm=none n=64 k=10 kernel=full method=structured
      threads=2 dtype=float32 data=fmnist seconds=0.412 peak_mb=412
      base_mb=301 gflop=1.71

  (on one line) seconds: median wall time of the kernel computation, inputs
  in memory to Theta in memory; peak_mb / base_mb: MiB (1048576 bytes);
  gflop: the analytic floating-point operations (2 per multiply-add) of
  the contraction step alone (einsum J J^T for functorch; Grams, Hadamard
  products and conv gradient formation for structured), forward and
  backward passes not counted.  A measurement not run:

  torch-ntk arch=mlp norm=none n=256 k=10 kernel=full method=functorch skipped=slow

  and, when both methods ran at the same N, their agreement (Theta of
  functorch as reference; fails the script above 1e-4):

  torch-ntk-check arch=mlp norm=none n=64 relerr=3.2e-07 tol=1e-04 ok=1

  relerr = max |Theta_structured - Theta_functorch| / max |Theta_functorch|.
Progress and notes go to stderr.  Exit status 1 if a check fails or a
worker fails.

Usage: /usr/bin/python3 bench/torch_ntk.py [--arch mlp,cnn] [--n 64,256]
           [--method functorch|structured|all] [--threads 2] [--skip-slow]
           [--norm none|bn] [--data fmnist|random] [--repeats 1]
  --n defaults to 64,256 for the mlp and 64 for the cnn.  --skip-slow skips
  functorch where its Jacobian alone exceeds 2 GiB (N*K*P*4 bytes: the mlp
  at N = 256, about a minute and ~9 GB peak on 2 cores).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
K = 10
SLOW_BYTES = 2 << 30
CHECK_TOL = 1e-4
WARMUP_N = 2


# ------------------------------------------------------------ the methods

def functorch_kernel(model, x):
    import torch
    from functorch import jacrev, make_functional_with_buffers, vmap

    fnet, params, buffers = make_functional_with_buffers(model)
    # detached (as the torch.func version of the tutorial does): the
    # einsum then builds no autograd graph of its own
    params = tuple(p.detach() for p in params)
    buffers = tuple(b.detach() for b in buffers)

    def single(p, xi):
        return fnet(p, buffers, xi.unsqueeze(0)).squeeze(0)

    jac = vmap(jacrev(single), (None, 0))(params, x)
    n = x.shape[0]
    theta = None
    for j in jac:
        j = j.reshape(n, j.shape[1], -1)
        t = torch.einsum("iaf,jbf->iajb", j, j)
        theta = t if theta is None else theta + t
    k = theta.shape[1]
    return theta.reshape(n * k, n * k)


def structured_kernel(model, x):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    kinds = (nn.Linear, nn.Conv2d, nn.modules.batchnorm._BatchNorm)
    layers = [m for m in model.modules() if isinstance(m, kinds)]
    seen = {}

    def hook(mod, inp, out):
        seen[mod] = (inp[0].detach(), out)

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    n, k = logits.shape
    outs = [seen[m][1] for m in layers]
    cots = [[] for _ in layers]
    for c in range(k):
        e = torch.zeros_like(logits)
        e[:, c] = 1
        ds = torch.autograd.grad(logits, outs, grad_outputs=e, retain_graph=c < k - 1)
        for lst, d in zip(cots, ds):
            lst.append(d)
    del outs, logits
    theta = torch.zeros(n, k, n, k, dtype=x.dtype)
    for m, lst in zip(layers, cots):
        a = seen[m][0]
        d = torch.stack(lst, 1)                  # (n, k, *out_shape)
        lst.clear()
        if isinstance(m, nn.Linear):
            ga = a @ a.T
            if m.bias is not None:
                ga += 1
            dd = d.reshape(n * k, -1)
            theta += (dd @ dd.T).view(n, k, n, k) * ga[:, None, :, None]
        elif isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.padding_mode != "zeros":
                raise SystemExit("torch_ntk.py: grouped or non-zero-padded conv not supported")
            patches = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding,
                               stride=m.stride)      # (n, cin*kh*kw, S)
            d = d.reshape(n, k, d.shape[2], -1)      # (n, k, cout, S)
            g = torch.einsum("nkos,nps->nkop", d, patches).reshape(n * k, -1)
            theta += (g @ g.T).view(n, k, n, k)
            if m.bias is not None:
                gb = d.sum(-1).reshape(n * k, -1)
                theta += (gb @ gb.T).view(n, k, n, k)
        else:  # BN in eval mode: an affine map per channel
            if m.training:
                raise SystemExit("torch_ntk.py: the structured NTK takes BN in eval mode")
            shape = (1, -1) + (1,) * (a.dim() - 2)
            xhat = (a - m.running_mean.view(shape)) / torch.sqrt(m.running_var.view(shape) + m.eps)
            dims = tuple(range(3, d.dim()))
            if m.weight is not None:
                gg = (d * xhat[:, None]).sum(dims).reshape(n * k, -1) if dims else \
                    (d * xhat[:, None]).reshape(n * k, -1)
                gb = d.sum(dims).reshape(n * k, -1) if dims else d.reshape(n * k, -1)
                theta += (gg @ gg.T + gb @ gb.T).view(n, k, n, k)
    return theta.reshape(n * k, n * k)


METHODS = {"functorch": functorch_kernel, "structured": structured_kernel}


# ------------------------------------------------------ cost accounting

def layer_shapes(arch, norm):
    """(kind, n_in or (cin*kk, S), n_out or cout, P) per parameterised layer,
    from a forward of one sample."""
    import torch
    import torch.nn as nn
    sys.path.insert(0, HERE)
    import torch_models
    model = torch_models.build_model(arch, norm).eval()
    rows = []

    def hook(mod, inp, out):
        p = sum(t.numel() for t in mod.parameters())
        if isinstance(mod, nn.Linear):
            rows.append(("dense", mod.in_features, mod.out_features, p))
        elif isinstance(mod, nn.Conv2d):
            kk = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
            rows.append(("conv", (kk, out.shape[2] * out.shape[3]), mod.out_channels, p))
        else:
            rows.append(("bn", None, None, p))

    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.modules.batchnorm._BatchNorm)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    return rows


def gflop(arch, norm, method, n):
    rows = layer_shapes(arch, norm)
    nk = n * K
    if method == "functorch":
        return 2.0 * nk * nk * sum(r[3] for r in rows) / 1e9
    f = 0.0
    for kind, nin, nout, p in rows:
        if kind == "dense":
            f += 2.0 * n * n * nin + 2.0 * nk * nk * nout + 2.0 * nk * nk
        elif kind == "conv":
            kk, s = nin
            f += 2.0 * nk * nout * s * kk + 2.0 * nk * nk * p
        else:
            f += 2.0 * nk * nk * p
    return f / 1e9


def n_params(arch, norm):
    return sum(r[3] for r in layer_shapes(arch, norm))


# ---------------------------------------------------------- subprocesses

def proc_status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def prep(path, nmax, data):
    """Writes the first nmax inputs to path (.npy float32); prints the data
    kind used."""
    import numpy as np
    import torch
    sys.path.insert(0, HERE)
    import torch_models
    kind = data
    if data == "fmnist":
        try:
            xtr, _, _, _, _ = torch_models.load_fashion_mnist()
            x = xtr[:nmax].numpy()
        except (OSError, ValueError) as e:
            print("torch_ntk.py: Fashion-MNIST not available (%s): random inputs" % e,
                  file=sys.stderr)
            kind = "random"
    if kind == "random":
        g = torch.Generator().manual_seed(2)
        x = torch.randn(nmax, 1, 28, 28, generator=g).numpy()
    np.save(path, x.astype(np.float32))
    print(kind)


def worker(args):
    import numpy as np
    import torch
    sys.path.insert(0, HERE)
    import torch_models
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = torch_models.build_model(args.arch, args.norm).eval()
    for p in model.parameters():
        p.requires_grad_(True)
    x = torch.from_numpy(np.load(args.inputs)[:args.n])
    if x.shape[0] != args.n:
        raise SystemExit("torch_ntk.py: only %d inputs prepared" % x.shape[0])
    fn = METHODS[args.method]
    fn(model, x[:WARMUP_N])
    base = proc_status_mb("VmRSS")
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        theta = fn(model, x)
        times.append(time.perf_counter() - t0)
    peak = proc_status_mb("VmHWM")
    if args.save:
        np.save(args.save, theta.numpy())
    print("seconds=%.3f peak_mb=%.0f base_mb=%.0f" % (statistics.median(times), peak, base),
          flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="mlp,cnn", help="comma-separated: mlp, cnn")
    ap.add_argument("--n", default=None, help="comma-separated batch sizes")
    ap.add_argument("--method", choices=("functorch", "structured", "all"), default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-slow", action="store_true")
    ap.add_argument("--norm", choices=("none", "bn"), default="none")
    ap.add_argument("--data", choices=("fmnist", "random"), default="fmnist")
    ap.add_argument("--repeats", type=int, default=1)
    # internal: one measurement / the input preparation
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    ap.add_argument("--prep", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    archs = [a for a in args.arch.split(",") if a]
    if any(a not in ("mlp", "cnn") for a in archs) or not archs:
        ap.error("--arch takes mlp, cnn or both")
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    if args.prep:
        prep(args.prep, int(args.n), args.data)
        return 0
    if args.worker:
        args.arch, args.n, args.method = archs[0], int(args.n), args.method
        worker(args)
        return 0

    try:
        ns_given = [int(v) for v in args.n.split(",") if v] if args.n else None
    except ValueError:
        ap.error("--n takes comma-separated integers")
    if ns_given is not None and (not ns_given or min(ns_given) < WARMUP_N):
        ap.error("--n values must be >= %d" % WARMUP_N)
    plan = [(a, ns_given or ([64, 256] if a == "mlp" else [64])) for a in archs]
    methods = ["functorch", "structured"] if args.method == "all" else [args.method]
    me = os.path.abspath(__file__)
    py = sys.executable
    status = 0
    with tempfile.TemporaryDirectory(prefix="torch_ntk.") as tmp:
        inputs = os.path.join(tmp, "x.npy")
        nmax = max(n for _, ns in plan for n in ns)
        data = subprocess.run([py, me, "--prep", inputs, "--n", str(nmax), "--data", args.data],
                              check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        for arch, ns in plan:
            p = n_params(arch, args.norm)
            for n in ns:
                head = "torch-ntk arch=%s norm=%s n=%d k=%d kernel=full" % (arch, args.norm, n, K)
                ran = {}
                both = len(methods) == 2
                for method in methods:
                    if args.skip_slow and method == "functorch" and n * K * p * 4 > SLOW_BYTES:
                        print("%s method=%s skipped=slow" % (head, method), flush=True)
                        both = False
                        continue
                    save = os.path.join(tmp, "theta-%s-%d-%s.npy" % (arch, n, method))
                    cmd = [py, me, "--worker", "--arch", arch, "--n", str(n), "--method", method,
                           "--threads", str(args.threads), "--norm", args.norm,
                           "--repeats", str(args.repeats), "--inputs", inputs]
                    if both:
                        cmd += ["--save", save]
                    print("torch_ntk.py: %s n=%d %s ..." % (arch, n, method), file=sys.stderr,
                          flush=True)
                    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
                    if r.returncode != 0:
                        print("%s method=%s failed=%d" % (head, method, r.returncode), flush=True)
                        status = 1
                        both = False
                        continue
                    print("%s method=%s threads=%d dtype=float32 data=%s %s gflop=%.2f" %
                          (head, method, args.threads, data, r.stdout.strip(),
                           gflop(arch, args.norm, method, n)), flush=True)
                    ran[method] = save
                if both and len(ran) == 2:
                    import numpy as np
                    ref = np.load(ran["functorch"]).astype(np.float64)
                    st = np.load(ran["structured"]).astype(np.float64)
                    err = np.abs(st - ref).max() / np.abs(ref).max()
                    ok = bool(err < CHECK_TOL)
                    print("torch-ntk-check arch=%s norm=%s n=%d relerr=%.2e tol=%.0e ok=%d" %
                          (arch, args.norm, n, err, CHECK_TOL, ok), flush=True)
                    if not ok:
                        status = 1
                    for f in ran.values():
                        os.remove(f)
    return status


if __name__ == "__main__":
    sys.exit(main())
