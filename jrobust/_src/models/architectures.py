"""Architectures: the paper's calorimeter CNNs, a parametric small-CNN family, an MLP, a ResNet-18.

Each architecture is a small frozen dataclass (hashable, comparable, so models that share it can be
grouped into one cohort) whose ``build(conv_impl)`` returns a Flax module with the call signature
``module(x, side=None, train=False)``.

Paper models (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025, Table of selected models): 3×3
"valid" convolutions without bias, max pooling, Kaiming (He) initialisation. The published
parameter counts (23,923 / 23,932 / 23,644 / 23,662 / 5,756 / 15,932) are reproduced exactly when
PReLU has one slope per channel, "pool to 1×1" is a global max pool, and the side feature of
models 2, 4 and the NAS models is concatenated just before the dense layer of width 9
(``side_at`` counts the dense layers before the side features enter).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jrobust._src.models.layers import Conv, activation_layer, pool2d

__all__ = ["CNN", "MLP", "ResNet18", "Architecture"]

Pool = None | int | tuple[int, int] | str

_dense = lambda width: nn.Dense(width, kernel_init=nn.initializers.he_normal())


def _check_side_at(side_at: int | str, n_dense: int) -> int:
    if isinstance(side_at, str):
        side_at = {"conv": 0, "input": 0, "dense1": 1}.get(side_at, side_at)
    if not isinstance(side_at, int) or not 0 <= side_at <= n_dense:
        raise ValueError(
            f"side_at must be 'conv', 'dense1' or an int in [0, {n_dense}] (dense layers before the "
            f"side features enter), got {side_at!r}"
        )
    return side_at


@dataclasses.dataclass(frozen=True)
class CNN:
    """A small CNN: ≤ a few 2-D convolutions with pooling, then dense layers (the paper's space).

    Attributes:
      conv: output channels of each convolution.
      kernel: square kernel size (the paper: 3).
      pool: one entry per convolution: ``None`` (no pooling), ``s`` (size = stride = s),
        ``(size, stride)`` or ``"global"`` (max over the whole map, i.e. "pool to 1×1").
      dense: hidden dense widths; a final dense layer of width ``outputs`` is added.
      activation: ``"relu"``, ``"prelu"``, ``"elu"``, ``"gelu"``, ``"tanh"``, ...
      side_at: how many hidden dense layers come before the side features are concatenated
        (0 or ``"conv"``: right after the convolutions; 1 or ``"dense1"``: after the first dense).
      padding, conv_bias, outputs: as named.

    Example:
      >>> CNN().n_params((15, 15, 1))  # the paper's energy model 1
      23923
    """

    conv: tuple[int, ...] = (32, 64)
    kernel: int = 3
    pool: tuple[Pool, ...] = (2, (2, 1))
    dense: tuple[int, ...] = (9,)
    activation: str = "relu"
    side_at: int | str = 0
    padding: str = "VALID"
    conv_bias: bool = False
    outputs: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv", tuple(self.conv))
        object.__setattr__(self, "dense", tuple(self.dense))
        pool = tuple(tuple(p) if isinstance(p, list) else p for p in self.pool)
        if len(pool) < len(self.conv):
            pool = pool + (None,) * (len(self.conv) - len(pool))
        if len(pool) != len(self.conv):
            raise ValueError(
                f"pool has {len(pool)} entries for {len(self.conv)} convolutions; give one each"
            )
        object.__setattr__(self, "pool", pool)
        object.__setattr__(self, "side_at", _check_side_at(self.side_at, len(self.dense)))
        if self.kernel < 1 or any(c < 1 for c in self.conv) or any(d < 1 for d in self.dense):
            raise ValueError(f"kernel, conv and dense widths must be positive: {self}")

    def build(self, conv_impl: str = "auto") -> nn.Module:
        return _CNNModule(self, conv_impl)

    def n_params(self, input_shape: tuple[int, ...], n_side: int = 0) -> int:
        return _count(self.build("xla"), input_shape, n_side)


class _CNNModule(nn.Module):
    spec: CNN
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, side=None, train: bool = False):
        s = self.spec
        for filters, pool in zip(s.conv, s.pool, strict=True):
            x = Conv(filters, s.kernel, s.padding, s.conv_bias, self.conv_impl)(x)
            x = pool2d(activation_layer(s.activation)(x), pool)
        x = x.reshape(x.shape[0], -1)
        return _dense_head(x, side, s.dense, s.side_at, s.activation, s.outputs)


def _dense_head(x, side, widths, side_at, activation, outputs):
    for k, width in enumerate(widths):
        if side is not None and k == side_at:
            x = jnp.concatenate([x, side], axis=-1)
        x = activation_layer(activation)(_dense(width)(x))
    if side is not None and side_at == len(widths):
        x = jnp.concatenate([x, side], axis=-1)
    return _dense(outputs)(x)


@dataclasses.dataclass(frozen=True)
class MLP:
    """A multilayer perceptron on the flattened input.

    Attributes:
      hidden: hidden widths.
      activation: activation name.
      side_at: hidden layers before the side features are concatenated (0: with the input).
      outputs: output width (1 for a regression target, the class count for classification).
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    side_at: int | str = 0
    outputs: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "side_at", _check_side_at(self.side_at, len(self.hidden)))

    def build(self, conv_impl: str = "auto") -> nn.Module:
        return _MLPModule(self)

    def n_params(self, input_shape: tuple[int, ...], n_side: int = 0) -> int:
        return _count(self.build(), input_shape, n_side)


class _MLPModule(nn.Module):
    spec: MLP

    @nn.compact
    def __call__(self, x, side=None, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        s = self.spec
        return _dense_head(x, side, s.hidden, s.side_at, s.activation, s.outputs)


@dataclasses.dataclass(frozen=True)
class ResNet18:
    """The CIFAR-style ResNet-18: a 3×3 stem, four stages of two basic blocks, global pooling.

    Attributes:
      filters: width of the first stage (64 in the standard network; stages double it).
      activation: activation name.
      norm: ``"batch"`` (BatchNorm with running statistics), ``"group"`` or ``"none"``.
      outputs: number of classes.
    """

    filters: int = 64
    activation: str = "relu"
    norm: str = "batch"
    outputs: int = 10
    stages: tuple[int, ...] = (2, 2, 2, 2)

    def __post_init__(self) -> None:
        if self.norm not in ("batch", "group", "none"):
            raise ValueError(f"norm must be 'batch', 'group' or 'none', got {self.norm!r}")
        object.__setattr__(self, "stages", tuple(self.stages))

    def build(self, conv_impl: str = "auto") -> nn.Module:
        return _ResNetModule(self, conv_impl)

    def n_params(self, input_shape: tuple[int, ...], n_side: int = 0) -> int:
        return _count(self.build("xla"), input_shape, n_side)


class _ResNetModule(nn.Module):
    spec: ResNet18
    conv_impl: str = "auto"

    def _norm(self, train: bool):
        if self.spec.norm == "batch":
            return nn.BatchNorm(use_running_average=not train, momentum=0.9)
        if self.spec.norm == "group":
            return nn.GroupNorm(num_groups=None, group_size=8)
        return lambda h: h

    @nn.compact
    def __call__(self, x, side=None, train: bool = False):
        s = self.spec
        act = lambda h: activation_layer(s.activation)(h)
        x = act(self._norm(train)(Conv(s.filters, 3, "SAME", False, self.conv_impl)(x)))
        for stage, n_blocks in enumerate(s.stages):
            width = s.filters * 2**stage
            for block in range(n_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                residual = x
                h = (
                    nn.Conv(
                        width,
                        (3, 3),
                        stride,
                        "SAME",
                        use_bias=False,
                        kernel_init=nn.initializers.he_normal(),
                    )(x)
                    if stride > 1
                    else Conv(width, 3, "SAME", False, self.conv_impl)(x)
                )
                h = act(self._norm(train)(h))
                h = self._norm(train)(Conv(width, 3, "SAME", False, self.conv_impl)(h))
                if residual.shape != h.shape:
                    residual = nn.Conv(
                        width,
                        (1, 1),
                        stride,
                        use_bias=False,
                        kernel_init=nn.initializers.he_normal(),
                    )(residual)
                    residual = self._norm(train)(residual)
                x = act(h + residual)
        x = jnp.mean(x, axis=(1, 2))
        if side is not None:
            x = jnp.concatenate([x, side], axis=-1)
        return _dense(s.outputs)(x)


Architecture = CNN | MLP | ResNet18 | nn.Module | Any  # also jrobust.models.RieszNet


def _count(module: nn.Module, input_shape: tuple[int, ...], n_side: int) -> int:
    x = jnp.zeros((1, *input_shape), jnp.float32)
    side = jnp.zeros((1, n_side), jnp.float32) if n_side else None
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, side))
    return int(sum(v.size for v in jax.tree.leaves(shapes.get("params", {}))))
