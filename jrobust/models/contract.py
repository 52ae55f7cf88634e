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
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["Model", "make_model"]


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
        variables = module.init(key, *call_args(x, side), **kwargs)
        return dict(variables)

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
