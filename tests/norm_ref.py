"""Small PyTorch references for normscope's normalization methods that
torch.nn does not have; tests/torch_ref.py builds networks from them.

Each module is written from the method's formulas as METHODS.md and the
comments of src/norm/*.c state them (paper equations where the method has
them; normscope's documented choices where it departs), with PyTorch's
tensor operations and autograd doing the work: nothing here follows the C
loops.  Where a method defines its own backward (MABN, PowerNorm) a
torch.autograd.Function implements that definition; everywhere else the
gradient is autograd's.

  BatchRenorm     Batch Renormalization (Ioffe 2017)
  BKN             Batch Kalman Normalization (Wang et al. 2018)
  MABN            Moving Average BN (Yan et al. 2020)
  PowerNorm       Power Normalization (Shen et al. 2020), Algorithm 1
  ReparamLinear,  dense/conv layers with a weight reparametrisation inside
  ReparamConv2d   the forward pass: CenConv, Weight Standardization, NF
                  nets' scaled WS with a learned gain
  Scale           MimicNorm's learnable residual-branch scalar
  agc_             adaptive gradient clipping (Brock et al. 2021)
  weight_mean_     MimicNorm's weight-mean projection
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def channel_dims(x):
    """The dimensions statistics run over: (N) or (N, H, W)."""
    return (0,) if x.dim() == 2 else (0, 2, 3)


def per_channel(v, x):
    """A per-channel vector shaped to broadcast against x."""
    return v.view((1, -1) + (1,) * (x.dim() - 2))


def link(module, name, other):
    """Keeps a reference to another module without registering it as a
    submodule (its parameters stay out of this module's parameters())."""
    object.__setattr__(module, name, other)


# --------------------------------------------------------- Batch Renorm

class BatchRenorm(nn.Module):
    """Batch Renormalization (Ioffe, NeurIPS 2017, Algorithm 1):
        xhat = r (x - mu_B) / sigma_B + d,
        r = clip(sigma_B / sigma, 1/rmax, rmax),
        d = clip((mu_B - mu) / sigma, -dmax, dmax),
    r and d held constant in the backward (stop_gradient in the paper).
    sigma_B = sqrt(var_B + eps) with the biased batch variance.  The running
    statistics follow normscope's documented choice (src/norm/batchnorm.c),
    PyTorch's BN convention rather than the paper's moving sigma:
    sigma = sqrt(running_var + eps), running_var the moving average of the
    unbiased batch variance with momentum m; r and d use the running
    statistics from before this batch's update.  limits() gives the current
    (rmax, dmax) of the schedule; eval mode is plain BN on the running
    statistics."""

    def __init__(self, c, eps, momentum, affine, limits):
        super().__init__()
        self.eps, self.momentum, self.limits = eps, momentum, limits
        self.weight = nn.Parameter(torch.ones(c)) if affine else None
        self.bias = nn.Parameter(torch.zeros(c)) if affine else None
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.register_buffer("num_batches_tracked", torch.zeros(1))
        self.last_r, self.last_d = [], []   # per forward chunk, for diagnostics

    def forward(self, x):
        if self.training:
            dims = channel_dims(x)
            count = x.numel() // x.shape[1]
            mu = x.mean(dims)
            var = x.var(dims, unbiased=False)
            sigma_b = torch.sqrt(var + self.eps)
            sigma = torch.sqrt(self.running_var + self.eps)
            rmax, dmax = self.limits()
            r = torch.clamp(sigma_b.detach() / sigma, 1.0 / rmax, rmax)
            d = torch.clamp((mu.detach() - self.running_mean) / sigma, -dmax, dmax)
            self.last_r.append(r)
            self.last_d.append(d)
            xhat = (x - per_channel(mu, x)) / per_channel(sigma_b, x) * per_channel(r, x) \
                + per_channel(d, x)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mu)
                self.running_var.mul_(1 - m).add_(m * var * count / (count - 1))
                self.num_batches_tracked += 1
        else:
            xhat = (x - per_channel(self.running_mean, x)) / \
                per_channel(torch.sqrt(self.running_var + self.eps), x)
        if self.weight is None:
            return xhat
        return per_channel(self.weight, x) * xhat + per_channel(self.bias, x)


def brn_limits(step, warmup, ramp, rmax=3.0, dmax=5.0):
    """The schedule of normscope's BRN (METHODS.md, registry.c): r = 1,
    d = 0 up to step `warmup`, then rmax 1 -> 3 and dmax 0 -> 5 linearly
    over `ramp` steps."""
    if step <= warmup:
        t = 0.0
    else:
        t = min(1.0, (step - warmup) / ramp) if ramp else 1.0
    return 1.0 + (rmax - 1.0) * t, dmax * t


# ------------------------------------------------------------------ BKN

class BKN(nn.Module):
    """Batch Kalman Normalization (Wang et al. 2018) as METHODS.md states it
    from the authors' code (KalmanNorm/kalman_norm.py and
    cifar-kn-microbatch.py).  The prediction for this layer: a pseudo-input
    S = ReLU(m + sqrt(v) eps), (m, v) the statistics flowing into this
    layer's weight layer (the estimate the BKN layer upstream made of its
    own input; after a residual add the SkipSum of both paths), pushed
    through that weight layer;
    (mhat, vhat) its moments per channel over (samples, H, W).  With the
    observed moments (mu, s2, biased) of each normalisation group:
        mu~ = p mhat + (1-p) mu
        s2~ = p vhat + (1-p) s2 + p (1-p) (mu - mhat)^2
    used when mean(vhat / (s2 + eps)) < 100 (the authors' guard; eps keeps
    a constant channel finite), else (mu, s2);
    y = gamma (x - mu~) / sqrt(s2~ + eps) + beta; running averages of
    (mu~, s2~) with decay 0.9.  Every group's (mu~, s2~) is handed on.

    predict "group" (the authors' code, as kalman_filter splits the batch
    into channels): group g's prediction is made from group g of the
    upstream estimate, with its own pseudo-input; one guard decision over
    all groups and channels; running averages of group 0's (mu~, s2~)
    only.  predict "last" (normscope's first reading): one prediction from
    the upstream estimate's last group serves every group, the guard per
    group, running averages over every group in turn.

    grad False (normscope's reading): the prediction is a constant for the
    gradient.  grad True: autograd through the prediction, as in the
    authors' TensorFlow graph: into the weight layer (the pseudo-input
    goes through the same module) and through the upstream estimate into
    the layers before.  The first BKN layer uses its batch statistics; on
    dense layers several pseudo-samples.  The eps ~ N(0, 1) draws are
    normscope's, given as data (`noise`, predictions x samples rows of the
    weight layer's inputs), so that both sides push the same pseudo-input."""

    def __init__(self, c, eps, p, group, predict="group", grad=False):
        super().__init__()
        if predict not in ("group", "last"):
            raise SystemExit("norm_ref.py: unknown BKN prediction mode '%s'" % predict)
        self.eps, self.p, self.group, self.decay = eps, p, group, 0.9
        self.per_group, self.grad = predict == "group", grad
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        link(self, "prev", None)       # where (m, v) come from: a BKN or a SkipSum
        link(self, "wl", None)         # the weight layer feeding this one
        self.wl_shape = None           # its input shape per sample (c, h, w)
        self.wl_is_conv = False
        self.noise = None
        self.est = None                # [(mu~, s2~)] per group
        self.mixed = []

    def predict(self, ngroups):
        """[(mhat, vhat)] per prediction (one per group, or one), or None."""
        if self.prev is None or self.prev.est is None or self.wl is None \
                or self.noise is None:
            return None
        est = self.prev.est
        if self.per_group and len(est) != ngroups:
            return None
        sources = est if self.per_group else est[-1:]
        rows = self.noise.shape[0] // len(sources)
        preds = []
        with torch.set_grad_enabled(self.grad and torch.is_grad_enabled()):
            for k, (m, v) in enumerate(sources):
                if not self.grad:
                    m, v = m.detach(), v.detach()
                noise = self.noise[k * rows:(k + 1) * rows]
                per = noise.shape[1] // m.numel()
                # input j of the weight layer belongs to channel j // per (NCHW)
                mean = m.repeat_interleave(per)
                std = torch.sqrt(torch.clamp(v, min=0)).repeat_interleave(per)
                s = F.relu(mean + std * noise)
                c, h, w = self.wl_shape
                out = self.wl(s.reshape(rows, c, h, w) if self.wl_is_conv else s)
                out = out.reshape(rows, out.shape[1], -1)
                preds.append((out.mean((0, 2)), out.var((0, 2), unbiased=False)))
        return preds

    def forward(self, x):
        if not self.training:
            return per_channel(self.weight, x) * (x - per_channel(self.running_mean, x)) \
                / per_channel(torch.sqrt(self.running_var + self.eps), x) \
                + per_channel(self.bias, x)
        n = x.shape[0]
        g = self.group if self.group and self.group < n else n
        chunks = torch.split(x, g)
        dims = channel_dims(x)
        mus = [chunk.mean(dims) for chunk in chunks]
        s2s = [chunk.var(dims, unbiased=False) for chunk in chunks]
        preds = self.predict(len(chunks))
        if preds is not None and self.per_group:
            ratios = [(vh.detach() / (s2.detach() + self.eps)) for (_, vh), s2 in zip(preds, s2s)]
            mix_all = bool(torch.cat(ratios).mean() < 100)
        outs, est, self.mixed = [], [], []
        for k, (chunk, mu, s2) in enumerate(zip(chunks, mus, s2s)):
            if preds is None:
                mix = False
            elif self.per_group:
                mix, (mh, vh) = mix_all, preds[k]
            else:
                mh, vh = preds[0]
                mix = bool((vh.detach() / (s2.detach() + self.eps)).mean() < 100)
            if mix:
                p = self.p
                mt = p * mh + (1 - p) * mu
                st = p * vh + (1 - p) * s2 + p * (1 - p) * (mu - mh) ** 2
            else:
                mt, st = mu, s2
            self.mixed.append(int(mix))
            outs.append(per_channel(self.weight, chunk) * (chunk - per_channel(mt, chunk))
                        / per_channel(torch.sqrt(st + self.eps), chunk)
                        + per_channel(self.bias, chunk))
            if k == 0 or not self.per_group:
                with torch.no_grad():
                    self.running_mean.mul_(self.decay).add_((1 - self.decay) * mt)
                    self.running_var.mul_(self.decay).add_((1 - self.decay) * st)
            est.append((mt, st) if self.grad else (mt.detach(), st.detach()))
        self.est = est
        return torch.cat(outs)


class SkipSum:
    """The statistics after a residual add, for the next BKN: the sums of
    the branch's and the skip path's (m, v) per group, as for the sum of
    independent inputs (normscope's reading of the authors' `m + m3,
    v + v3`)."""

    def __init__(self, branch, skip):
        self.branch, self.skip = branch, skip

    @property
    def est(self):
        if self.branch is None or self.skip is None:
            return None
        a, b = self.branch.est, self.skip.est
        if a is None or b is None or len(a) != len(b) or a[0][0].shape != b[0][0].shape:
            return None
        return [(ma + mb, va + vb) for (ma, va), (mb, vb) in zip(a, b)]


def bkn_default_p(group):
    """0.9 for normalisation groups of at most 16 samples, else 0.05."""
    return 0.9 if group and group <= 16 else 0.05


# ----------------------------------------------------------------- MABN

class _MABNPost(torch.autograd.Function):
    """MABN after warm-up.  Forward z = x / sqrt(var + eps),
    y = gamma r z + beta with var and r constants.  Backward (Yan et al.
    2020, the authors' code, as src/norm/mabn.c documents it):
        g = dy gamma r,  gz = E[g z] -> pushed into the S-slot buffer,
        dx = (g - z mean(buffer gz)) / sqrt(var + eps);
    dgamma = sum dy r z, dbeta = sum dy."""

    @staticmethod
    def forward(ctx, x, gamma, beta, r, var, module, slot):
        s = torch.sqrt(var + module.eps)
        z = x / per_channel(s, x)
        ctx.save_for_backward(z, gamma, r, s)
        ctx.module, ctx.slot = module, slot
        return per_channel(gamma * r, x) * z + per_channel(beta, x)

    @staticmethod
    def backward(ctx, dy):
        z, gamma, r, s = ctx.saved_tensors
        dims = channel_dims(z)
        g = dy * per_channel(gamma * r, z)
        with torch.no_grad():
            ctx.module.buffer_gz[ctx.slot] = (g * z).mean(dims)
            mgz = ctx.module.buffer_gz.mean(0)
        dx = (g - z * per_channel(mgz, z)) / per_channel(s, z)
        return dx, (dy * z).sum(dims) * r, dy.sum(dims), None, None, None, None


class MABN(nn.Module):
    """Moving Average Batch Normalization (Yan et al., ICLR 2020) as
    METHODS.md and src/norm/mabn.c document the authors' code: no
    centering; per iteration t (iters + 1) the batch's x2 = E[x^2] goes to
    slot t mod S of a buffer; var = x2 while t <= S or t < warm-up, else
    the buffer's mean; r = 1 for t <= max(1000, warm-up), else
    clamp(sqrt(var + eps) / sqrt(running_var + eps), 1/5, 5);
    y = gamma r x / sqrt(var + eps) + beta;
    running_var <- 0.98 running_var + 0.02 var.
    In warm-up (var = the batch's own x2, r = 1) the gradient is autograd's
    exact one, and E[g z] still enters the gradient buffer (a hook on y).
    Eval: y = gamma x / sqrt(running_var + eps) + beta."""

    def __init__(self, c, eps, S, warmup):
        super().__init__()
        self.eps, self.S, self.warmup, self.momentum = eps, S, warmup, 0.98
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.register_buffer("iters", torch.zeros(1))
        self.register_buffer("buffer_x2", torch.zeros(S, c))
        self.register_buffer("buffer_gz", torch.zeros(S, c))
        self.last_r = None

    def forward(self, x):
        gamma, beta = self.weight, self.bias
        if not self.training:
            return per_channel(gamma, x) * x / \
                per_channel(torch.sqrt(self.running_var + self.eps), x) + per_channel(beta, x)
        dims = channel_dims(x)
        t = int(self.iters.item()) + 1
        slot = t % self.S
        with torch.no_grad():
            self.iters.fill_(t)
            x2 = (x * x).mean(dims)
            self.buffer_x2[slot] = x2
        warm = t <= self.S or t < self.warmup
        var = x2 if warm else self.buffer_x2.mean(0)
        if t <= max(1000, self.warmup):
            r = torch.ones_like(var)
        else:
            r = torch.clamp(torch.sqrt(var + self.eps) /
                            torch.sqrt(self.running_var + self.eps), 0.2, 5.0)
        self.last_r = r
        with torch.no_grad():
            self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var)
        if not warm:
            return _MABNPost.apply(x, gamma, beta, r, var, self, slot)
        # warm-up: the exact gradient of gamma r x / sqrt(E[x^2] + eps)
        s = torch.sqrt((x * x).mean(dims) + self.eps)
        y = per_channel(gamma * r, x) * x / per_channel(s, x) + per_channel(beta, x)
        z = (x / per_channel(s, x)).detach()

        def push_gz(dy):
            with torch.no_grad():
                g = dy * per_channel(gamma * r, x)
                self.buffer_gz[slot] = (g * z).mean(dims)

        y.register_hook(push_gz)
        return y


# ------------------------------------------------------------ PowerNorm

class _PNPost(torch.autograd.Function):
    """PowerNorm after warm-up, Algorithm 1 of Shen et al. (ICML 2020):
    forward xhat = x / psi_{t-1}, y = gamma xhat + beta; backward
        dxhat = gamma dy,  xt = dxhat - nu_{t-1} xhat,  dx = xt / psi_{t-1},
        nu_t = nu_{t-1} (1 - (1 - alpha) E[xhat^2]) + (1 - alpha) E[xt xhat];
    dgamma = sum dy xhat, dbeta = sum dy."""

    @staticmethod
    def forward(ctx, x, gamma, beta, psi, module):
        xhat = x / per_channel(psi, x)
        ctx.save_for_backward(xhat, gamma, psi)
        ctx.module = module
        return per_channel(gamma, x) * xhat + per_channel(beta, x)

    @staticmethod
    def backward(ctx, dy):
        xhat, gamma, psi = ctx.saved_tensors
        dims = channel_dims(xhat)
        nu = ctx.module.nu
        dxhat = dy * per_channel(gamma, dy)
        xt = dxhat - per_channel(nu, xhat) * xhat
        ctx.module.update_nu(dxhat, xhat)
        return xt / per_channel(psi, xhat), (dy * xhat).sum(dims), dy.sum(dims), None, None


class PowerNorm(nn.Module):
    """Power Normalization (Shen et al., ICML 2020), Algorithm 1, with
    normscope's documented settings (src/norm/powernorm.c): alpha 0.9,
    psi = sqrt(phi2 + eps), the whole batch as one group.  Train:
    psi_B^2 = E[x^2]; before `warmup` iterations the batch's own psi_B
    normalises (and the gradient is autograd's exact one), afterwards the
    running psi_{t-1} with the approximate backward of _PNPost; then
    running_phi <- alpha running_phi + (1 - alpha) psi_B^2.  nu is tracked
    in warm-up too (a hook on y).  Eval: xhat = x / sqrt(running_phi + eps)."""

    def __init__(self, c, eps, warmup):
        super().__init__()
        self.eps, self.warmup, self.alpha = eps, warmup, 0.9
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_phi", torch.ones(c))
        self.register_buffer("nu", torch.zeros(c))
        self.register_buffer("iters", torch.zeros(1))

    def update_nu(self, dxhat, xhat):
        """nu <- nu (1 - (1-alpha) E[xhat^2]) + (1-alpha) E[(dxhat - nu xhat) xhat]."""
        with torch.no_grad():
            dims = channel_dims(xhat)
            nu = self.nu.clone()
            gamma2 = (xhat * xhat).mean(dims)
            lam = ((dxhat - per_channel(nu, xhat) * xhat) * xhat).mean(dims)
            self.nu.copy_(nu * (1 - (1 - self.alpha) * gamma2) + (1 - self.alpha) * lam)

    def forward(self, x):
        gamma, beta = self.weight, self.bias
        if not self.training:
            return per_channel(gamma, x) * x / \
                per_channel(torch.sqrt(self.running_phi + self.eps), x) + per_channel(beta, x)
        dims = channel_dims(x)
        warm = int(self.iters.item()) < self.warmup
        with torch.no_grad():
            phi_b = (x * x).mean(dims)
        if warm:
            psi = torch.sqrt((x * x).mean(dims) + self.eps)
            y = per_channel(gamma, x) * x / per_channel(psi, x) + per_channel(beta, x)
            xhat = (x / per_channel(psi, x)).detach()
            y.register_hook(lambda dy: self.update_nu(dy * per_channel(gamma, dy).detach(),
                                                      xhat))
        else:
            psi = torch.sqrt(self.running_phi + self.eps).clone()
            y = _PNPost.apply(x, gamma, beta, psi, self)
        with torch.no_grad():
            self.running_phi.mul_(self.alpha).add_((1 - self.alpha) * phi_b)
            self.iters += 1
        return y


# ------------------------------------------------ weight reparametrisations

RELU_GAIN = math.sqrt(2.0 / (1.0 - 1.0 / math.pi))


def reparam(w, rule, gain, gamma):
    """The weight a layer multiplies with, per output unit over its fan-in
    (as include/normscope/nn.h defines the rules):
      center       W - mean                                  (CenConv, MABN)
      standardize  (W - mean) / sqrt(var + 1e-5)             (WS; var biased)
      scaled       gain gamma (W - mean) / sqrt(n var + 1e-4)  (NF nets,
                   n the fan-in, gamma the ReLU gain when a ReLU feeds it)
    The statistics are part of the graph: gradients flow through them."""
    flat = w.reshape(w.shape[0], -1)
    centred = flat - flat.mean(1, keepdim=True)
    if rule == "center":
        out = centred
    elif rule == "standardize":
        out = centred / torch.sqrt(flat.var(1, unbiased=False, keepdim=True) + 1e-5)
    elif rule == "scaled":
        n = flat.shape[1]
        out = (gain * gamma).view(-1, 1) * centred / \
            torch.sqrt(n * flat.var(1, unbiased=False, keepdim=True) + 1e-4)
    else:
        raise ValueError("unknown weight rule '%s'" % rule)
    return out.reshape(w.shape)


class ReparamLinear(nn.Module):
    def __init__(self, nin, nout, rule, gamma):
        super().__init__()
        self.rule, self.gamma = rule, gamma
        self.weight = nn.Parameter(torch.zeros(nout, nin))
        self.bias = nn.Parameter(torch.zeros(nout))
        self.gain = nn.Parameter(torch.ones(nout)) if rule == "scaled" else None

    def forward(self, x):
        return F.linear(x, reparam(self.weight, self.rule, self.gain, self.gamma), self.bias)


class ReparamConv2d(nn.Module):
    def __init__(self, cin, cout, k, stride, padding, rule, gamma):
        super().__init__()
        self.rule, self.gamma, self.stride, self.padding = rule, gamma, stride, padding
        self.weight = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.gain = nn.Parameter(torch.ones(cout)) if rule == "scaled" else None

    def forward(self, x):
        w = reparam(self.weight, self.rule, self.gain, self.gamma)
        return F.conv2d(x, w, self.bias, stride=self.stride, padding=self.padding)


# ------------------------------------------------------------ MimicNorm

class Scale(nn.Module):
    """MimicNorm's learnable scalar at the end of a residual branch."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.weight


def weight_mean_(w):
    """MimicNorm's projection (Fei et al. 2021): W[o, :] -= mean_i W[o, i]
    over the fan-in, in place, outside autograd."""
    with torch.no_grad():
        flat = w.view(w.shape[0], -1)
        flat -= flat.mean(1, keepdim=True)


def agc_(w, lam):
    """Adaptive gradient clipping (Brock et al., ICML 2021), unit-wise: a
    row's gradient G_o is scaled to lam max(|W_o|, 1e-3) when its norm is
    larger."""
    with torch.no_grad():
        g = w.grad.view(w.shape[0], -1)
        wn = w.view(w.shape[0], -1).norm(dim=1).clamp(min=1e-3)
        gn = g.norm(dim=1)
        lim = lam * wn
        factor = torch.where(gn > lim, lim / gn, torch.ones_like(gn))
        g.mul_(factor.view(-1, 1))


# ------------------------------------------------ which layers take a rule

# method: (rule, pick) as the registry's flags say (src/norm/registry.c)
WEIGHT_RULES = {
    "mimic": ("mean", "mimic"),
    "wm": ("mean", "mimic"),
    "cenconv": ("center", "conv-else-hidden"),
    "mabn": ("center", "conv-else-hidden"),
    "ws": ("standardize", "conv-else-hidden"),
    "nf": ("scaled", "all-but-classifier"),
}


def weight_rule_layers(method, wm_all, kinds, fan_ins):
    """The rule of each layer (None for none) from the documented choice of
    layers (METHODS.md, include/normscope/norm.h): MimicNorm's weight mean
    on conv layers with fan-in > 50, or on the hidden dense layers of a
    network without conv (every conv/dense with wm_all); CenConv, WS and
    MABN on every conv, or the hidden dense layers of a conv-free network;
    scaled WS on every conv and dense layer but the classifier."""
    out = [None] * len(kinds)
    if method not in WEIGHT_RULES:
        return out
    rule, pick = WEIGHT_RULES[method]
    if rule == "mean" and wm_all:
        pick = "all"
    convs = [i for i, k in enumerate(kinds) if k == "conv"]
    denses = [i for i, k in enumerate(kinds) if k == "dense"]
    last = denses[-1] if denses else -1
    for i, k in enumerate(kinds):
        if k not in ("conv", "dense"):
            continue
        hidden = k == "dense" and i != last
        if pick == "all":
            take = True
        elif pick == "mimic":
            take = (k == "conv" and fan_ins[i] > 50) if convs else hidden
        elif pick == "conv-else-hidden":
            take = k == "conv" if convs else hidden
        else:
            take = k == "conv" or hidden
        out[i] = rule if take else None
    return out
