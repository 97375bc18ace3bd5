#!/usr/bin/env python3
"""PyTorch reference for the empirical NTK (normscope ntk, src/analysis/ntk_compute.c).

usage: ntk_ref.py IN.h5 OUT.h5 [IN.h5 OUT.h5 ...]

IN.h5 is the file tests/torch_ref.py reads (ns_test_torch_write in
tests/testutil.c: root attributes dtype, names, group, eps, momentum, ...,
/x, /layers/<name>/...; the network is rebuilt by torch_ref.load and run by
torch_ref.forward), plus two root attributes:
  ntk_mode  "eval":  normalization layers use their running statistics
                     (model.eval(); BN is an affine map per sample)
            "batch": the batch's own statistics (train-mode forward, ghost
                     groups per the `group` attribute); the outputs of the
                     batch are coupled and the NTK is that of the batch
                     function F(theta) = f(X; theta) in R^(N x K).  Running
                     statistics and other buffers are restored afterwards,
                     so the pass leaves no trace.
  kernel    "full":  Theta (N*K, N*K), sample-major: row i*K + k is sample
                     i, output k;  Theta[(i,k),(j,l)] = sum_p dF_ik/dp dF_jl/dp
            "trace": (N, N), Theta_tr[i,j] = sum_k Theta[(i,k),(j,k)]
The root attribute `mode` (torch_ref.py's) is ignored here.  The outputs
are the logits (N x K); the parameters are every nn.Parameter of the
rebuilt network (weights, biases, BN gamma and beta, ...).  Dropout is the
identity in both modes (the kernel is deterministic); labels /y are unused.

How the kernel is computed (the reference checks itself):
  - J (N*K, P) by a plain autograd loop: one forward of the whole batch in
    the chosen mode, then torch.autograd.grad of each logit F[i,k] (retained
    graph); Theta = J J^T.  This is the kernel written, in both modes.
  - eval mode: also functorch's per-sample Jacobians, vmap(jacrev(f)) over
    the samples of make_functional_with_buffers(net) (the functorch NTK
    tutorial's method), contracted with einsum; the two must agree to a
    relative 1e-10 (float64) / 1e-4 (float32) of max |Theta|.
  - batch mode: also functorch's jacrev of the whole-batch function, on a
    copy whose BN layers do not track running statistics (a transformed
    function may not mutate buffers; BN's train-mode output is the same),
    same tolerance.  Layers that update buffers of their own in train mode
    (e.g. BRN, MABN) cannot run under functorch: that check is
    skipped with a note on stderr (checked = "none").
  - both modes, float64 only: central finite differences of F along two
    random parameter directions v against J v (relative 1e-6 of max |J v|),
    on the outputs whose two one-sided differences agree (outputs at a kink
    along v are left out: ReLU at exactly 0, e.g. FRN's TLU with tau = 0
    before a ReLU; if every output is, the check is skipped with a note).
    Layers with a hand-written approximate backward (MABN, PowerNorm after
    warm-up) have no exact Jacobian and fail here, as they should.
  - no buffer changed; Theta symmetric, its diagonal equal to jac_sqnorm,
    its smallest eigenvalue >= -1e-9 (float64) / -1e-4 (float32) of the
    largest.
Any failed check exits with status 1 and a message; OUT.h5 is not written.

OUT.h5 (all datasets float64):
  /kernel      (N*K, N*K) or (N, N) as `kernel` says
  /jac_sqnorm  (N*K,) sample-major: ||dF_ik/dtheta||^2, the diagonal of the
               full kernel (so trace(full kernel) = sum(jac_sqnorm); the trace
               kernel's diagonal is its sum over k)
  /logits      (N, K) of the forward in the chosen mode
  root attributes: ntk_mode, kernel (as given), n, k (outputs), p
  (parameters), dtype (of the computation: the IN dtype), checked
  (the second method: "functorch-vmap-jacrev", "functorch-jacrev" or
  "none"), functorch_relerr and fd_relerr (-1 when not run), fd_outputs
  (outputs compared by the finite differences), source (IN path)
Several pairs share one interpreter start (importing torch takes seconds).
"""
import copy
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402

from functorch import jacrev, make_functional_with_buffers, vmap  # noqa: E402


class Net(nn.Module):
    """torch_ref's layer list as one nn.Module, so that functorch can make
    it functional; forward is torch_ref.forward on the module's own
    submodules (make_functional copies the module)."""

    def __init__(self, layers, ctx):
        super().__init__()
        self.meta, self.index, mods = [], [], []
        for name, kind, a, m in layers:
            self.meta.append((name, kind, a))
            if m is None:
                self.index.append(-1)
                continue
            if kind == "dropout":
                m = nn.Identity()
            self.index.append(len(mods))
            mods.append(m)
        self.mods = nn.ModuleList(mods)
        self.ctx = ctx

    def forward(self, x):
        layers = [(name, kind, a, self.mods[j] if j >= 0 else None)
                  for (name, kind, a), j in zip(self.meta, self.index)]
        return torch_ref.forward(layers, x, self.ctx)


def fail(inpath, msg):
    raise SystemExit("ntk_ref.py: %s: %s" % (inpath, msg))


def relerr(a, b):
    """max |a - b| / max |b|."""
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / (scale if scale > 0 else 1.0)


def buffers_of(net):
    return [b.detach().clone() for b in net.buffers()]


def restore(net, saved):
    with torch.no_grad():
        for b, s in zip(net.buffers(), saved):
            b.copy_(s)


def loop_jacobian(net, x, params):
    """J (N*K, P): one forward of the batch in the net's mode, one backward
    per logit.  The buffers are restored afterwards."""
    saved = buffers_of(net)
    logits = net(x)
    n, k = logits.shape
    J = torch.zeros(n * k, sum(p.numel() for p in params), dtype=logits.dtype)
    for i in range(n):
        for c in range(k):
            g = torch.autograd.grad(logits[i, c], params, retain_graph=True,
                                    allow_unused=True)
            J[i * k + c] = torch.cat([(t if t is not None else torch.zeros_like(p)).reshape(-1)
                                      for t, p in zip(g, params)])
    restore(net, saved)
    return logits.detach(), J


def functorch_kernel_eval(net, x):
    """The functorch NTK tutorial's method: per-sample Jacobians by
    vmap(jacrev) of the one-sample function, contracted with einsum."""
    fnet, fparams, fbuffers = make_functional_with_buffers(net)

    def single(p, xi):
        return fnet(p, fbuffers, xi.unsqueeze(0)).squeeze(0)

    jac = vmap(jacrev(single), (None, 0))(fparams, x)
    n = x.shape[0]
    theta = sum(torch.einsum("iaf,jbf->iajb", j.reshape(n, j.shape[1], -1),
                             j.reshape(n, j.shape[1], -1)) for j in jac)
    k = theta.shape[1]
    return theta.reshape(n * k, n * k)


def functorch_kernel_batch(net, x):
    """jacrev of the whole-batch function (train-mode normalization) on a
    copy of the net whose BN layers do not track running statistics (a
    transformed function may not mutate its buffers; in train mode BN
    computes the same output either way)."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
    fnet, fparams, fbuffers = make_functional_with_buffers(net)
    jac = jacrev(lambda p: fnet(p, fbuffers, x))(fparams)
    n, k = jac[0].shape[:2]
    J = torch.cat([j.reshape(n * k, -1) for j in jac], dim=1)
    return J @ J.T


def fd_check(net, x, params, J, rng):
    """Central differences of the batch function along two random
    directions v against J v.  Outputs at a kink along v (the two one-sided
    differences disagree, e.g. FRN's TLU with tau = 0 before a ReLU) are
    left out.  Returns (largest relative error, outputs compared)."""
    worst, compared = 0.0, 0
    saved = buffers_of(net)
    orig = [p.detach().clone() for p in params]
    pnorm = torch.sqrt(sum((p * p).sum() for p in orig)).item()
    for _ in range(2):
        v = [torch.from_numpy(rng.standard_normal(p.shape)).to(p.dtype) for p in params]
        vnorm = torch.sqrt(sum((t * t).sum() for t in v)).item()
        eps = 1e-6 * max(1.0, pnorm) / vnorm
        outs = []
        for sgn in (1.0, 0.0, -1.0):
            with torch.no_grad():
                for p, o, t in zip(params, orig, v):
                    p.copy_(o + sgn * eps * t)
            outs.append(net(x).detach().reshape(-1))   # grad mode: some layers hook
            restore(net, saved)
        with torch.no_grad():
            for p, o in zip(params, orig):
                p.copy_(o)
        fwd, bwd = (outs[0] - outs[1]) / eps, (outs[1] - outs[2]) / eps
        fd = (fwd + bwd) / 2
        jv = J @ torch.cat([t.reshape(-1) for t in v])
        scale = jv.abs().max().item()
        smooth = (fwd - bwd).abs() <= 1e-4 * scale
        compared += int(smooth.sum().item())
        if smooth.any():
            worst = max(worst, (fd - jv)[smooth].abs().max().item() / scale)
    return worst, compared


def run(inpath, outpath):
    """One network: IN.h5 to OUT.h5."""
    with h5py.File(inpath, "r") as f:
        ntk_mode = torch_ref.text(f.attrs.get("ntk_mode", "eval"))
        kernel = torch_ref.text(f.attrs.get("kernel", "full"))
    if ntk_mode not in ("eval", "batch"):
        fail(inpath, "ntk_mode must be 'eval' or 'batch', not '%s'" % ntk_mode)
    if kernel not in ("full", "trace"):
        fail(inpath, "kernel must be 'full' or 'trace', not '%s'" % kernel)
    ctx, layers, batches, _ = torch_ref.load(inpath)
    ctx["train"] = ntk_mode == "batch"
    dtype = ctx["dtype"]
    f64 = dtype == torch.float64
    tol = 1e-10 if f64 else 1e-4
    net = Net(layers, ctx)
    net.train(ctx["train"])
    params = [p for p in net.parameters() if p.requires_grad]
    x = batches[0][0]
    before = buffers_of(net)

    logits, J = loop_jacobian(net, x, params)
    n, k = logits.shape
    theta = J @ J.T
    sq = (J * J).sum(1)

    if ntk_mode == "eval":
        checked = "functorch-vmap-jacrev"
        theta2 = functorch_kernel_eval(net, x)
    else:
        checked = "functorch-jacrev"
        try:
            theta2 = functorch_kernel_batch(net, x)
        except RuntimeError as e:
            # layers that update buffers of their own in train mode (BRN,
            # MABN, PowerNorm, ...) cannot run under a functorch transform
            print("ntk_ref.py: %s: no functorch check (%s)" % (inpath, str(e).split("\n")[0]),
                  file=sys.stderr)
            checked, theta2 = "none", theta
    fterr = relerr(theta2, theta) if checked != "none" else -1.0
    if not fterr < tol:
        fail(inpath, "%s kernel differs from the autograd loop's: relative %.3g" %
             (checked, fterr))
    fderr, fdcount = -1.0, 0
    if f64:
        fderr, fdcount = fd_check(net, x, params, J, np.random.default_rng(12345))
        if not fderr < 1e-6:
            fail(inpath, "finite differences disagree with the Jacobian: relative %.3g" % fderr)
        if fdcount == 0:
            fderr = -1.0
            print("ntk_ref.py: %s: no finite-difference check (every output at a kink)" %
                  inpath, file=sys.stderr)
    for b, s in zip(net.buffers(), before):
        if not torch.equal(b, s):
            fail(inpath, "a buffer changed during the NTK computation")
    if relerr(theta.T, theta) > (1e-13 if f64 else 1e-6):
        fail(inpath, "kernel not symmetric")
    if relerr(torch.diagonal(theta), sq) > (1e-13 if f64 else 1e-6):
        fail(inpath, "kernel diagonal differs from the Jacobian row norms")
    ev = torch.linalg.eigvalsh(theta.double())
    if ev[0].item() < -(1e-9 if f64 else 1e-4) * max(ev[-1].item(), 1e-300):
        fail(inpath, "kernel not positive semi-definite (eigenvalue %.3g, largest %.3g)" %
             (ev[0].item(), ev[-1].item()))

    out = theta if kernel == "full" else \
        theta.reshape(n, k, n, k).diagonal(dim1=1, dim2=3).sum(-1)
    with h5py.File(outpath, "w") as f:
        f["kernel"] = out.double().numpy()
        f["jac_sqnorm"] = sq.double().numpy()
        f["logits"] = logits.double().numpy()
        f.attrs["ntk_mode"] = ntk_mode
        f.attrs["kernel"] = kernel
        f.attrs["n"] = n
        f.attrs["k"] = k
        f.attrs["p"] = J.shape[1]
        f.attrs["dtype"] = "float64" if f64 else "float32"
        f.attrs["checked"] = checked
        f.attrs["functorch_relerr"] = fterr
        f.attrs["fd_relerr"] = fderr
        f.attrs["fd_outputs"] = fdcount
        f.attrs["source"] = inpath


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        raise SystemExit("usage: ntk_ref.py IN.h5 OUT.h5 [IN.h5 OUT.h5 ...]")
    torch.set_num_threads(1)
    for i in range(0, len(args), 2):
        run(args[i], args[i + 1])


if __name__ == "__main__":
    main()
