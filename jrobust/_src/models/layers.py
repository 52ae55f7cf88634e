"""Layers that stay fast under ``vmap``.

``vmap`` of ``lax.conv_general_dilated`` over a stack of instances becomes a grouped convolution,
which XLA:CPU runs slowly for the small images of the calorimeter task (15×15). Writing the
convolution as shifted slices and one ``einsum`` (im2col) turns it into a batched matrix product,
which vectorises well: on this project's 2-core CPUs it ran about 10× faster (see
``benchmarks/RESULTS.md``). Both forms share one parameter layout (``kernel: (k, k, c_in, c_out)``,
as in ``flax.linen.Conv``), so a model can switch form without changing its parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "ACTIVATIONS",
    "Conv",
    "PReLU",
    "activation",
    "activation_layer",
    "conv2d",
    "max_pool",
    "pool2d",
    "prelu",
    "resolve_conv_impl",
]

CONV_IMPLS = ("im2col", "xla", "auto")


def resolve_conv_impl(conv_impl: str) -> str:
    """``"auto"`` picks the faster form for the default backend (measured: im2col on CPU)."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {conv_impl!r}")
    if conv_impl == "auto":
        return "im2col" if jax.default_backend() == "cpu" else "xla"
    return conv_impl


def _pad_same(x: jax.Array, k: int) -> jax.Array:
    lo = (k - 1) // 2
    return jnp.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))


class Conv(nn.Module):
    """A 2-D convolution (NHWC, stride 1) in either im2col or XLA form.

    Attributes:
      features: output channels.
      kernel_size: square kernel side.
      padding: ``"VALID"`` or ``"SAME"``.
      use_bias: add a bias (the paper's calorimeter models have none).
      impl: ``"im2col"``, ``"xla"`` or ``"auto"``.
    """

    features: int
    kernel_size: int = 3
    padding: str = "VALID"
    use_bias: bool = False
    impl: str = "auto"
    strides: int = 1
    kernel_init: Callable = nn.initializers.he_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        c_in = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, c_in, self.features), jnp.float32)
        y = conv2d(x, kernel, self.padding, self.impl, self.strides)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


def conv2d(
    x: jax.Array, kernel: jax.Array, padding: str = "VALID", impl: str = "auto", strides: int = 1
) -> jax.Array:
    """A 2-D convolution (NHWC input, HWIO kernel) in im2col or XLA form (the same numbers).

    Example:
      >>> x, k = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
      >>> conv2d(x, k).shape, float(conv2d(x, k)[0, 0, 0, 0])
      ((1, 3, 3, 4), 18.0)
    """
    k, c_in, features = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    padding = padding.upper()
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
    if resolve_conv_impl(impl) == "im2col" and strides == 1:
        if padding == "SAME":
            x = _pad_same(x, k)
        oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
        if oh < 1 or ow < 1:
            raise ValueError(
                f"a {k}x{k} valid convolution cannot take a {x.shape[1]}x{x.shape[2]} input"
            )
        # Patches concatenated on the channel axis in kernel order (i, j, c): one plain
        # (N*H*W, k*k*C) x (k*k*C, F) dot. A patch axis of its own (einsum over (p, c)) made
        # XLA:CPU copy and transpose the patch tensor in the backward pass: 2.5x slower.
        n = x.shape[0]
        patches = jnp.concatenate(
            [x[:, i : i + oh, j : j + ow, :] for i in range(k) for j in range(k)], axis=-1
        )
        flat = patches.reshape(n * oh * ow, k * k * c_in)
        return jnp.dot(flat, kernel.reshape(k * k * c_in, features)).reshape(n, oh, ow, features)
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(strides, strides),
        padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def pool2d(x: jax.Array, pool) -> jax.Array:
    """A CNN's pooling step: ``None`` (none), ``s`` (size = stride = s), ``(size, stride)`` or
    ``"global"`` (the maximum over the whole map, keeping a 1x1 map)."""
    if pool is None:
        return x
    if pool == "global":
        return jnp.max(x, axis=(1, 2), keepdims=True)
    size, stride = (pool, pool) if isinstance(pool, int) else pool
    return max_pool(x, size, stride)


def _pool_size(x: jax.Array, size: int, stride: int) -> tuple[int, int]:
    oh = (x.shape[1] - size) // stride + 1
    ow = (x.shape[2] - size) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"pool {size} cannot take a {x.shape[1]}x{x.shape[2]} feature map")
    return oh, ow


def _windows(x: jax.Array, size: int, stride: int, oh: int, ow: int) -> list[jax.Array]:
    """The ``size * size`` strided views whose elementwise maximum is the pooled map."""
    return [
        x[:, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride, :]
        for i in range(size)
        for j in range(size)
    ]


def _pool_forward(x: jax.Array, size: int, stride: int) -> jax.Array:
    oh, ow = _pool_size(x, size, stride)
    if stride == size:  # the windows tile the map: crop, reshape, one reduction
        n, c = x.shape[0], x.shape[-1]
        tiles = x[:, : oh * size, : ow * size, :].reshape(n, oh, size, ow, size, c)
        return tiles.max(axis=(2, 4))
    out = None
    for view in _windows(x, size, stride, oh, ow):
        out = view if out is None else jnp.maximum(out, view)
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool(x: jax.Array, size: int, stride: int) -> jax.Array:
    return _pool_forward(x, size, stride)


def _max_pool_fwd(x, size, stride):
    out = _pool_forward(x, size, stride)
    return out, (x, out)


def _max_pool_bwd(size, stride, residuals, g):
    # Each output's gradient goes to the first maximum of its window (as PyTorch's MaxPool2d),
    # found by equality with the output: no select-and-scatter, no scatter (XLA:CPU ran the
    # gradient of reduce_window, and of a maximum of slices, several times slower than this).
    x, out = residuals
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    taken, parts = None, []
    for view in _windows(x, size, stride, oh, ow):
        hit = view == out
        first = hit if taken is None else hit & ~taken
        taken = hit if taken is None else taken | hit
        parts.append(jnp.where(first, g, 0.0))
    if stride == size:  # interleave the parts back into the tiled map, then pad the cropped rim
        d = jnp.stack(parts).reshape(size, size, n, oh, ow, c)
        d = d.transpose(2, 3, 0, 4, 1, 5).reshape(n, oh * size, ow * size, c)
        return (jnp.pad(d, ((0, 0), (0, h - oh * size), (0, w - ow * size), (0, 0))),)
    dx = None
    for (i, j), part in zip([(i, j) for i in range(size) for j in range(size)], parts, strict=True):
        pad = ((0, 0, 0), (i, h - (i + (oh - 1) * stride + 1), stride - 1),
               (j, w - (j + (ow - 1) * stride + 1), stride - 1), (0, 0, 0))  # fmt: skip
        part = jax.lax.pad(part, jnp.zeros((), part.dtype), pad)
        dx = part if dx is None else dx + part
    return (dx,)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x: jax.Array, size: int, stride: int | None = None) -> jax.Array:
    """Max pooling (NHWC, "valid"): the windows' maximum; its gradient goes to the first maximum
    of each window (the same as PyTorch's; ties, which ReLU zeros make common, are what differ
    from XLA's own gradient, and a ReLU's gradient there is zero anyway).

    Example:
      >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
      >>> max_pool(x, 2)[0, :, :, 0].tolist()
      [[5.0, 7.0], [13.0, 15.0]]
    """
    stride = size if stride is None else stride
    _pool_size(x, size, stride)
    return _max_pool(x, int(size), int(stride))


class PReLU(nn.Module):
    """Parametric ReLU with one slope per channel (last axis), initialised at 0.25."""

    init_slope: float = 0.25

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        slope = self.param(
            "slope", nn.initializers.constant(self.init_slope), (x.shape[-1],), jnp.float32
        )
        return prelu(x, slope)


def prelu(x: jax.Array, slope: jax.Array) -> jax.Array:
    """Parametric ReLU with one slope per channel (the last axis)."""
    return jnp.where(x >= 0, x, slope * x)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "leaky_relu": nn.leaky_relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "silu": nn.silu,
}


def activation(name: str, x: jax.Array, slope: jax.Array | None = None) -> jax.Array:
    """An activation by name as a function; ``"prelu"`` takes its ``slope`` (one per channel)."""
    if name == "prelu":
        return prelu(x, slope)
    return ACTIVATIONS[name](x)


def activation_layer(name: str) -> Callable[[jax.Array], jax.Array]:
    """An activation by name; ``"prelu"`` creates a parametric layer (call inside a compact module)."""
    if name == "prelu":
        return PReLU()
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted([*ACTIVATIONS, 'prelu'])}"
        )
    return ACTIVATIONS[name]
