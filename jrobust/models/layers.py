"""Layers that stay fast under ``vmap``.

``vmap`` of ``lax.conv_general_dilated`` over a stack of instances becomes a grouped convolution,
which XLA:CPU runs slowly for the small images of the calorimeter task (15×15). Writing the
convolution as shifted slices and one ``einsum`` (im2col) turns it into a batched matrix product,
which vectorises well: on this project's 2-core CPUs it ran about 10× faster (see
``benchmarks/RESULTS.md``). Both forms share one parameter layout (``kernel: (k, k, c_in, c_out)``,
as in ``flax.linen.Conv``), so a model can switch form without changing its parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["Conv", "PReLU", "max_pool", "resolve_conv_impl", "ACTIVATIONS", "activation_layer"]

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
        padding = self.padding.upper()
        if padding not in ("VALID", "SAME"):
            raise ValueError(f"padding must be 'VALID' or 'SAME', got {self.padding!r}")
        impl = resolve_conv_impl(self.impl)
        if impl == "im2col" and self.strides == 1:
            if padding == "SAME":
                x = _pad_same(x, k)
            oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
            if oh < 1 or ow < 1:
                raise ValueError(
                    f"a {k}x{k} valid convolution cannot take a {x.shape[1]}x{x.shape[2]} input"
                )
            # Patches ordered (i, j) to match kernel[i, j]: one matmul over k*k*c_in.
            patches = jnp.stack(
                [x[:, i : i + oh, j : j + ow, :] for i in range(k) for j in range(k)], axis=3
            )
            y = jnp.einsum("nhwpc,pcf->nhwf", patches, kernel.reshape(k * k, c_in, self.features))
        else:
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                window_strides=(self.strides, self.strides),
                padding=padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


def max_pool(x: jax.Array, size: int, stride: int | None = None) -> jax.Array:
    """Max pooling (NHWC, "valid") written as a maximum of strided slices: cheap under vmap."""
    stride = size if stride is None else stride
    oh = (x.shape[1] - size) // stride + 1
    ow = (x.shape[2] - size) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"pool {size} cannot take a {x.shape[1]}x{x.shape[2]} feature map")
    out = None
    for i in range(size):
        for j in range(size):
            s = x[
                :, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride, :
            ]
            out = s if out is None else jnp.maximum(out, s)
    return out


class PReLU(nn.Module):
    """Parametric ReLU with one slope per channel (last axis), initialised at 0.25."""

    init_slope: float = 0.25

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        slope = self.param(
            "slope", nn.initializers.constant(self.init_slope), (x.shape[-1],), jnp.float32
        )
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


def activation_layer(name: str) -> Callable[[jax.Array], jax.Array]:
    """An activation by name; ``"prelu"`` creates a parametric layer (call inside a compact module)."""
    if name == "prelu":
        return PReLU()
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted([*ACTIVATIONS, 'prelu'])}"
        )
    return ACTIVATIONS[name]
