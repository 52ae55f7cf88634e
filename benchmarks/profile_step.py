"""Profile one stacked training step of the paper's model 1 on XLA:CPU and compare faster forms.

Paper model 1 (15x15x1 input, conv 32 -> ReLU -> maxpool 2 -> conv 64 -> ReLU -> maxpool 2/1 ->
dense 9 -> ReLU -> dense 1, 23,923 parameters, no conv bias), batch 64, float32, NAdam lr 1e-4 with
coupled L2 0.01, relative-MSE loss: the configuration of ``jrobust.zoo.paper_config(1)``.

What it does (every speed number is a ratio measured side by side in this one process, repeats
interleaved A, B, A, B, ...; the median and the best of the repeats are printed with the spread):

1. ``profile``: the HLO thunks of jrobust's real compiled stack trainer, timed by ``jax.profiler``
   and grouped by what they do (conv1/conv2 forward and backward, pooling, dense head, gather,
   optimizer, bookkeeping, evaluation), for a stack of 1 and 16;
2. ``pieces``: isolated jitted micro-benchmarks of each piece of one step;
3. ``variants``: one training step per form (pooling, convolution, how the stack runs, optimizer,
   gather, bookkeeping) at several stack sizes, with the ratio to today's code and to PyTorch;
4. ``eval``: the share of evaluation in a race-like training (2000 events x 3 epochs, 2000 tests);
5. ``best``: the combination of the winners against today's code and PyTorch;
6. ``env``: XLA flags (optimisation level, threading) and 2 host devices, in subprocesses;
7. a numerical check: every variant's loss, gradients and parameters after a few steps against
   today's formulation (relative tolerance 1e-5).

    python benchmarks/profile_step.py --quick            # ~3 minutes
    python benchmarks/profile_step.py --markdown out.md  # the full run, also written as Markdown
    python benchmarks/profile_step.py --sections variants --stacks 1 8 64
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import gzip
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

if __name__ == "__main__" and "--child" not in sys.argv:
    # The library of this checkout, not an installed copy.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

BATCH = 64
LR, L2 = 1e-4, 0.01
HYPER = dict(learning_rate=LR, weight_decay=0.0, l2=L2, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8)
OUT: list[str] = []  # Markdown lines


def say(line: str = "") -> None:
    print(line, flush=True)
    OUT.append(line)


# ===================================================================================== data
def make_data(n_events: int = 8192, seed: int = 0):
    """Random calorimeter-like inputs and a positive energy target, as ``jrobust._src.bench`` uses."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.5, 1.0, (n_events, 15, 15, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2, 3)) * rng.uniform(0.95, 1.05, n_events) + 1.0).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def batch_indices(stack: int, steps: int, n_events: int, seed: int = 1) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(0, n_events, (stack, steps, BATCH)), jnp.int32)


# ===================================================================================== layers
def conv_im2col(x, kernel):
    """Today's ``jrobust._src.models.layers.Conv`` (valid, stride 1): stack k*k slices on a new axis 3,
    one einsum contracting (p, c)."""
    k, _, c, f = kernel.shape
    oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
    patches = jnp.stack([x[:, i : i + oh, j : j + ow, :] for i in range(k) for j in range(k)], 3)
    return jnp.einsum("nhwpc,pcf->nhwf", patches, kernel.reshape(k * k, c, f))


def conv_im2col_flat(x, kernel):
    """im2col with the patches concatenated on the channel axis: one plain (N*H*W, k*k*C) x
    (k*k*C, F) dot per lane (same kernel order: (i, j, c))."""
    k, _, c, f = kernel.shape
    n, oh, ow = x.shape[0], x.shape[1] - k + 1, x.shape[2] - k + 1
    patches = jnp.concatenate(
        [x[:, i : i + oh, j : j + ow, :] for i in range(k) for j in range(k)], -1
    )
    y = jnp.dot(patches.reshape(n * oh * ow, k * k * c), kernel.reshape(k * k * c, f))
    return y.reshape(n, oh, ow, f)


def conv_shifted(x, kernel):
    """A sum of k*k shifted matmuls: no patch tensor."""
    k = kernel.shape[0]
    oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
    y = None
    for i in range(k):
        for j in range(k):
            t = jnp.einsum("nhwc,cf->nhwf", x[:, i : i + oh, j : j + ow, :], kernel[i, j])
            y = t if y is None else y + t
    return y


def conv_xla(x, kernel):
    """``lax.conv_general_dilated`` (vmapped over a stack it becomes a grouped convolution)."""
    return lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def conv_patches(x, kernel):
    """``lax.conv_general_dilated_patches`` then one dot (its patch order is (c, i, j))."""
    k, _, c, f = kernel.shape
    p = lax.conv_general_dilated_patches(
        x, (k, k), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    n, oh, ow, _ = p.shape
    w = kernel.transpose(2, 0, 1, 3).reshape(c * k * k, f)
    return jnp.dot(p.reshape(n * oh * ow, c * k * k), w).reshape(n, oh, ow, f)


CONVS = {
    "im2col": conv_im2col,
    "im2col_flat": conv_im2col_flat,
    "shifted": conv_shifted,
    "xla": conv_xla,
    "patches": conv_patches,
}


def _out_size(n, size, stride):
    return (n - size) // stride + 1


def pool_slices(x, size, stride):
    """Today's ``jrobust._src.models.layers.max_pool``: a maximum of strided slices."""
    oh, ow = _out_size(x.shape[1], size, stride), _out_size(x.shape[2], size, stride)
    out = None
    for i in range(size):
        for j in range(size):
            s = x[
                :, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride, :
            ]
            out = s if out is None else jnp.maximum(out, s)
    return out


def pool_reduce_window(x, size, stride):
    """``lax.reduce_window`` (its gradient is select-and-scatter)."""
    return lax.reduce_window(
        x, -jnp.inf, lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID"
    )


def pool_reshape(x, size, stride):
    """stride == size: crop, reshape to windows and max over them; otherwise shifted maxima."""
    if stride != size:
        return pool_slices(x, size, stride)
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    xr = x[:, : oh * size, : ow * size, :].reshape(n, oh, size, ow, size, c)
    return xr.max(axis=(2, 4))


def _window_views(x, size, stride, oh, ow):
    return [
        x[:, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride, :]
        for i in range(size)
        for j in range(size)
    ]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def pool_mask(x, size, stride):
    """Max pooling whose backward sends each output's gradient to the first maximum of its window
    (an argmax mask built from equalities, as PyTorch's MaxPool2d): no select-and-scatter, no
    scatter, no divisions. Same value as ``pool_slices``; same gradient except at exact ties."""
    return pool_reshape(x, size, stride)


def _pool_mask_fwd(x, size, stride):
    out = pool_reshape(x, size, stride)
    return out, (x, out)


def _pool_mask_bwd(size, stride, res, g):
    x, out = res
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    taken = None
    parts = []
    for v in _window_views(x, size, stride, oh, ow):
        hit = v == out
        first = hit if taken is None else hit & ~taken
        taken = hit if taken is None else taken | hit
        parts.append(jnp.where(first, g, 0.0))
    if stride == size:
        # Windows tile the cropped map: interleave the parts back (a reshape, no pad per part).
        d = jnp.stack(parts, 0).reshape(size, size, n, oh, ow, c)
        d = d.transpose(2, 3, 0, 4, 1, 5).reshape(n, oh * size, ow * size, c)
        dx = jnp.pad(d, ((0, 0), (0, h - oh * size), (0, w - ow * size), (0, 0)))
    else:
        dx = None
        views = [(i, j) for i in range(size) for j in range(size)]
        for (i, j), p in zip(views, parts, strict=True):
            hi_h = h - (i + (oh - 1) * stride + 1)
            hi_w = w - (j + (ow - 1) * stride + 1)
            p = lax.pad(
                p,
                jnp.float32(0),
                ((0, 0, 0), (i, hi_h, stride - 1), (j, hi_w, stride - 1), (0, 0, 0)),
            )
            dx = p if dx is None else dx + p
    return (dx,)


pool_mask.defvjp(_pool_mask_fwd, _pool_mask_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def pool_mask_pad(x, size, stride):
    """Like ``pool_mask`` but the backward is a sum of (strided) pads of the masked parts."""
    return pool_reshape(x, size, stride)


def _pool_mask_pad_bwd(size, stride, res, g):
    x, out = res
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    taken = None
    dx = None
    k = 0
    for i in range(size):
        for j in range(size):
            v = _window_views(x, size, stride, oh, ow)[k]
            k += 1
            hit = v == out
            first = hit if taken is None else hit & ~taken
            taken = hit if taken is None else taken | hit
            p = jnp.where(first, g, 0.0)
            hi_h = h - (i + (oh - 1) * stride + 1)
            hi_w = w - (j + (ow - 1) * stride + 1)
            p = lax.pad(
                p,
                jnp.float32(0),
                ((0, 0, 0), (i, hi_h, stride - 1), (j, hi_w, stride - 1), (0, 0, 0)),
            )
            dx = p if dx is None else dx + p
    return (dx,)


pool_mask_pad.defvjp(_pool_mask_fwd, _pool_mask_pad_bwd)

POOLS = {
    "slices": pool_slices,
    "reduce_window": pool_reduce_window,
    "reshape": pool_reshape,
    "mask": pool_mask,
    "mask_pad": pool_mask_pad,
}


# ===================================================================================== model 1
PARAM_SHAPES = {
    "Conv_0": {"kernel": (3, 3, 1, 32)},
    "Conv_1": {"kernel": (3, 3, 32, 64)},
    "Dense_0": {"kernel": (576, 9), "bias": (9,)},
    "Dense_1": {"kernel": (9, 1), "bias": (1,)},
}


def init_params(key):
    """He-normal kernels, zero biases: the same pytree (and values) as jrobust's flax model 1."""
    from jrobust import zoo
    from jrobust._src.models.contract import make_model

    model = make_model(zoo.paper_config(1, side_features=()), "im2col")
    return model.init(key, jnp.zeros((2, 15, 15, 1), jnp.float32))["params"]


def forward(params, x, conv="im2col", pool="slices", pool1=None):
    """Plain-JAX model 1 with pluggable convolution and pooling forms."""
    cf, pf = CONVS[conv], POOLS[pool]
    p1 = POOLS[pool1] if pool1 else pf
    with jax.named_scope("conv1"):
        h = jax.nn.relu(cf(x, params["Conv_0"]["kernel"]))
    with jax.named_scope("pool1"):
        h = p1(h, 2, 2)
    with jax.named_scope("conv2"):
        h = jax.nn.relu(cf(h, params["Conv_1"]["kernel"]))
    with jax.named_scope("pool2"):
        h = pf(h, 2, 1)
    with jax.named_scope("dense"):
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(h @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
        return h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]


def flax_forward(conv_impl="im2col"):
    """Today's model: jrobust's flax module of ``paper_config(1)``."""
    from jrobust import zoo
    from jrobust._src.models.contract import make_model

    model = make_model(zoo.paper_config(1, side_features=()), conv_impl)
    return lambda params, x: model.apply({"params": params}, x, train=True)[0]


def rel_mse(pred, y):
    """jrobust's ``relative_mse`` training loss."""
    return jnp.mean(((pred[:, 0] - y) / y) ** 2)


# ===================================================================================== optimizers
def optax_nadam():
    """Today's optimizer: ``jrobust._src.optim.make_optimizer('nadam')`` (inject_hyperparams chain)."""
    from jrobust._src.optim import init_with, make_optimizer

    tx = make_optimizer("nadam", schedule="constant", total_steps=1)

    def init(params, hyper):
        return init_with(tx, params, hyper)

    def update(grads, state, params, hyper):
        del hyper  # carried in the state
        upd, state = tx.update(grads, state, params)
        return jax.tree.map(jnp.add, params, upd), state

    return init, update


def _nadam_leaf(g, p, mu, nu, count_inc, h):
    """optax's NAdam (scale_by_adam(nesterov=True)) with coupled L2 before it and decoupled weight
    decay after it, scaled by -lr: the same operations in the same order as today's chain."""
    b1, b2 = h["b1"], h["b2"]
    g = g + h["l2"] * p
    mu = (1 - b1) * g + b1 * mu
    nu = (1 - b2) * (g**2) + b2 * nu
    c = count_inc.astype(jnp.float32)
    mu_hat = b1 * (mu / (1 - b1 ** (c + 1))) + (1 - b1) * (g / (1 - b1**c))
    nu_hat = nu / (1 - b2**c)
    u = mu_hat / (jnp.sqrt(nu_hat + 0.0) + h["eps"])
    u = u + h["weight_decay"] * p
    u = u * (-h["learning_rate"] * 1.0)
    return p + u, mu, nu


def fused_nadam_tree():
    """Hand-fused NAdam on the parameter pytree: no inject_hyperparams, scalars passed per lane."""

    def init(params, hyper):
        z = jax.tree.map(jnp.zeros_like, params)
        return (jnp.zeros((), jnp.int32), z, z)

    def update(grads, state, params, hyper):
        count, mu, nu = state
        count_inc = count + 1
        out = jax.tree.map(
            lambda g, p, m, v: _nadam_leaf(g, p, m, v, count_inc, hyper), grads, params, mu, nu
        )
        istuple = lambda t: isinstance(t, tuple)
        new_p = jax.tree.map(lambda t: t[0], out, is_leaf=istuple)
        new_mu = jax.tree.map(lambda t: t[1], out, is_leaf=istuple)
        new_nu = jax.tree.map(lambda t: t[2], out, is_leaf=istuple)
        return new_p, (count_inc, new_mu, new_nu)

    return init, update


# ===================================================================================== trainers
class Variant:
    """One formulation of a stacked training step of model 1.

    model: "flax" (today's module) or "plain"; conv/pool: forms above (plain only);
    opt: "optax" (today), "fused" (pytree) or "flat" (one raveled vector in the carry);
    keep: the per-lane ``jnp.where(active, new, old)`` on every carry leaf (today: yes);
    gather: "scan" (index the population inside the step, today) or "epoch" (pre-gathered);
    stack: "vmap" (today) or "map<s>" (lax.map over sub-stacks of s lanes, vmap inside).
    """

    def __init__(
        self,
        name,
        model="flax",
        conv="im2col",
        pool="slices",
        pool1=None,
        opt="optax",
        keep=True,
        gather="scan",
        stack="vmap",
        conv_impl="im2col",
    ):
        self.name, self.model, self.conv, self.pool, self.pool1 = name, model, conv, pool, pool1
        self.opt, self.keep, self.gather, self.stack, self.conv_impl = (
            opt,
            keep,
            gather,
            stack,
            conv_impl,
        )

    def fwd(self):
        if self.model == "flax":
            return flax_forward(self.conv_impl)
        return functools.partial(forward, conv=self.conv, pool=self.pool, pool1=self.pool1)

    def optimizer(self):
        return optax_nadam() if self.opt == "optax" else fused_nadam_tree()

    def build(self, steps: int, jit: bool = True):
        """``train(params, hyper, idx, x, y) -> (params, losses)`` for a stack: ``params`` and
        ``hyper`` have a leading stack axis, ``idx`` is ``(S, steps, BATCH)``."""
        fwd = self.fwd()
        opt_init, opt_update = self.optimizer()
        flat = self.opt == "flat"

        def loss_fn(p, xb, yb):
            pred = fwd(p, xb)
            with jax.named_scope("loss"):
                return rel_mse(pred, yb)

        def train_one(params, hyper, idx, x, y):
            if flat:
                from jax.flatten_util import ravel_pytree

                vec, unravel = ravel_pytree(params)
                carry0 = (vec, (jnp.zeros((), jnp.int32), jnp.zeros_like(vec), jnp.zeros_like(vec)))
            else:
                carry0 = (params, opt_init(params, hyper))
            active = jnp.array(True)

            def step(carry, batch):
                p, s = carry
                if self.gather == "scan":
                    with jax.named_scope("gather"):
                        xb, yb = x[batch], y[batch]
                else:
                    xb, yb = batch
                if flat:
                    loss, g = jax.value_and_grad(lambda v: loss_fn(unravel(v), xb, yb))(p)
                    count, mu, nu = s
                    with jax.named_scope("opt"):
                        new_p, mu, nu = _nadam_leaf(g, p, mu, nu, count + 1, hyper)
                    new_s = (count + 1, mu, nu)
                else:
                    loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
                    with jax.named_scope("opt"):
                        new_p, new_s = opt_update(g, s, p, hyper)
                if self.keep:
                    with jax.named_scope("keep"):
                        keep = lambda a, b: jax.tree.map(lambda u, v: jnp.where(active, u, v), a, b)
                        new_p, new_s = keep(new_p, p), keep(new_s, s)
                return (new_p, new_s), loss

            xs = idx if self.gather == "scan" else (x[idx], y[idx])
            (p, _), losses = lax.scan(step, carry0, xs)
            if flat:
                p = unravel(p)
            return p, losses

        def train(params, hyper, idx, x, y):
            one = jax.vmap(train_one, in_axes=(0, 0, 0, None, None))
            if self.stack == "vmap":
                return one(params, hyper, idx, x, y)
            sub = int(self.stack[3:])
            n = jax.tree.leaves(params)[0].shape[0]
            if n % sub:
                raise ValueError(f"stack {n} is not a multiple of {sub}")
            split = lambda a: a.reshape(n // sub, sub, *a.shape[1:])
            args = jax.tree.map(split, (params, hyper, idx))
            out = lax.map(lambda a: one(*a, x, y), args)
            return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)

        return jax.jit(train) if jit else train


def stacked_params(stack: int, seed: int = 0):
    keys = jax.random.split(jax.random.key(seed), stack)
    return jax.vmap(init_params)(keys)


def stacked_hyper(stack: int):
    return {k: jnp.full((stack,), v, jnp.float32) for k, v in HYPER.items()}


# ===================================================================================== timing
def interleaved(cands: dict[str, Callable[[], float]], repeats: int) -> dict[str, dict]:
    """Call every candidate ``repeats`` times in turn (A, B, A, B, ...); each call returns its wall
    seconds (and the process CPU seconds are read around it). Returns per candidate the median,
    best and spread (max/min) of the wall seconds, and the median CPU seconds."""
    times = {k: [] for k in cands}
    cpu = {k: [] for k in cands}
    for _ in range(repeats):
        for k, f in cands.items():
            c0 = time.process_time()
            times[k].append(f())
            cpu[k].append(time.process_time() - c0)
    return {
        k: {
            "median": statistics.median(v),
            "best": min(v),
            "spread": max(v) / min(v),
            "all": v,
            "cpu": statistics.median(cpu[k]),
        }
        for k, v in times.items()
    }


def timed(f, *args):
    def run():
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        return time.perf_counter() - t0

    return run


def steps_for(stack: int, work: int) -> int:
    return int(max(3, min(60, math.ceil(work / stack))))


# ===================================================================================== PyTorch
def torch_runner(steps: int, threads: int = 2):
    """PyTorch one instance at a time (``torch_reference.build_model1``, NAdam lr 1e-4, coupled L2
    0.01, batch 64, relative MSE), a fresh instance per call; returns the timed ``run``."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from jrobust._src.torch_reference import build_model1

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((8192, 1, 15, 15), generator=gen)
    y = x.sum((1, 2, 3)) + 1.0

    def run():
        model = build_model1()
        opt = torch.optim.NAdam(model.parameters(), lr=LR, weight_decay=L2)
        perm = torch.randint(0, 8192, (steps + 5, BATCH), generator=gen)
        for s in range(5):  # warm-up, not timed
            idx = perm[s]
            opt.zero_grad(set_to_none=True)
            # same loss as jrobust's relative_mse
            loss = (((model(x[idx])[:, 0] - y[idx]) / y[idx]) ** 2).mean()
            loss.backward()
            opt.step()
        t0 = time.perf_counter()
        for s in range(5, steps + 5):
            idx = perm[s]
            opt.zero_grad(set_to_none=True)
            loss = (((model(x[idx])[:, 0] - y[idx]) / y[idx]) ** 2).mean()
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    return run


def torch_worker(steps: int, threads: int = 2) -> None:
    """``--child torch``: a PyTorch process of its own (its thread pool never meets XLA's); each
    line on stdin runs one fresh instance for ``steps`` steps and prints the seconds."""
    run = torch_runner(steps, threads)
    for _ in sys.stdin:
        print(run(), flush=True)


class TorchProcess:
    """The parent's handle on ``torch_worker``: calling it times one instance in the worker (the
    parent waits idle meanwhile, so the two processes never share the cores)."""

    def __init__(self, steps: int, threads: int = 2):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            "torch",
            "--torch-steps",
            str(steps),
            "--stacks",
            str(threads),
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self()  # warm-up

    def __call__(self) -> float:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def have_torch() -> bool:
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False


# ===================================================================================== HLO profile
def _hlo_index(hlo_text: str) -> dict[str, dict]:
    """Instruction name -> {shape, op, op_names} of an optimized HLO module's text; a fusion's
    op_names are those of the instructions of its fused computation."""
    comps: dict[str, list[str]] = {}
    instr: dict[str, dict] = {}
    current = None
    for line in hlo_text.splitlines():
        s = line.strip()
        if not s:
            continue
        if (
            (s.startswith("%") or s.startswith("ENTRY"))
            and s.endswith("{")
            and "=" not in s.split("(")[0]
        ):
            current = s.split()[1 if s.startswith("ENTRY") else 0].lstrip("%")
            comps[current] = []
            continue
        if s == "}":
            current = None
            continue
        if "=" not in s:
            continue
        lhs, rhs = s.split("=", 1)
        name = lhs.replace("ROOT", "").strip().lstrip("%")
        rhs = rhs.strip()
        op_names = []
        if 'op_name="' in rhs:
            op_names.append(rhs.split('op_name="', 1)[1].split('"', 1)[0])
        head = rhs.split("(", 1)[0]  # "f32[64,9]{1,0} fusion"
        parts = head.rsplit(" ", 1)
        shape, op = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        calls = (
            rhs.split("calls=", 1)[1].split(",", 1)[0].strip().lstrip("%")
            if "calls=" in rhs
            else None
        )
        kind = rhs.split("kind=", 1)[1].split(",", 1)[0] if "kind=" in rhs else ""
        instr[name] = {"shape": shape, "op": op, "op_names": op_names, "calls": calls, "kind": kind}
        if current is not None:
            comps[current].append(name)
    for info in instr.values():
        if info["calls"] and info["calls"] in comps:
            inner = [instr[n] for n in comps[info["calls"]] if n in instr]
            info["op_names"] = info["op_names"] + [o for i in inner for o in i["op_names"]]
            info["inner_ops"] = collections.Counter(i["op"] for i in inner)
    return instr


def _dot_piece(shape: str) -> str | None:
    """Model 1's matrix products by their output shape (XLA drops the source of the dots it
    rewrites): rows are events x pixels, so conv1 has 169 (13x13) and conv2 16 (4x4) per event."""
    try:
        dims = [int(d) for d in shape.split("[", 1)[1].split("]", 1)[0].split(",") if d]
    except (IndexError, ValueError):
        return None
    if len(dims) < 2:
        return None
    a, b = dims[-2], dims[-1]
    pair = {a, b}
    if pair == {32, 9}:
        return "conv1 bwd"
    if pair == {64, 288}:
        return "conv2 bwd"
    if 288 in pair and (a * b // 288) % 16 == 0:
        return "conv2 bwd"
    if 32 in pair and (a * b // 32) % 169 == 0:
        return "conv1 fwd"
    if 64 in pair and (a * b // 64) % 16 == 0 and 576 not in pair:
        return "conv2 fwd"
    if pair & {9, 576, 1}:
        return "dense head"
    return None


def _param_shaped(shape: str) -> bool:
    try:
        dims = tuple(int(d) for d in shape.split("[", 1)[1].split("]", 1)[0].split(",") if d)
    except (IndexError, ValueError):
        return False
    for want in (
        (3, 3, 1, 32),
        (3, 3, 32, 64),
        (576, 9),
        (9, 1),
        (9,),
        (288, 64),
        (9, 32),
        (23923,),
    ):
        if dims[-len(want) :] == want:
            return True
    return False


PIECES = (
    ("conv1", "conv1"),
    ("Conv_0", "conv1"),
    ("conv2", "conv2"),
    ("Conv_1", "conv2"),
    ("pool1", "pooling"),
    ("pool2", "pooling"),
    ("dense", "dense head"),
    ("Dense", "dense head"),
    ("_CNNModule", "pooling + relu (flax)"),
    ("/opt", "optimizer"),
    ("scale_by", "optimizer"),
    ("/keep", "where(active) bookkeeping"),
    ("/gather", "mini-batch gather"),
    ("/loss", "loss"),
    ("/eval", "evaluation"),
)


def classify(op_names: list[str], op: str, shape: str) -> str:
    """The piece of the model-1 step an HLO thunk belongs to, from the JAX/flax op names (named
    scopes), then the shape of a dot; a thunk with any backward op counts as backward."""
    if op in ("dot", "fusion") and (not op_names or all("dot_general" in o for o in op_names)):
        piece = _dot_piece(shape)
        if piece:
            return piece
    if not op_names:
        return "other (no source)"
    back = any("transpose(" in o for o in op_names)
    votes = collections.Counter()
    for o in op_names:
        for key, piece in PIECES:
            if key in o:
                votes[piece] += 1
                break
        else:
            votes["other"] += 1
    piece = votes.most_common(1)[0][0]
    if piece == "other":
        if op == "gather" or "gather" in str(op_names):
            return "mini-batch gather"
        if _param_shaped(shape):
            return "optimizer + where(active) (parameter-shaped)"
    if piece in ("conv1", "conv2", "pooling", "dense head", "pooling + relu (flax)"):
        piece += " bwd" if back else " fwd"
    return piece


def thunk_profile(fn, args, hlo_text: str, n_calls: int = 1) -> list[dict]:
    """Run ``fn(*args)`` under ``jax.profiler`` and return per-HLO-thunk total microseconds,
    counts and the HLO facts of each thunk (the XLA:CPU thunk runtime traces every thunk)."""
    index = _hlo_index(hlo_text)
    d = tempfile.mkdtemp(prefix="jrobust_prof_")
    jax.block_until_ready(fn(*args))
    with jax.profiler.trace(d, create_perfetto_trace=True):
        for _ in range(n_calls):
            jax.block_until_ready(fn(*args))
    path = glob.glob(os.path.join(d, "**", "*.json.gz"), recursive=True)[0]
    with gzip.open(path) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    tot, cnt = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("name") in index:
            tot[e["name"]] += e.get("dur", 0)
            cnt[e["name"]] += 1
    rows = []
    for name, us in tot.items():
        info = index[name]
        if info["op"] == "while":
            continue  # a loop's duration contains its body's thunks
        rows.append(
            {
                "thunk": name,
                "us": us,
                "count": cnt[name],
                "op": info["op"],
                "shape": info["shape"],
                "kind": info.get("kind", ""),
                "inner": dict(info.get("inner_ops", {})),
                "piece": classify(info["op_names"], info["op"], info["shape"]),
            }
        )
    rows.sort(key=lambda r: -r["us"])
    return rows


# ===================================================================================== variants
def variant_set(quick: bool) -> list[Variant]:
    """The forms compared in ``variants`` (today's code first)."""
    best = dict(model="plain", conv="im2col_flat", pool="mask")
    vs = [
        Variant("today (flax im2col, slice pool, optax, where, vmap)"),
        Variant("pool: reduce_window", model="plain", pool="reduce_window"),
        Variant("pool: reshape (2x2/2) + shifted max (2x2/1)", model="plain", pool="reshape"),
        Variant("pool: custom_vjp argmax mask", model="plain", pool="mask"),
        Variant("conv: im2col flat (one (NHW,9C)x(9C,F) dot)", model="plain", conv="im2col_flat"),
        Variant("conv: 9 shifted matmuls", model="plain", conv="shifted"),
        Variant("conv: conv_general_dilated_patches", model="plain", conv="patches"),
        Variant("conv: lax.conv (grouped under vmap)", model="plain", conv="xla"),
        Variant("flat conv + reshape pool", model="plain", conv="im2col_flat", pool="reshape"),
        Variant("flat conv + mask pool", **best),
        Variant("flat+mask, fused NAdam (pytree)", opt="fused", **best),
        Variant("flat+mask, flat NAdam (1 raveled leaf)", opt="flat", **best),
        Variant("flat+mask, no where(active)", keep=False, **best),
        Variant("flat+mask, epoch pre-gather", gather="epoch", **best),
        Variant("flat+mask, lax.map s=1", stack="map1", **best),
        Variant("flat+mask, lax.map s=2", stack="map2", **best),
        Variant("flat+mask, lax.map s=4", stack="map4", **best),
        Variant("flat+mask, lax.map s=8", stack="map8", **best),
        Variant(
            "BEST: flat+mask, flat NAdam, no where, map s=1",
            opt="flat",
            keep=False,
            stack="map1",
            **best,
        ),
        Variant(
            "BEST: flat+mask, flat NAdam, no where, map s=2",
            opt="flat",
            keep=False,
            stack="map2",
            **best,
        ),
        Variant(
            "BEST: flat+mask, flat NAdam, no where, map s=4",
            opt="flat",
            keep=False,
            stack="map4",
            **best,
        ),
    ]
    if quick == "final":
        keep = {0, 9, 14, 15, 18, 19}
        vs = [v for i, v in enumerate(vs) if i in keep]
    elif quick:
        keep = {0, 3, 4, 9, 11, 12, 14, 18}
        vs = [v for i, v in enumerate(vs) if i in keep]
    return vs


def usable(v: Variant, stack: int) -> bool:
    if v.stack.startswith("map") and (int(v.stack[3:]) > stack or stack % int(v.stack[3:])):
        return False
    if v.conv == "xla" and stack > 8:
        return False  # ~10x slower: not worth the minutes at large stacks
    return True


def run_variants(stacks, work, repeats, quick, torch_steps) -> list[dict]:
    x, y = make_data()
    torch_runs = {}
    if have_torch():
        torch_runs = {
            "PyTorch one at a time, 2 threads": TorchProcess(torch_steps, 2),
            "PyTorch one at a time, 1 thread": TorchProcess(torch_steps, 1),
        }
    rows = []
    for stack in stacks:
        steps = steps_for(stack, work)
        P, H, idx = (
            stacked_params(stack),
            stacked_hyper(stack),
            batch_indices(stack, steps, x.shape[0]),
        )
        cands, compile_s, names = {}, {}, []
        for v in variant_set(quick):
            if not usable(v, stack):
                continue
            f = v.build(steps)
            t0 = time.perf_counter()
            f = f.lower(P, H, idx, x, y).compile()
            compile_s[v.name] = time.perf_counter() - t0
            jax.block_until_ready(f(P, H, idx, x, y))
            cands[v.name] = timed(f, P, H, idx, x, y)
            names.append(v.name)
        cands.update(torch_runs)
        res = interleaved(cands, repeats)
        # PyTorch's reference: its best repeat (its OpenMP threads collapse whenever another user
        # takes a core, so its median is not a fair number on a shared machine), 2 threads.
        tk = "PyTorch one at a time, 2 threads"
        t_torch = res[tk]["best"] / torch_steps if torch_runs else None
        t_today = res[names[0]]["median"] / (stack * steps)
        for k, r in res.items():
            n = torch_steps if k.startswith("PyTorch") else stack * steps
            per = (r["best"] if k.startswith("PyTorch") else r["median"]) / n
            rows.append(
                {
                    "stack": stack,
                    "variant": k,
                    "steps": steps if n != torch_steps else torch_steps,
                    "inst_steps_s": 1 / per,
                    "best_inst_steps_s": n / r["best"],
                    "spread": r["spread"],
                    "cpu_ms_per_step": 1e3 * r["cpu"] / n,
                    "vs_today": t_today / per,
                    "vs_torch": (t_torch / per) if t_torch else float("nan"),
                    "compile_s": compile_s.get(k, float("nan")),
                }
            )
        print(f"  stack {stack}: done ({len(cands)} candidates x {repeats} repeats)", flush=True)
    for t in torch_runs.values():
        t.close()
    return rows


def print_variant_table(rows) -> None:
    stacks = sorted({r["stack"] for r in rows})
    names = list(dict.fromkeys(r["variant"] for r in rows))
    by = {(r["variant"], r["stack"]): r for r in rows}
    say(
        "Instance-steps/s (median of the interleaved repeats; PyTorch: its best repeat) and, in "
        "brackets, the ratio to today's code / to PyTorch one-at-a-time (2 threads, best repeat) "
        "measured in the same interleaved pool:"
    )
    say()
    say("| variant | " + " | ".join(f"stack {s}" for s in stacks) + " |")
    say("|---|" + "---:|" * len(stacks))
    for n in names:
        cells = []
        for s in stacks:
            r = by.get((n, s))
            cells.append(
                ""
                if r is None
                else f"{r['inst_steps_s']:.0f} ({r['vs_today']:.2f}x / {r['vs_torch']:.2f}x)"
            )
        say(f"| {n} | " + " | ".join(cells) + " |")
    say()
    say(
        "Best repeat (instance-steps/s); noise: max/min wall time over the repeats of each "
        "candidate; CPU ms of the process per instance-step (all threads; less sensitive to "
        "other users of the cores); compile seconds:"
    )
    say()
    say("| variant | " + " | ".join(f"stack {s}" for s in stacks) + " |")
    say("|---|" + "---:|" * len(stacks))
    for n in names:
        cells = []
        for s in stacks:
            r = by.get((n, s))
            cells.append(
                ""
                if r is None
                else (
                    f"best {r['best_inst_steps_s']:.0f}, x{r['spread']:.2f}, "
                    f"{r['cpu_ms_per_step']:.1f} ms cpu, {r['compile_s']:.1f} s"
                )
            )
        say(f"| {n} | " + " | ".join(cells) + " |")
    say()


# ===================================================================================== numerics
def rel_err(a, b) -> float:
    """max |a - b| / max |b| over every leaf (each leaf on its own scale), the largest."""
    out = 0.0
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        scale = float(jnp.max(jnp.abs(v)))
        out = max(out, float(jnp.max(jnp.abs(u - v))) / (scale if scale > 0 else 1.0))
    return out


def check_numerics(quick: bool, tol: float = 1e-5) -> list[dict]:
    """Every variant against today's formulation: the loss and gradient of one batch (model forms),
    the parameter change of one step (optimizer forms) and losses / parameters after 8 steps."""
    x, y = make_data(2048)
    stack, steps = 4, 8
    P, H, idx = (
        stacked_params(stack, seed=5),
        stacked_hyper(stack),
        batch_indices(stack, steps, 2048, seed=7),
    )
    ref_v = variant_set(quick)[0]
    ref_p, ref_l = ref_v.build(steps)(P, H, idx, x, y)
    ref_p1, _ = ref_v.build(1)(P, H, idx[:, :1], x, y)
    xb, yb = x[idx[0, 0]], y[idx[0, 0]]
    p0 = jax.tree.map(lambda a: a[0], P)
    g_ref = jax.value_and_grad(lambda p: rel_mse(flax_forward()(p, xb), yb))(p0)
    rows = []
    for v in variant_set(quick)[1:]:
        if quick and not (
            v.name.startswith("BEST")
            or v.name.startswith("pool: custom")
            or v.name.startswith("conv: im2col flat")
        ):
            continue
        if not usable(v, stack):
            continue
        fwd = v.fwd()
        g = jax.value_and_grad(lambda p, fwd=fwd: rel_mse(fwd(p, xb), yb))(p0)
        p1, _ = v.build(1)(P, H, idx[:, :1], x, y)
        pn, ln = v.build(steps)(P, H, idx, x, y)
        r = {
            "variant": v.name,
            "loss": abs(float(g[0] - g_ref[0])) / abs(float(g_ref[0])),
            "grad": rel_err(g[1], g_ref[1]),
            "params_1": rel_err(p1, ref_p1),
            "losses_8": rel_err(ln, ref_l),
            "params_8": rel_err(pn, ref_p),
        }
        r["ok"] = all(r[k] <= tol for k in ("loss", "grad", "params_1", "losses_8", "params_8"))
        rows.append(r)
    say(
        f"Numerical equality against today's formulation (stack {stack}, relative: max |a-b| / max |b| "
        f"per leaf; tolerance {tol:g}):"
    )
    say()
    say("| variant | loss | gradient | params, 1 step | losses, 8 steps | params, 8 steps | ok |")
    say("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        say(
            f"| {r['variant']} | {r['loss']:.1e} | {r['grad']:.1e} | {r['params_1']:.1e} | "
            f"{r['losses_8']:.1e} | {r['params_8']:.1e} | {'yes' if r['ok'] else 'NO'} |"
        )
    say()
    opt = check_optimizers(P, H)
    say(
        "Optimizer forms alone, fed the same gradients (5 NAdam steps with L2, random O(1) gradients): "
        "max relative difference of the parameters against today's optax chain: "
        + ", ".join(f"{k}: {v}" for k, v in opt.items())
    )
    say()
    return rows


def check_optimizers(P, H) -> dict[str, float]:
    p0 = jax.tree.map(lambda a: a[0], P)
    h0 = {k: v[0] for k, v in H.items()}
    keys = jax.random.split(jax.random.key(11), 5)
    grads = [jax.tree.map(lambda a, k=k: jax.random.normal(k, a.shape), p0) for k in keys]
    out = {}
    results = {}
    for name in ("optax", "fused", "flat"):
        if name == "flat":
            from jax.flatten_util import ravel_pytree

            vec, unravel = ravel_pytree(p0)
            st = (jnp.zeros((), jnp.int32), jnp.zeros_like(vec), jnp.zeros_like(vec))
            for g in grads:
                gv = ravel_pytree(g)[0]
                vec, mu, nu = _nadam_leaf(gv, vec, st[1], st[2], st[0] + 1, h0)
                st = (st[0] + 1, mu, nu)
            p = unravel(vec)
        else:
            init, update = optax_nadam() if name == "optax" else fused_nadam_tree()
            p, st = p0, init(p0, h0)
            for g in grads:
                p, st = update(g, st, p, h0)
        results[name] = p
    for name in ("fused", "flat"):
        out[name] = f"{rel_err(results[name], results['optax']):.1e}"
    return out


# ===================================================================================== profile
def _jrobust_call(stack: int, steps: int, test_size: int = 256, epochs: int = 1, train_size=None):
    """jrobust's real compiled stack trainer for paper model 1 and its call arguments (as
    ``jrobust._src.train.launch_stack`` builds them)."""
    from jrobust import zoo
    from jrobust._src.bench import _population
    from jrobust.train import make_stack_trainer, program_for, shared_for

    train_size = train_size or steps * BATCH
    pop = _population(train_size, test_size, 0)
    cfg = zoo.paper_config(
        1,
        epochs=epochs,
        train_size=train_size,
        batch_size=BATCH,
        side_features=(),
        target=None,
        name=None,
    )
    program = program_for([cfg], pop)
    subsets = pop.subset_indices(np.arange(stack), train_size, seed=0, bootstrap=False)
    args = (program.stack([cfg] * stack, np.arange(stack), subsets), shared_for(pop, 0))
    t0 = time.perf_counter()
    compiled = make_stack_trainer(program).lower(*args).compile()
    return compiled, args, time.perf_counter() - t0


def run_profile(stacks, steps_by_stack) -> dict:
    """Per-piece milliseconds of one step of jrobust's real trainer from its HLO thunk trace."""
    out = {}
    for stack in stacks:
        steps = steps_by_stack(stack)
        compiled, args, _ = _jrobust_call(stack, steps)
        rows = thunk_profile(compiled, args, compiled.as_text(), n_calls=2)
        per_step = collections.Counter()
        once = 0.0
        thunks = collections.Counter()
        for r in rows:
            if r["count"] >= 2 * steps and r["count"] % steps == 0:
                per_step[r["piece"]] += r["us"] / (2 * steps)
                thunks[(r["thunk"], r["op"], r["shape"], r["piece"])] += r["us"] / (2 * steps)
            else:
                once += r["us"] / 2  # init, shuffle, evaluation: once per training
        wall = []
        for _ in range(3):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            wall.append(time.perf_counter() - t0)
        out[stack] = {
            "per_step": per_step,
            "once_us": once,
            "steps": steps,
            "top": thunks,
            "wall_step_ms": 1e3 * min(wall) / steps,
        }
    say(
        "Breakdown of one step of jrobust's compiled stack trainer (paper model 1, batch 64, "
        "NAdam), from the XLA:CPU thunk trace (`jax.profiler`), thunks grouped by their JAX op "
        "names / dot shapes; ms per stacked step (all lanes) and % of the step's thunk time:"
    )
    say()
    pieces = sorted(
        {k for v in out.values() for k in v["per_step"]},
        key=lambda k: -max(v["per_step"].get(k, 0) for v in out.values()),
    )
    say("| piece | " + " | ".join(f"stack {s}: ms/step | %" for s in out) + " |")
    say("|---|" + "---:|---:|" * len(out))
    for k in pieces:
        cells = []
        for v in out.values():
            tot = sum(v["per_step"].values())
            ms = v["per_step"].get(k, 0) / 1e3
            cells.append(f"{ms:.3f} | {100 * ms * 1e3 / tot:.1f}")
        say(f"| {k} | " + " | ".join(cells) + " |")
    cells = []
    for v in out.values():
        cells.append(f"**{sum(v['per_step'].values()) / 1e3:.2f}** | 100")
    say("| **sum of thunks per step** | " + " | ".join(cells) + " |")
    say(
        "| wall time per step (whole call / steps, incl. init + test evaluation) | "
        + " | ".join(f"{v['wall_step_ms']:.2f} | " for v in out.values())
        + " |"
    )
    say(
        "| once per training: init, shuffle, evaluation on 256 test events (ms) | "
        + " | ".join(f"{v['once_us'] / 1e3:.2f} | " for v in out.values())
        + " |"
    )
    say()
    for stack, v in out.items():
        say(f"Heaviest HLO thunks per step, stack {stack}:")
        say()
        say("| ms/step | thunk | HLO op | shape | piece |")
        say("|---:|---|---|---|---|")
        for (name, op, shape, piece), us in v["top"].most_common(8):
            say(f"| {us / 1e3:.3f} | {name} | {op} | `{shape}` | {piece} |")
        say()
    return out


def run_profile_variant(v: Variant, stack: int, steps: int) -> None:
    x, y = make_data()
    P, H, idx = stacked_params(stack), stacked_hyper(stack), batch_indices(stack, steps, x.shape[0])
    f = v.build(steps)
    compiled = f.lower(P, H, idx, x, y).compile()
    rows = thunk_profile(compiled, (P, H, idx, x, y), compiled.as_text(), n_calls=2)
    by = collections.Counter()
    for r in rows:
        by[r["piece"]] += r["us"] / (2 * steps)
    tot = sum(by.values())
    say(
        f"Thunk time per step of `{v.name}` at stack {stack}: {tot / 1e3:.2f} ms — "
        + ", ".join(f"{k} {u / 1e3:.2f}" for k, u in by.most_common(8))
    )
    say()
    say("| ms/step | thunk | HLO op | shape | piece |")
    say("|---:|---|---|---|---|")
    for r in rows[:6]:
        say(
            f"| {r['us'] / 2 / steps / 1e3:.3f} | {r['thunk']} | {r['op']} | `{r['shape']}` | {r['piece']} |"
        )
    say()


# ===================================================================================== pieces
def _bench_call(f, args, n):
    jax.block_until_ready(f(*args))

    def run():
        t0 = time.perf_counter()
        for _ in range(n):
            r = f(*args)
        jax.block_until_ready(r)
        return (time.perf_counter() - t0) / n

    return run


def run_pieces(stacks, repeats) -> None:
    """Isolated jitted micro-benchmarks of the pieces of one step, vmapped over a stack."""
    x, y = make_data()
    results = {}
    for stack in stacks:
        P, H = stacked_params(stack), stacked_hyper(stack)
        idx = batch_indices(stack, 1, x.shape[0])[:, 0]
        key = jax.random.key(2)
        xb = x[idx]  # (S, 64, 15, 15, 1)
        h1 = jax.nn.relu(jax.random.normal(key, (stack, BATCH, 13, 13, 32)))
        x2 = jax.random.normal(key, (stack, BATCH, 6, 6, 32))
        h2 = jax.nn.relu(jax.random.normal(key, (stack, BATCH, 4, 4, 64)))
        feat = jax.random.normal(key, (stack, BATCH, 576))
        k1, k2 = P["Conv_0"]["kernel"], P["Conv_1"]["kernel"]
        cands = {}
        n = max(3, 48 // stack)
        for cname in ("im2col", "im2col_flat"):
            for label, inp, k in (("conv1", xb, k1), ("conv2", x2, k2)):
                fwd = jax.jit(jax.vmap(CONVS[cname]))
                cands[f"{label} fwd, {cname}"] = _bench_call(fwd, (inp, k), n)
                vjp = jax.jit(
                    jax.vmap(
                        lambda a, w, c=cname: jax.grad(
                            lambda a, w: jnp.sum(CONVS[c](a, w) ** 2), (0, 1)
                        )(a, w)
                    )
                )
                cands[f"{label} fwd+bwd, {cname}"] = _bench_call(vjp, (inp, k), n)
        for pname in ("slices", "reduce_window", "reshape", "mask"):
            for label, inp, size, stride in (("pool1 2x2/2", h1, 2, 2), ("pool2 2x2/1", h2, 2, 1)):
                g = jax.jit(
                    jax.vmap(
                        jax.grad(
                            lambda a, p=pname, s=size, t=stride: jnp.sum(POOLS[p](a, s, t) ** 2)
                        )
                    )
                )
                cands[f"{label} fwd+bwd, {pname}"] = _bench_call(g, (inp,), n)

        def head(p, f):
            h = jax.nn.relu(f @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
            return jnp.sum(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])

        cands["dense head fwd+bwd"] = _bench_call(jax.jit(jax.vmap(jax.grad(head))), (P, feat), n)
        cands["gather a mini-batch by index"] = _bench_call(
            jax.jit(lambda i: (x[i], y[i])), (idx,), n
        )
        for oname, (init, update) in (
            ("optax inject_hyperparams chain (today)", optax_nadam()),
            ("fused NAdam, pytree", fused_nadam_tree()),
        ):
            st = jax.vmap(init)(P, H)
            upd = jax.jit(jax.vmap(update))
            cands[f"optimizer: {oname}"] = _bench_call(upd, (P, st, P, H), n)
        from jax.flatten_util import ravel_pytree

        vec = jax.vmap(lambda p: ravel_pytree(p)[0])(P)
        flat_upd = jax.jit(jax.vmap(lambda g, p, m, v, h: _nadam_leaf(g, p, m, v, jnp.int32(1), h)))
        cands["optimizer: fused NAdam, one raveled vector"] = _bench_call(
            flat_upd, (vec, vec, vec, vec, H), n
        )
        st = jax.vmap(optax_nadam()[0])(P, H)
        keep = jax.jit(
            jax.vmap(lambda a, b, act: jax.tree.map(lambda u, v: jnp.where(act, u, v), a, b))
        )
        cands["where(active, new, old) on params + optax state"] = _bench_call(
            keep, ((P, st), (P, st), jnp.ones((stack,), bool)), n
        )
        for label, fn in eval_forms().items():
            f = jax.jit(jax.vmap(fn, in_axes=(0, None, None, None)))
            cands[label] = _bench_call(
                f, (P, x, y, jnp.arange(2000, dtype=jnp.int32)), max(1, n // 8)
            )
        results[stack] = interleaved(cands, repeats)
    say(
        "Isolated pieces (jitted, vmapped over the stack; ms per call for the whole stack, median of "
        "interleaved repeats; a call of a small piece includes ~0.02-0.05 ms of dispatch):"
    )
    say()
    names = list(next(iter(results.values())))
    say("| piece | " + " | ".join(f"stack {s} (ms)" for s in results) + " |")
    say("|---|" + "---:|" * len(results))
    for k in names:
        say(
            f"| {k} | " + " | ".join(f"{1e3 * r[k]['median']:.3f}" for r in results.values()) + " |"
        )
    say()


# ===================================================================================== evaluation
def eval_forms() -> dict[str, Callable]:
    """Per-instance evaluation on a test index set: today's chunked scan and cheaper forms."""
    today_fwd = flax_forward()

    def scan_chunks(fwd, chunk):
        def ev(params, x, y, index):
            n = index.shape[0]
            c = min(chunk, n)
            k = -(-n // c)
            padded = jnp.concatenate([index, jnp.zeros((k * c - n,), index.dtype)])
            w = (jnp.arange(k * c) < n).astype(jnp.float32)

            def body(acc, a):
                i, wi = a
                pred = fwd(params, x[i])
                return acc + jnp.sum(wi * ((pred[:, 0] - y[i]) / y[i]) ** 2), None

            tot, _ = lax.scan(body, jnp.zeros(()), (padded.reshape(k, c), w.reshape(k, c)))
            return jnp.sqrt(tot / n)

        return ev

    def whole(fwd):
        def ev(params, x, y, index):
            pred = fwd(params, x[index])
            return jnp.sqrt(jnp.mean(((pred[:, 0] - y[index]) / y[index]) ** 2))

        return ev

    plain = functools.partial(forward, conv="im2col_flat", pool="mask")
    return {
        "eval 2000 test events: today (flax, scan over 1024-chunks)": scan_chunks(today_fwd, 1024),
        "eval 2000: flax, scan over 256-chunks": scan_chunks(today_fwd, 256),
        "eval 2000: flax, one batch (no scan)": whole(today_fwd),
        "eval 2000: flat conv + mask pool, one batch": whole(plain),
        "eval 2000: flat conv + mask pool, scan over 512-chunks": scan_chunks(plain, 512),
        "eval 2000: flat conv + mask pool, scan over 256-chunks": scan_chunks(plain, 256),
        "eval 2000: flat conv + mask pool, scan over 128-chunks": scan_chunks(plain, 128),
    }


def run_eval_share(stacks, repeats) -> None:
    """Evaluation's share of a race-like training with jrobust's real trainer: 2000 training
    events x 3 epochs at batch 64 (93 steps), tested on 2000 events, against a 64-event test."""
    rows = []
    for stack in stacks:
        big, a_big, _ = _jrobust_call(stack, 31, test_size=2000, epochs=3, train_size=2000)
        small, a_small, _ = _jrobust_call(stack, 31, test_size=64, epochs=3, train_size=2000)
        res = interleaved({"2000": timed(big, *a_big), "64": timed(small, *a_small)}, repeats)
        t_big, t_small = res["2000"]["median"], res["64"]["median"]
        rows.append((stack, t_big, t_small, (t_big - t_small) / t_big))
    say(
        "Evaluation in a race-like training with jrobust's trainer today (2000 events x 3 epochs = "
        "93 steps, then the test split): seconds per stack call, 2000 vs 64 test events:"
    )
    say()
    say(
        "| stack | 93 steps + test on 2000 (s) | 93 steps + test on 64 (s) | share of the 2000-event test |"
    )
    say("|---:|---:|---:|---:|")
    for stack, a, b, share in rows:
        say(f"| {stack} | {a:.3f} | {b:.3f} | {100 * max(share, 0):.0f} % |")
    say()


# ===================================================================================== environment
BEST = dict(model="plain", conv="im2col_flat", pool="mask", opt="flat", keep=False)


def child_env(stack: int, work: int, repeats: int, mode: str) -> dict:
    """Run in a subprocess under the XLA_FLAGS the parent chose: compile seconds and
    instance-steps/s of today's trainer and the best form (and, with 2 host devices, the stack
    sharded over them with shard_map)."""
    x, y = make_data()
    steps = steps_for(stack, work)
    P, H, idx = stacked_params(stack), stacked_hyper(stack), batch_indices(stack, steps, x.shape[0])
    forms = {
        "today": Variant("today"),
        "best map1": Variant("best", stack="map1", **BEST),
        "best vmap": Variant("best vmap", **BEST),
    }
    cands, comp = {}, {}
    for k, v in forms.items():
        t0 = time.perf_counter()
        f = v.build(steps).lower(P, H, idx, x, y).compile()
        comp[k] = time.perf_counter() - t0
        cands[k] = timed(f, P, H, idx, x, y)
    if mode == "shard" and len(jax.devices()) >= 2:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as PS

        mesh = jax.make_mesh((2,), ("s",))
        for k, sub in (
            ("best map1, shard_map over 2 devices", "map1"),
            ("best vmap, shard_map over 2 devices", "vmap"),
        ):
            inner = Variant(k, stack=sub, **BEST).build(steps, jit=False)
            f = jax.jit(
                jax.shard_map(
                    inner,
                    mesh=mesh,
                    in_specs=(PS("s"), PS("s"), PS("s"), PS(), PS()),
                    out_specs=PS("s"),
                )
            )
            shard = lambda t: jax.device_put(t, NamedSharding(mesh, PS("s")))
            args = (shard(P), shard(H), shard(idx), x, y)
            t0 = time.perf_counter()
            f = f.lower(*args).compile()
            comp[k] = time.perf_counter() - t0
            cands[k] = timed(f, *args)
    for c in cands.values():
        c()
    res = interleaved(cands, repeats)
    return {
        k: {
            "inst_steps_s": stack * steps / r["median"],
            "best": stack * steps / r["best"],
            "spread": r["spread"],
            "compile_s": comp[k],
        }
        for k, r in res.items()
    }


def _spawn(
    flags: str, stack: int, work: int, repeats: int, mode: str = "env", cpus: str | None = None
):
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = (
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        + os.pathsep
        + env.get("PYTHONPATH", "")
    )
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        mode,
        "--stacks",
        str(stack),
        "--work",
        str(work),
        "--repeats",
        str(repeats),
    ]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def _result(proc) -> dict:
    out, _ = proc.communicate()
    for line in out.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return {}


def run_env(stack: int, work: int, repeats: int, rounds: int, quick: bool) -> None:
    """XLA flags and device layouts, each in its own process, the processes run in turns
    (round robin, ``rounds`` times; the best round counts)."""
    settings = [
        ("default", ""),
        ("--xla_backend_optimization_level=0", "--xla_backend_optimization_level=0"),
        ("--xla_backend_optimization_level=1", "--xla_backend_optimization_level=1"),
        ("--xla_backend_optimization_level=2", "--xla_backend_optimization_level=2"),
        ("--xla_backend_optimization_level=3", "--xla_backend_optimization_level=3"),
        ("--xla_cpu_multi_thread_eigen=false", "--xla_cpu_multi_thread_eigen=false"),
        ("--xla_cpu_enable_fast_math=true", "--xla_cpu_enable_fast_math=true"),
    ]
    if quick:
        settings = settings[:2] + settings[4:5]
    results = collections.defaultdict(list)
    for _ in range(rounds):
        for label, flags in settings:
            results[label].append(_result(_spawn(flags, stack, work, repeats)))
        results["2 host devices (shard_map)"].append(
            _result(
                _spawn("--xla_force_host_platform_device_count=2", stack, work, repeats, "shard")
            )
        )
        if stack % 2 == 0 and shutil_which("taskset"):
            half = stack // 2
            procs = [
                _spawn("--xla_cpu_multi_thread_eigen=false", half, work // 2, repeats, cpus=str(c))
                for c in (0, 1)
            ]
            parts = [_result(p) for p in procs]
            if all(parts):
                results["2 processes pinned to 1 core each (taskset), half the stack each"].append(
                    {
                        k: {
                            "inst_steps_s": sum(p[k]["inst_steps_s"] for p in parts),
                            "best": sum(p[k]["best"] for p in parts),
                            "spread": max(p[k]["spread"] for p in parts),
                            "compile_s": max(p[k]["compile_s"] for p in parts),
                        }
                        for k in parts[0]
                    }
                )
    say(
        f"XLA settings and device layouts at stack {stack} (each a separate process; processes run "
        f"round-robin {rounds}x, the round with the best median counts; instance-steps/s, compile s):"
    )
    say()
    forms = [
        "today",
        "best map1",
        "best vmap",
        "best map1, shard_map over 2 devices",
        "best vmap, shard_map over 2 devices",
    ]
    say("| setting | " + " | ".join(forms) + " |")
    say("|---|" + "---:|" * len(forms))
    for label, rs in results.items():
        rs = [r for r in rs if r]
        if not rs:
            say(f"| {label} | (failed) |")
            continue
        cells = []
        for f in forms:
            vals = [r[f] for r in rs if f in r]
            if not vals:
                cells.append("")
                continue
            b = max(vals, key=lambda v: v["inst_steps_s"])
            cells.append(f"{b['inst_steps_s']:.0f} (x{b['spread']:.2f}, {b['compile_s']:.1f} s)")
        say(f"| {label} | " + " | ".join(cells) + " |")
    say()


def shutil_which(name):
    import shutil

    return shutil.which(name)


# ===================================================================================== main
def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer stacks, variants and repeats (~3 min)"
    )
    p.add_argument(
        "--sections",
        nargs="+",
        default=None,
        choices=["profile", "pieces", "variants", "eval", "env", "check", "best"],
    )
    p.add_argument("--stacks", type=int, nargs="+", default=None)
    p.add_argument("--work", type=int, default=None, help="instance-steps per timed call")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--torch-steps", type=int, default=40)
    p.add_argument("--env-stack", type=int, default=8)
    p.add_argument("--markdown", help="also write the tables to this Markdown file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    jax.config.update("jax_enable_compilation_cache", False)
    if a.child == "torch":
        torch_worker(a.torch_steps, a.stacks[0])
        return
    if a.child:
        print(json.dumps(child_env(a.stacks[0], a.work, a.repeats, a.child)))
        return
    quick = a.quick
    if a.sections is None:
        a.sections = (
            ["check", "profile", "variants"]
            if quick
            else ["check", "profile", "pieces", "variants", "eval", "env"]
        )
    stacks = a.stacks or ([1, 8] if quick else [1, 4, 8, 16, 32, 64])
    work = a.work or (32 if quick else 64)
    repeats = a.repeats or (3 if quick else 5)
    t_start = time.perf_counter()
    dev = jax.devices()[0]
    torch_v = ""
    if have_torch():
        import torch

        torch_v = (
            f", torch {torch.__version__} ({torch.get_num_threads()} threads by default, 2 used)"
        )
    say(
        f"# Profile of one stacked training step, paper model 1 (jax {jax.__version__}, "
        f"{dev.platform}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}{torch_v})"
    )
    say()
    say(
        f"Date {time.strftime('%Y-%m-%d %H:%M')}; load average before: "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    say()
    if "check" in a.sections:
        check_numerics(quick)
    if "profile" in a.sections:
        run_profile([1, 16] if not quick else [1], lambda s: max(3, 24 // s))
        if not quick:
            for v in (
                Variant("flat conv + slice pool", model="plain", conv="im2col_flat"),
                Variant("flat conv + mask pool", model="plain", conv="im2col_flat", pool="mask"),
            ):
                for s in (1, 16):
                    run_profile_variant(v, s, max(3, 24 // s))
    if "pieces" in a.sections:
        run_pieces([1, 16] if not quick else [1], 3 if quick else 5)
    if "variants" in a.sections or "best" in a.sections:  # "best": today, the winners, PyTorch
        rows = run_variants(
            stacks, work, repeats, "final" if "best" in a.sections else quick, a.torch_steps
        )
        print_variant_table(rows)
        if a.markdown:
            with open(os.path.splitext(a.markdown)[0] + "_variants.json", "w") as f:
                json.dump(rows, f, indent=1)
    if "eval" in a.sections:
        run_eval_share([1, 16] if not quick else [8], 3)
    if "env" in a.sections:
        run_env(a.env_stack, work, 3 if quick else 5, 1 if quick else 2, quick)
    say(
        f"Total {time.perf_counter() - t_start:.0f} s; load average after: "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(OUT) + "\n")


if __name__ == "__main__":
    main()
