"""The model contract: a pure ``init`` and ``apply`` built from a Flax module.

``init(key, example_inputs, side=None) -> variables`` and
``apply(variables, inputs, side=None, train=False) -> (outputs, new_state)``. ``variables`` is a
dict whose ``"params"`` entry is trained; any other collection (e.g. BatchNorm's ``"batch_stats"``)
is model state that ``apply`` updates in training mode. A user's own ``flax.linen.Module`` works
unchanged: side features are passed as a second positional argument only when the model config
asks for them, and ``train=`` only when the module's ``__call__`` accepts it.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jrobust._src.models.architectures import CNN, MLP

__all__ = ["Model", "make_model", "path_key", "init_leaf", "PATH_INIT_ARCHITECTURES"]

#: Architectures whose parameters are drawn leaf by leaf with ``path_key``: a parameter's initial
#: value depends only on the instance's key, the parameter's path and its shape, so a narrow
#: model's parameters can be drawn inside a wider program that holds several models (programs).
PATH_INIT_ARCHITECTURES = (CNN, MLP)
_HE_NORMAL = nn.initializers.he_normal()
PRELU_SLOPE = 0.25


def path_key(key: jax.Array, path: str) -> jax.Array:
    """The key of one parameter: the instance's key folded with a hash of its path."""
    return jax.random.fold_in(key, zlib.crc32(path.encode()) & 0x7FFFFFFF)


def init_leaf(key: jax.Array, path: str, shape: tuple[int, ...]) -> jax.Array:
    """The initial value of the parameter at ``path`` (``"Conv_0/kernel"``): He-normal kernels
    (fan-in scaling, Kaiming initialisation as in the paper), zero biases, PReLU slopes 0.25."""
    name = path.rsplit("/", 1)[-1]
    if name == "kernel":
        return _HE_NORMAL(path_key(key, path), shape, jnp.float32)
    if name == "slope":
        return jnp.full(shape, PRELU_SLOPE, jnp.float32)
    return jnp.zeros(shape, jnp.float32)


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else k
        out.update(_flat(v, path) if isinstance(v, Mapping) else {path: v})
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in flat.items():
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


class Model(NamedTuple):
    """A pure model: ``init`` and ``apply`` functions plus the module they came from."""

    init: Callable[..., Any]
    apply: Callable[..., Any]
    module: nn.Module
    uses_side: bool

    def n_params(self, input_shape: tuple[int, ...], n_side: int = 0) -> int:
        x = jnp.zeros((1, *input_shape), jnp.float32)
        side = jnp.zeros((1, n_side), jnp.float32) if self.uses_side else None
        shapes = jax.eval_shape(lambda: self.init(jax.random.key(0), x, side))
        return int(sum(v.size for v in jax.tree.leaves(shapes.get("params", {}))))


def _accepts_train(module: nn.Module) -> bool:
    try:
        return "train" in inspect.signature(type(module).__call__).parameters
    except (TypeError, ValueError):
        return False


def make_model(config: Any, conv_impl: str | None = None) -> Model:
    """Build the pure model of a ``ModelConfig``."""
    arch = config.architecture
    impl = conv_impl or config.conv_impl
    module = arch.build(impl) if hasattr(arch, "build") else arch
    uses_side = bool(config.side_features)
    takes_train = _accepts_train(module)

    def call_args(x, side):
        return (x, side) if uses_side else (x,)

    def init(key, x, side=None):
        kwargs = {"train": False} if takes_train else {}
        if not isinstance(arch, PATH_INIT_ARCHITECTURES):
            return dict(module.init(key, *call_args(x, side), **kwargs))
        shapes = jax.eval_shape(
            lambda: module.init(jax.random.key(0), *call_args(x, side), **kwargs)
        )
        flat = _flat(shapes["params"])
        return {"params": _nest({p: init_leaf(key, p, a.shape) for p, a in flat.items()})}

    def apply(variables, x, side=None, train=False):
        state_cols = [c for c in variables if c != "params"]
        kwargs = {"train": train} if takes_train else {}
        if train and state_cols:
            out, new_state = module.apply(
                variables, *call_args(x, side), mutable=state_cols, **kwargs
            )
            return out, dict(new_state)
        out = module.apply(variables, *call_args(x, side), **kwargs)
        return out, {c: variables[c] for c in state_cols}

    return Model(init, apply, module, uses_side)
