"""The population: the data set that every instance of every model samples its training data from.

A population holds inputs ``x``, targets ``y`` (with named columns) and optional side features
``side`` (inductive biases, e.g. the total cluster energy or the barycentre), plus fixed
validation and test splits chosen by a seed. The remaining events form the *pool* from which
each instance draws its training subset (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025: instances
differ in their initialisation and in a training sample drawn afresh from one population).

Instance ``i`` draws the same subset for every model with the same seed and subset size (common
random numbers), so comparisons between models are paired. Subsets of different sizes are nested:
the subset of size ``n`` is a prefix of the subset of size ``m > n`` for the same instance.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Population", "draw_subsets", "pool_size"]

# Key streams, separated by fold_in so that data, init and shuffling never share randomness.
SPLIT_STREAM = 0
SUBSET_STREAM = 1
INIT_STREAM = 2
SHUFFLE_STREAM = 3


def _checked_inputs(x: Any) -> tuple[np.ndarray, int]:
    """``x`` as a float32 ``(n_events, *input_shape)`` array and ``n_events``; a clear error
    for a missing event axis, an input without features, or values that are not finite."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"x must have shape (n_events, *input_shape) with at least 2 dims, got {x.shape}; "
            "reshape a single feature to (n, 1)"
        )
    if 0 in x.shape[1:]:
        raise ValueError(
            f"x has no features: its shape {x.shape} has a zero-length input axis; give each "
            "event at least one input value"
        )
    _check_finite("x", x)
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32, copy=False)
    return x, x.shape[0]


def _checked_side(side: Any, n: int) -> np.ndarray | None:
    """The side features as float32 ``(n, n_side)`` (``None`` stays)."""
    if side is None:
        return None
    side = np.asarray(side)
    if side.ndim == 1:
        side = side[:, None]
    if side.ndim != 2 or side.shape[0] != n:
        raise ValueError(f"side must have shape (n_events, n_side) = ({n}, k), got {side.shape}")
    _check_finite("side", side)
    return side.astype(np.float32)


def _as_names(names: Sequence[str] | None, n: int, prefix: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"{prefix}{j}" for j in range(n))
    names = tuple(str(v) for v in names)
    if len(names) != n:
        raise ValueError(
            f"got {len(names)} {prefix} names for {n} columns; give one name per column"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{prefix} names must be unique, got {names}")
    return names


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        bad = int(np.size(a) - np.isfinite(a).sum())
        raise ValueError(
            f"{name} holds {bad} NaN/inf values; drop or impute those events before building "
            "the population (e.g. x[np.isfinite(x).all(axis=...)])"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
    """A data set with fixed validation/test splits and a pool that instances sample from.

    Args:
      x: inputs, shape ``(n_events, *input_shape)`` (e.g. ``(n, 15, 15, 1)`` for a calorimeter).
      y: targets, shape ``(n_events,)`` or ``(n_events, n_targets)``; integer class labels for
        classification.
      side: optional side features, shape ``(n_events, n_side)``.
      target_names / side_names: column names, used by ``ModelConfig.target`` and
        ``ModelConfig.side_features``.
      test_size / val_size: sizes (int) or fractions (float) of the fixed test / validation splits.
      seed: chooses the splits.
      name: a label for reports.
      num_classes: the number of classes when ``y`` holds class labels (``None`` for regression).
      truth: optional per-event table (e.g. true energy and impact point), not used in training.
      transforms: transformed test sets every instance is also evaluated on (set with
        ``jrobust.data.with_transforms``).

    Example:
      >>> import numpy as np
      >>> pop = Population(np.ones((100, 4), np.float32), np.arange(100.0), test_size=20, val_size=10)
      >>> pop.pool_size
      70
    """

    x: Any
    y: Any
    side: Any = None
    target_names: tuple[str, ...] | None = None
    side_names: tuple[str, ...] | None = None
    test_size: int | float = 0.2
    val_size: int | float = 0.0
    seed: int = 0
    name: str = "arrays"
    num_classes: int | None = None
    truth: Any = None
    meta: dict = dataclasses.field(default_factory=dict)
    transforms: Any = None  # a jrobust._src.data.transforms.TransformGrid (see with_transforms)

    def __post_init__(self) -> None:
        x, n = _checked_inputs(self.x)
        y = self._checked_targets(np.asarray(self.y), n)
        side = _checked_side(self.side, n)
        n_targets = 1 if self.num_classes is not None else y.shape[1]
        target_names = _as_names(self.target_names, n_targets, "target")
        side_names = _as_names(self.side_names, 0 if side is None else side.shape[1], "side")
        n_test = self._split_count(self.test_size, n, "test_size")
        n_val = self._split_count(self.val_size, n, "val_size")
        if n_test < 1:
            raise ValueError(f"test_size={self.test_size} leaves no test events; use at least 1")
        if n_test + n_val >= n:
            raise ValueError(
                f"test ({n_test}) + validation ({n_val}) splits use all {n} events; "
                "make them smaller so that a training pool remains"
            )
        order = np.asarray(
            jax.random.permutation(jax.random.fold_in(jax.random.key(self.seed), SPLIT_STREAM), n)
        )
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("x", x)
        set_("y", y)
        set_("side", side)
        set_("target_names", target_names)
        set_("side_names", side_names)
        set_("test_index", np.sort(order[:n_test]))
        set_("val_index", np.sort(order[n_test : n_test + n_val]))
        set_("pool_index", np.sort(order[n_test + n_val :]))
        set_("_device", None)
        set_("_splits", None)

    def _checked_targets(self, y: np.ndarray, n: int) -> np.ndarray:
        """``y`` as float32 ``(n, n_targets)`` targets, or int32 ``(n,)`` labels in
        ``[0, num_classes)`` for a classification set; a clear error otherwise."""
        if y.shape[0] != n:
            raise ValueError(f"x has {n} events but y has {y.shape[0]}; they must match")
        if y.ndim > 2:
            raise ValueError(f"y must be (n,) or (n, n_targets), got shape {y.shape}")
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError(f"y has no targets: its shape is {y.shape}; give at least one column")
        _check_finite("y", y)
        if self.num_classes is None:
            y = y.astype(np.float32)
            return y[:, None] if y.ndim == 1 else y
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise TypeError(
                f"with num_classes={self.num_classes}, y must be integer labels of shape (n,), "
                f"got {y.dtype} {y.shape}"
            )
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got [{y.min()}, {y.max()}]"
            )
        return y.astype(np.int32)

    @staticmethod
    def _split_count(size: int | float, n: int, what: str) -> int:
        if isinstance(size, float):
            if not 0.0 <= size < 1.0:
                raise ValueError(
                    f"{what}={size} must be a fraction in [0, 1) or an integer event count"
                )
            return int(round(size * n))
        size = int(size)
        if size < 0 or size >= n:
            raise ValueError(f"{what}={size} must be smaller than the {n} events of the population")
        return size

    # ------------------------------------------------------------------ sizes and shapes
    @property
    def n_events(self) -> int:
        return int(self.x.shape[0])

    @property
    def pool_size(self) -> int:
        return int(self.pool_index.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def is_classification(self) -> bool:
        return self.num_classes is not None

    def target_column(self, target: str | int | None) -> int:
        """Index of a target column by name or position (``None``: the first)."""
        if self.is_classification:
            return 0
        if target is None:
            return 0
        if isinstance(target, int | np.integer):
            if not 0 <= target < len(self.target_names):
                raise ValueError(
                    f"target index {target} out of range for targets {self.target_names}"
                )
            return int(target)
        if target not in self.target_names:
            raise ValueError(
                f"unknown target {target!r}; this population has targets {self.target_names}"
            )
        return self.target_names.index(target)

    def side_columns(self, names: Sequence[str]) -> tuple[int, ...]:
        """Indices of side-feature columns by name."""
        missing = [s for s in names if s not in self.side_names]
        if missing:
            raise ValueError(
                f"unknown side features {missing}; this population has side features {self.side_names}"
            )
        return tuple(self.side_names.index(s) for s in names)

    # ------------------------------------------------------------------ device arrays
    def device_arrays(self) -> dict[str, jax.Array]:
        """The population on the default device, placed once and reused (never copied per instance)."""
        if self._device is None:
            side = self.side if self.side is not None else np.zeros((self.n_events, 0), np.float32)
            arrays = {"x": jnp.asarray(self.x), "y": jnp.asarray(self.y), "side": jnp.asarray(side)}
            object.__setattr__(self, "_device", arrays)
        return self._device

    def device_splits(self) -> tuple[jax.Array, jax.Array]:
        """The test and validation event indices on the device, placed once (``int32``; an empty
        validation split is stood in for by one test event, never used)."""
        if self._splits is None:
            val = self.val_index if len(self.val_index) else self.test_index[:1]
            splits = (jnp.asarray(self.test_index, jnp.int32), jnp.asarray(val, jnp.int32))
            object.__setattr__(self, "_splits", splits)
        return self._splits

    def fingerprint(self) -> str:
        """A short hash of the data and splits, used to check that a checkpoint matches its data."""
        h = hashlib.sha1()
        for a in (self.x, self.y, self.side, self.test_index, self.val_index):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes()[: 1 << 24])
                h.update(str(np.shape(a)).encode())
        h.update(repr((self.target_names, self.side_names, self.num_classes)).encode())
        if self.transforms is not None:  # the transformed test sets are part of the data
            grid = self.transforms
            names = [
                f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', f)}"
                for f in grid.functions
            ]
            h.update(repr((grid.names, grid.params, names)).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ subsets
    def subset_indices(
        self,
        instance_indices: Sequence[int] | np.ndarray,
        size: int,
        *,
        seed: int = 0,
        bootstrap: bool = False,
    ) -> np.ndarray:
        """Event indices of the training subsets of the given instances, shape ``(n_instances, size)``.

        Instance ``i`` gets the same subset whatever model asks (common random numbers); without
        ``bootstrap`` the subset of a smaller size is a prefix of a larger one.
        """
        if size < 1:
            raise ValueError(f"train_size must be positive, got {size}")
        if not bootstrap and size > self.pool_size:
            raise ValueError(
                f"train_size={size} is larger than the training pool of {self.pool_size} events "
                f"(population of {self.n_events} minus test/validation splits); use a smaller "
                "train_size, bootstrap=True, or a larger population"
            )
        return np.asarray(
            draw_subsets(
                jnp.asarray(self.pool_index),
                np.asarray(instance_indices, np.int32),
                size,
                seed,
                bootstrap,
            )
        )

    def __repr__(self) -> str:
        return (
            f"Population(name={self.name!r}, events={self.n_events}, input_shape={self.input_shape}, "
            f"targets={self.target_names}, side={self.side_names}, pool={self.pool_size}, "
            f"val={len(self.val_index)}, test={len(self.test_index)})"
        )


def pool_size(n_events: int, test_size: int | float, val_size: int | float) -> int:
    """The training pool a population of ``n_events`` with these splits has (without building it).

    Example:
      >>> pool_size(10_000, 0.2, 0.1)
      7000
    """
    n_test = Population._split_count(test_size, n_events, "test_size")
    n_val = Population._split_count(val_size, n_events, "val_size")
    return n_events - n_test - n_val


def draw_subsets(
    pool_index: jax.Array, instances: np.ndarray, size: int, seed: int, bootstrap: bool
) -> jax.Array:
    """Training subsets (event indices) for each instance: a pure function of (seed, instance, size)."""
    instances = jnp.asarray(instances, jnp.int32)
    out = []
    chunk = max(1, (1 << 24) // max(1, pool_index.shape[0]))  # bound the memory of the permutations
    for start in range(0, instances.shape[0], chunk):
        out.append(_draw(pool_index, instances[start : start + chunk], size, seed, bootstrap))
    return jnp.concatenate(out) if out else jnp.zeros((0, size), jnp.int32)


@functools.partial(jax.jit, static_argnames=("size", "bootstrap"))
def _draw(pool_index, instances, size, seed, bootstrap):
    root = jax.random.fold_in(jax.random.key(seed), SUBSET_STREAM)

    def one(i):
        k = jax.random.fold_in(root, i)
        if bootstrap:
            pos = jax.random.randint(k, (size,), 0, pool_index.shape[0])
        else:
            pos = jax.random.permutation(k, pool_index.shape[0])[:size]
        return pool_index[pos]

    return jax.vmap(one)(instances)
