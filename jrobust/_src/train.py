"""The vectorised instance trainer: a stack of instances of one program as one computation.

A *program* (``Program``) is a set of models that share one compiled stack trainer: one
cohort (models equal in every static field, differing only in scalar hyperparameters), or
several cohorts of the zoo's CNN/MLP families merged into one (``jrobust._src.programs``,
``jrobust._src.models.merged``). It trains a *stack* of instances inside one ``lax.scan`` over
epochs and mini-batches (``jrobust._src.steps``). Each instance:

- draws its initial parameters from a key derived from ``(seed, model, instance)``;
- trains on its own training subset (event indices into the device-resident population, the
  same subset for instance ``i`` of every model: common random numbers), reshuffled every epoch
  with a key derived from ``(seed, instance)``; mini-batches are gathered by index, the data is
  never copied per instance;
- optionally stops early (patience on the validation split) through a mask, keeping shapes fixed;
- is evaluated on the fixed test split at the end;
- is flagged as failed when its training or test loss is not finite, without touching the others
  (lanes are independent).

How the stack runs depends on the backend (``stack_mode``): on the CPU, ``lax.map`` over groups
of two lanes (each group vmapped), because a whole vmapped stack falls out of the caches (measured
in ``benchmarks/RESULTS.md``: 1.2-1.9x faster from 8 lanes up); on accelerators one ``vmap``.

``train_instances(config, population, instance_indices)`` is the user-facing call for one model.
An instance trained alone gives the same loss as inside a stack, and as a lane of a merged
program (to float32 rounding).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.sharding import PartitionSpec

from jrobust._src.config import CLASSIFICATION, SCALAR_FIELDS, ModelConfig, model_hash
from jrobust._src.data.population import Population
from jrobust._src.models.contract import make_model
from jrobust._src.models.layers import resolve_conv_impl
from jrobust._src.models.merged import MergedModel
from jrobust._src.optim import (
    ADAM_FAMILY,
    SCHEDULE_IDS,
    make_lane_optimizer,
    make_optimizer,
    schedule_steps,
)
from jrobust._src.parallel.placement import Placement
from jrobust._src.programs import merge_signature, model_steps
from jrobust._src.race.ledger import ledger_rows, statuses
from jrobust._src.settings import check_seed
from jrobust._src.specs import check_stack_mode
from jrobust._src.steps import (
    EVAL_CHUNK,
    Body,
    Lanes,
    Shared,
    TrainResult,
    permutation_rounds,
    train_one,
)

__all__ = [
    "EVAL_CHUNK",
    "STACK_MODES",
    "Lanes",
    "Pending",
    "Program",
    "ProgramCache",
    "Shared",
    "TrainResult",
    "bucket_size_for",
    "check_compatible",
    "check_instances",
    "collect",
    "default_cache",
    "fit_all",
    "fit_note",
    "fit_to_population",
    "lanes_for",
    "launch_stack",
    "make_stack_trainer",
    "make_trainer",
    "n_cached",
    "n_compiled",
    "program_for",
    "resolve_stack_mode",
    "shared_for",
    "train_instances",
    "train_stack",
]

STACK_MODES = ("auto", "vmap", "map")
#: Lanes per vmapped group when a stack runs as ``lax.map`` (measured best on 2 CPU cores).
MAP_GROUP = 2


def resolve_stack_mode(mode: str | None) -> str:
    """``"auto"`` is ``"map"`` on the CPU (groups of ``MAP_GROUP`` lanes), else ``"vmap"``;
    ``"map:N"`` sets the group size (checked by ``jrobust._src.specs.check_stack_mode``)."""
    name, size = check_stack_mode(mode)
    if name == "auto":
        return f"map:{MAP_GROUP}" if jax.default_backend() == "cpu" else "vmap"
    return f"map:{size or MAP_GROUP}" if name == "map" else "vmap"


def _static_config(config: ModelConfig) -> ModelConfig:
    """The config with scalar fields reset, so cohort members share one cache entry."""
    defaults = {
        f: getattr(ModelConfig, f) if hasattr(ModelConfig, f) else 0.0 for f in SCALAR_FIELDS
    }
    return dataclasses.replace(config, name=None, **defaults)


# ---------------------------------------------------------------------------------- the cache
#: Programs, jitted and compiled stack trainers kept in memory, least recently used first out.
#: Each compiled one holds its executable and constants; a few hundred would fill a GPU host.
CACHE_SIZE = 128


class ProgramCache:
    """Programs and their jitted and compiled stack trainers, in ONE least-recently-used table.

    An ``Engine`` holds one (by default the process's, ``default_cache()``, so a second race
    in a notebook reuses the first one's executables); the public functions (``train_stack``,
    ``make_trainer``, ``train_instances``) use the process's. Thread-safe: an engine compiles
    its next program on a background thread.
    """

    def __init__(self, capacity: int = CACHE_SIZE) -> None:
        self.capacity = int(capacity)
        self.n_compiled = 0  # executables compiled through this cache
        self._entries: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: tuple, build: Callable[[], Any]) -> tuple[Any, bool]:
        """``(value, built)``: the entry for ``key``, built (and the oldest dropped) if missing."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key], False
        value = build()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return value, True

    def program(
        self,
        variants: Sequence[ModelConfig],
        population: Population,
        conv_impl: str | None = None,
        stack_mode: str | None = None,
    ) -> Program:
        """The program of these variants on this population (built once). The entry keeps its
        population, so the ``id`` in its key is never reused while it is cached."""
        statics = tuple(dict.fromkeys(_static_config(v) for v in variants))
        key = ("program", statics, id(population), conv_impl, stack_mode)
        build = lambda: (population, Program(statics, population, conv_impl, stack_mode))  # noqa: E731
        held, _ = self._get(key, build)
        if held[0] is not population:  # an id reused after its population was dropped
            held = build()
            with self._lock:
                self._entries[key] = held
        return held[1]

    def trainer(self, program: Program, placement: Placement | None = None):
        """The jitted stack trainer of ``program`` (``make_stack_trainer``)."""
        return self._get(("trainer", program.key, placement),
                         lambda: make_stack_trainer(program, placement))[0]  # fmt: skip

    def is_compiled(self, program: Program, size: int, placement: Placement | None) -> bool:
        with self._lock:
            return ("executable", program.key, size, placement) in self._entries

    def executable(
        self, program: Program, size: int, placement: Placement | None, lanes: Lanes, shared: Shared
    ) -> tuple[Any, float]:
        """The executable for stacks of ``size`` lanes (``lanes``/``shared``: arrays or shapes)
        and the seconds spent compiling it now (0 when it was cached)."""
        t0 = time.perf_counter()

        def build():
            compiled = self.trainer(program, placement).lower(lanes, shared).compile()
            with self._lock:
                self.n_compiled += 1
            return compiled

        executable, built = self._get(("executable", program.key, size, placement), build)
        return executable, (time.perf_counter() - t0 if built else 0.0)


_DEFAULT_CACHE = ProgramCache()


def default_cache() -> ProgramCache:
    """The process's program cache (the public functions and, by default, every engine use it)."""
    return _DEFAULT_CACHE


def n_compiled() -> int:
    """How many stack programs this process has compiled (one per program and stack size)."""
    return _DEFAULT_CACHE.n_compiled


def n_cached() -> int:
    """How many programs, jitted trainers and executables the process's cache holds now."""
    return len(_DEFAULT_CACHE)


# ---------------------------------------------------------------------------------- programs
class _Facts(NamedTuple):
    """What a compiled program depends on of the population (hashable)."""

    input_shape: tuple[int, ...]
    n_events: int
    target_col: int
    side_cols: tuple[int, ...]
    n_test: int
    n_val: int
    num_classes: int | None
    transforms: Any  # the population's TransformGrid (or None)


class Program:
    """The models that share one compiled stack trainer: built once per group of cohorts.

    Args:
      variants: the programs's static configurations (one per cohort; scalar fields ignored).
        One variant gives a plain program (the model as it is); several give a merged one
        (``jrobust._src.models.merged``), which needs them to share ``merge_signature``.
      population: the data (its shapes, splits and columns are part of the program).
      conv_impl: the convolution form (``None``: the configs' own, else the backend's).
      stack_mode: how a stack runs, see ``resolve_stack_mode``.
      keep_params: the stack trainer also returns every lane's trained parameters.

    Attributes:
      model: the pure model (``Model`` or ``MergedModel``); tx: the optimizer; body: what the
      per-instance training needs; key: the program's identity (compile caches use it).
    """

    def __init__(
        self,
        variants: Sequence[ModelConfig],
        population: Population,
        conv_impl: str | None = None,
        stack_mode: str | None = None,
        keep_params: bool = False,
    ) -> None:
        variants = tuple(dict.fromkeys(_static_config(v) for v in variants))
        self.keep_params = bool(keep_params)
        if not variants:
            raise ValueError("a program needs at least one model")
        self.variants = variants
        self.config = config = variants[0]
        self.merged = len(variants) > 1
        if self.merged and len({merge_signature(v) for v in variants} | {None}) != 2:
            raise ValueError(
                "the models of one program must share jrobust._src.programs.merge_signature"
            )
        self.conv_impl = resolve_conv_impl(conv_impl or config.conv_impl)
        self.stack_mode = resolve_stack_mode(stack_mode)
        side = tuple(dict.fromkeys(f for v in variants for f in v.side_features))
        self.side_features = side
        self.facts = _Facts(
            population.input_shape, population.n_events, population.target_column(config.target),
            population.side_columns(side), len(population.test_index), len(population.val_index),
            population.num_classes, population.transforms,
        )  # fmt: skip
        self.adam_lanes = self.merged and config.optimizer in ADAM_FAMILY
        self.train_size = max(v.train_size for v in variants)
        self.epochs = max(v.epochs for v in variants)
        self.per_lane_steps = self.merged and (
            len({v.train_size for v in variants}) > 1 or len({v.epochs for v in variants}) > 1
        )
        if self.merged:
            arch = [(v.architecture, bool(v.side_features)) for v in variants]
            self.model = MergedModel.build(arch, population.input_shape, len(side), self.conv_impl)
        else:
            self.model = make_model(config, self.conv_impl)
        if self.adam_lanes:
            self.tx = make_lane_optimizer()
        else:
            self.tx = make_optimizer(
                config.optimizer, nesterov=config.nesterov, schedule=config.schedule,
                total_steps=model_steps(config),
                warmup_fraction=config.warmup_fraction,
            )  # fmt: skip
        self.key = (variants, self.facts, self.conv_impl, self.stack_mode, self.keep_params)
        self.body = self._body()

    def _body(self) -> Body:
        config, model = self.config, self.model
        if self.merged:
            init = lambda key, x0, side0, lane: {"params": model.init(key, lane["variant"])}  # noqa: E731
            apply = lambda v, x, side, train, lane: (  # noqa: E731
                model.apply(v["params"], x, side, lane["variant"]),
                {},
            )
        else:
            init = lambda key, x0, side0, lane: model.init(key, x0, side0)  # noqa: E731
            apply = lambda v, x, side, train, lane: model.apply(v, x, side, train=train)  # noqa: E731
        return Body(
            init, apply, self.tx, config.loss, config.metric, config.metric in CLASSIFICATION,
            config.augment, config.early_stopping, config.batch_size,
            self.train_size // config.batch_size, self.epochs, self.train_size,
            self.per_lane_steps, self.facts.target_col, self.facts.side_cols,
            self.facts.num_classes, self.keep_params, config.augment_limits(),
            self.facts.transforms,
        )  # fmt: skip

    def variant_of(self, config: ModelConfig) -> int:
        key = config.static_key()
        for i, v in enumerate(self.variants):
            if v.static_key() == key:
                return i
        raise ValueError(f"the model {config.describe()} is not one of this program's")

    def lanes(self, configs: Sequence[ModelConfig]) -> dict[str, np.ndarray]:
        """The per-lane values of a stack of ``configs``: their scalar hyperparameters and, in a
        merged program, their variant, optimizer choices and step counts."""
        out = {f: np.asarray([getattr(c, f) for c in configs], np.float32) for f in SCALAR_FIELDS}
        if not self.merged:
            return out
        steps = [schedule_steps(model_steps(c), c.warmup_fraction) for c in configs]
        out["variant"] = np.asarray([self.variant_of(c) for c in configs], np.int32)
        if self.adam_lanes:
            out["nesterov"] = np.asarray(
                [c.optimizer.startswith("nadam") for c in configs], np.float32
            )
            out["schedule"] = np.asarray([SCHEDULE_IDS[c.schedule] for c in configs], np.float32)
            out["total_steps"] = np.asarray([t for t, _ in steps], np.float32)
            out["warm_steps"] = np.asarray([w for _, w in steps], np.float32)
        if self.per_lane_steps:
            out["epochs"] = np.asarray([c.epochs for c in configs], np.int32)
            out["n_batches"] = np.asarray([c.train_size // c.batch_size for c in configs], np.int32)
            out["train_size"] = np.asarray([c.train_size for c in configs], np.int32)
            out["rounds"] = np.asarray(
                [permutation_rounds(c.train_size) for c in configs], np.int32
            )
        return out

    def stack(
        self,
        configs: Sequence[ModelConfig],
        instances: np.ndarray,
        subsets: np.ndarray,
    ) -> Lanes:
        """The ``Lanes`` of a stack: ``configs[j]`` trains instance ``instances[j]`` on the
        training subset ``subsets[j]`` (numpy arrays, placed by the caller)."""
        return Lanes(
            self.lanes(configs),
            np.asarray([model_hash(c) for c in configs], np.int32),
            np.asarray(instances, np.int32),
            np.asarray(subsets, np.int32),
        )

    def abstract_stack(self, size: int) -> Lanes:
        """The shapes of a stack of ``size`` lanes, to compile it before its data exists."""
        lanes = self.stack([self.config] * size, np.zeros(size), np.zeros((size, self.train_size)))
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), lanes)

    @property
    def map_group(self) -> int | None:
        """Lanes per vmapped group of a ``lax.map`` stack (``None`` for one ``vmap``)."""
        name, _, size = self.stack_mode.partition(":")
        return int(size) if name == "map" else None


def make_stack_trainer(program: Program, placement: Placement | None = None):
    """The jitted stack trainer of ``program``: ``train(lanes, shared) -> TrainResult``.

    ``lanes`` (``Lanes``) is mapped over, ``shared`` (``Shared``) is shared by every lane: one
    ``vmap`` (accelerators), or ``lax.map`` over vmapped groups of ``program.map_group`` lanes
    (the CPU). With a ``placement`` the stack is split over its mesh's axis and the shared
    arguments replicated (``shard_map``, no communication inside); the caller places the
    arguments (``jrobust.parallel.Placement.put_lanes``/``put_shared``).
    """
    one = functools.partial(train_one, program.body)
    group = program.map_group
    if group is None:
        stack = jax.vmap(one, in_axes=(0, None))
    else:

        def stack(lanes: Lanes, shared: Shared) -> TrainResult:
            return jax.lax.map(lambda lane: one(lane, shared), lanes, batch_size=group)

    if placement is not None:
        axis = PartitionSpec(placement.axis)
        stack = jax.shard_map(
            stack,
            mesh=placement.mesh,
            in_specs=(axis, PartitionSpec()),
            out_specs=axis,
            check_vma=False,
        )
    return jax.jit(stack)


def program_for(
    variants: Sequence[ModelConfig],
    population: Population,
    conv_impl: str | None = None,
    stack_mode: str | None = None,
) -> Program:
    """The program of these variants on this population, from the process's cache."""
    return _DEFAULT_CACHE.program(variants, population, conv_impl, stack_mode)


def make_trainer(config: ModelConfig, population: Population, *, conv_impl: str | None = None):
    """The jitted stack trainer of ``config``'s cohort on ``population``'s shapes (cached).

    Returns ``train(lanes, shared) -> TrainResult``: ``lanes`` a ``Lanes`` of ``(B,)`` arrays
    (``values`` maps each name of ``SCALAR_FIELDS`` to the lanes' values; ``model_hash`` and
    ``instance`` int32; ``subset`` ``(B, train_size)`` int32 event indices) and ``shared`` a
    ``Shared`` (``shared_for(population, seed)``).

    Example:
      >>> import jrobust, numpy as np
      >>> from jrobust.train import lanes_for, make_trainer, shared_for
      >>> pop = jrobust.data.from_arrays(np.random.rand(200, 3), np.random.rand(200))
      >>> cfg = jrobust.zoo.mlp_config(hidden=(4,), train_size=40, batch_size=20, epochs=1)
      >>> train = make_trainer(cfg, pop)
      >>> train(lanes_for(cfg, pop, [0, 1]), shared_for(pop, seed=0)).loss.shape
      (2,)
    """
    return _DEFAULT_CACHE.trainer(program_for([config], population, conv_impl))


def lanes_for(
    config: ModelConfig,
    population: Population,
    instances: Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
) -> Lanes:
    """The ``Lanes`` of a stack of ``config``'s ``instances`` (its scalar hyperparameters, model
    hash, instance indices and the instances' training subsets drawn with ``seed``), for the
    trainer of ``make_trainer``. Change a field with ``lanes._replace(...)`` (e.g. other model
    hashes: other initialisations on the same data)."""
    instances = check_instances(instances)
    program = program_for([config], population)
    subsets = population.subset_indices(
        instances, program.train_size, seed=seed, bootstrap=config.bootstrap
    )
    return program.stack([config] * len(instances), instances, subsets)


def shared_for(population: Population, seed: int = 0) -> Shared:
    """The ``Shared`` arguments of a stack on ``population`` (its device arrays, placed once)."""
    test_index, val_index = population.device_splits()
    return Shared(np.int32(check_seed(seed)), population.device_arrays(), test_index, val_index)


# ---------------------------------------------------------------------------------- checks
def check_compatible(config: ModelConfig, population: Population) -> None:
    """Raise a clear error, before any compilation, when ``config`` cannot train on ``population``."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"expected a jrobust.ModelConfig, got {type(config).__name__}")
    if not isinstance(population, Population):
        raise TypeError(
            f"expected a jrobust.data.Population, got {type(population).__name__}; wrap arrays with "
            "jrobust.data.from_arrays(x, y) or jrobust.data.Population(x, y)"
        )
    if config.batch_size > config.train_size:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the training subset train_size="
            f"{config.train_size}; lower batch_size or raise train_size"
        )
    if not config.bootstrap and config.train_size > population.pool_size:
        raise ValueError(
            f"train_size={config.train_size} is larger than the population's training pool of "
            f"{population.pool_size} events; lower train_size, set bootstrap=True, or use more data"
        )
    if config.is_classification != population.is_classification:
        raise ValueError(_kind_mismatch(config, population))
    population.target_column(config.target)
    population.side_columns(config.side_features)
    if config.early_stopping is not None and len(population.val_index) == 0:
        raise ValueError(
            "early_stopping needs a validation split, but the population has val_size=0; "
            "build the population with val_size > 0"
        )
    if config.augment is not None and len(population.input_shape) != 3:
        raise ValueError(
            f"augment={config.augment!r} needs image inputs (H, W, C), got {population.input_shape}"
        )
    model = make_model(config, "xla")
    x = jax.ShapeDtypeStruct((2, *population.input_shape), jnp.float32)
    side = jax.ShapeDtypeStruct((2, len(config.side_features)), jnp.float32)
    try:
        variables = jax.eval_shape(lambda x, s: model.init(jax.random.key(0), x, s), x, side)
        out, _ = jax.eval_shape(lambda v, x, s: model.apply(v, x, s), variables, x, side)
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"the architecture {config.architecture!r} cannot take inputs of shape "
            f"{population.input_shape} (with {len(config.side_features)} side features): {err}"
        ) from None
    want = population.num_classes if population.is_classification else 1
    if out.shape != (2, want):
        how = (
            f"set outputs={want}"
            if hasattr(config.architecture, "outputs")
            else f"end the module in {want} units"
        )
        raise ValueError(
            f"the architecture gives outputs of shape {out.shape[1:]} per event, expected ({want},) "
            f"on the population {population.name!r}; {how}"
        )


def _kind_mismatch(config: ModelConfig, population: Population) -> str:
    """Every change a model needs to go from regression to classification (or back), in one
    message with the exact keywords."""
    outputs = getattr(config.architecture, "outputs", None)
    if population.is_classification:
        k = population.num_classes
        need = ["loss='cross_entropy'", "metric='cross_entropy' (or 'accuracy', 'error_rate')"]
        if outputs is not None and outputs != k:
            need.append(f"outputs={k}")
        what = f"a classification set ({k} classes)"
    else:
        need = [
            "a regression loss (loss='mse', 'rmse', 'mae', ...)",
            "metric='rmse' (or 'mse', ...)",
        ]
        if outputs is not None and outputs != 1:
            need.append("outputs=1")
        what = "a regression set"
    return (
        f"loss {config.loss!r} and metric {config.metric!r} do not fit the population "
        f"{population.name!r}, which is {what}: set {', '.join(need)}"
    )


def fit_to_population(
    config: ModelConfig, population: Population
) -> tuple[ModelConfig, dict[str, Any]]:
    """``config`` made fit for a classification population where it still has the defaults,
    and what was set.

    A model whose loss and metric are the regression defaults (``"mse"``) gets
    ``loss="cross_entropy"``, ``metric="cross_entropy"``; a classification model whose
    architecture has the default output width 1 gets ``outputs`` = the class count. Only
    settings that could not train on the population are changed (a model that fits is
    returned as it is); anything else that does not fit is left for ``check_compatible`` to
    report.

    Example:
      >>> from jrobust import zoo
      >>> from jrobust.data import digits
      >>> fit_to_population(zoo.cnn_config(conv=(8,), pool=(2,), dense=(16,)), digits())[1]
      {'loss': 'cross_entropy', 'metric': 'cross_entropy', 'outputs': 10}
    """
    if not (isinstance(config, ModelConfig) and isinstance(population, Population)):
        return config, {}
    if not population.is_classification:
        return config, {}
    changes: dict[str, Any] = {}
    if config.loss == "mse" and config.metric == "mse":  # ModelConfig's defaults
        changes.update(loss="cross_entropy", metric="cross_entropy")
    arch = config.architecture
    k = int(population.num_classes)
    classification = config.is_classification or bool(changes)
    if classification and getattr(arch, "outputs", None) == 1 and k != 1:
        if dataclasses.is_dataclass(arch):
            arch = dataclasses.replace(arch, outputs=k)
            changes["outputs"] = k
    if not changes:
        return config, {}
    fields = {f: v for f, v in changes.items() if f != "outputs"}
    return dataclasses.replace(config, architecture=arch, **fields), changes


def fit_all(
    configs: Sequence[ModelConfig], population: Population
) -> tuple[list[ModelConfig], dict[str, int]]:
    """Every model made fit for the population (``fit_to_population``), and a tally of what was
    set: ``{"loss='cross_entropy', ...": number of models}`` (empty when nothing changed)."""
    fitted, tally = [], {}
    for config in configs:
        new, changes = fit_to_population(config, population)
        fitted.append(new)
        if changes:
            key = ", ".join(f"{k}={v!r}" for k, v in changes.items())
            tally[key] = tally.get(key, 0) + 1
    return fitted, tally


def fit_note(population: Population, tally: dict[str, int], where: str = "") -> str:
    """The sentence that says what ``fit_all`` set (``""`` when nothing), e.g. "digits is a
    classification set: 2 models race with loss='cross_entropy', ... (set loss, metric and
    outputs to choose otherwise)"; ``where`` names where to set them (``" in the space file"``)."""
    if not tally:
        return ""
    how = "; ".join(f"{n} model{'s' if n != 1 else ''} race with {key}" for key, n in tally.items())
    return (
        f"{population.name} is a classification set: {how} (set loss, metric and outputs"
        f"{where} to choose otherwise)"
    )


# ---------------------------------------------------------------------------------- driving
def check_instances(values: Sequence[int] | np.ndarray) -> np.ndarray:
    """Instance indices as a 1-D ``int32`` array; anything but non-negative integers is an error
    (``0.5`` is not silently instance 0)."""
    arr = np.asarray(values)
    if arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(
            f"instance indices must be non-negative integers, got {arr.reshape(-1)[:5].tolist()} "
            f"(dtype {arr.dtype}); pass e.g. range(8)"
        )
    arr = arr.astype(np.int64).reshape(-1)
    bad = (arr < 0) | (arr > np.iinfo(np.int32).max)
    if bad.any():
        raise ValueError(
            f"instance indices must be non-negative integers below 2**31, got {arr[bad][:5].tolist()}"
        )
    return arr.astype(np.int32)


def bucket_size_for(n: int, multiple: int = 1, cap: int | None = None) -> int:
    """The stack size used for ``n`` instances: the next power of two (times ``multiple``), capped.

    Powers of two keep the number of distinct compiled shapes small while survivors shrink.
    """
    size = 1
    while size < n:
        size *= 2
    size = max(size, multiple)
    size = -(-size // multiple) * multiple
    if cap is not None:
        cap = max(multiple, cap // multiple * multiple)
        size = min(size, cap)
    return size


def train_stack(
    configs: Sequence[ModelConfig],
    instances: Sequence[int] | np.ndarray,
    population: Population,
    *,
    seed: int = 0,
    subsets: np.ndarray | None = None,
    bucket: int | None = None,
    conv_impl: str | None = None,
    placement: Placement | None = None,
    program: Program | None = None,
    stack_mode: str | None = None,
) -> dict[str, np.ndarray]:
    """Train pairs ``(configs[j], instances[j])`` of ONE program as one stack; numpy results.

    Args:
      configs: one ModelConfig per lane: of one cohort (equal ``static_key()``), or models of
        ``program``.
      instances: the instance index of each lane.
      population: the data.
      seed: the race / experiment seed.
      subsets: optional precomputed ``(len, train_size)`` training subsets (in a program whose
        models differ in ``train_size``: of its largest ``train_size``).
      bucket: pad the stack to this size (``None``: ``bucket_size_for(len)``); padded lanes repeat
        the last pair and are dropped from the result.
      placement: optional ``jrobust.parallel.Placement``: shards the stack over its mesh.
      program: the program the lanes belong to (default: their cohort's own).
      stack_mode: how the stack runs (see ``resolve_stack_mode``; ignored with ``program``).

    Returns:
      dict with ``loss``, ``ok``, ``epochs``, every metric (arrays of ``len(configs)``),
      ``seconds`` (wall time of the training) and ``compile_seconds`` (0 when already compiled).
    """
    if program is None:
        key0 = configs[0].static_key() if len(configs) else None
        if any(c.static_key() != key0 for c in configs):
            raise ValueError(
                "train_stack takes models of one cohort (equal static fields), or of one "
                "program (program=...); group them first"
            )
        if len(configs):
            program = program_for([configs[0]], population, conv_impl, stack_mode)
    shared = shared_for(population, seed)
    if placement is not None:
        shared = placement.put_shared(shared)
    pending = launch_stack(
        program, configs, instances, population, shared,
        seed=seed, subsets=subsets, bucket=bucket, placement=placement,
    )  # fmt: skip
    t0 = time.perf_counter()
    out = collect(pending)
    out["seconds"] = time.perf_counter() - t0
    out["compile_seconds"] = pending.compile_seconds
    return out


class Pending(NamedTuple):
    """A dispatched stack: device results not yet fetched (JAX dispatches asynchronously)."""

    result: TrainResult
    n: int
    compile_seconds: float
    placement: Placement | None = None


def launch_stack(
    program: Program | None,
    configs: Sequence[ModelConfig],
    instances: Sequence[int] | np.ndarray,
    population: Population,
    shared: Shared,
    *,
    seed: int = 0,
    subsets: np.ndarray | None = None,
    bucket: int | None = None,
    placement: Placement | None = None,
    cache: ProgramCache | None = None,
) -> Pending:
    """Dispatch one stack of ``program`` and return at once, its results still on the device.

    ``shared`` is the stack's shared arguments, already placed (``shared_for``, and with a
    placement ``placement.put_shared``); the lanes are built here and padded to ``bucket``.
    """
    n = len(configs)
    if n == 0 or program is None:
        raise ValueError("no instances to train: pass at least one (config, instance) pair")
    seed = check_seed(seed)
    instances = check_instances(instances)
    if instances.shape != (n,):
        raise ValueError(
            f"got {instances.shape[0]} instance indices for {n} configs; give one per config"
        )
    if subsets is None:
        subsets = population.subset_indices(
            instances, program.train_size, seed=seed, bootstrap=program.config.bootstrap
        )
    size = bucket or bucket_size_for(n)
    if size < n:
        raise ValueError(f"bucket={size} is smaller than the {n} instances of the stack")
    pad = np.concatenate([np.arange(n), np.full(size - n, n - 1)])
    lanes = program.stack([configs[j] for j in pad], instances[pad], np.asarray(subsets)[pad])
    if placement is not None:
        lanes = placement.put_lanes(lanes)
    cache = cache or _DEFAULT_CACHE
    executable, compile_seconds = cache.executable(program, size, placement, lanes, shared)
    return Pending(executable(lanes, shared), n, compile_seconds, placement)


def collect(pending: Pending) -> dict[str, np.ndarray]:
    """Fetch a dispatched stack's results as numpy arrays (padded lanes dropped)."""
    if pending.placement is not None:
        result = pending.placement.fetch(pending.result)
    else:
        result = jax.device_get(pending.result)
    n = pending.n
    out = {
        "loss": np.asarray(result.loss)[:n],
        "ok": np.asarray(result.ok)[:n],
        "epochs": np.asarray(result.epochs)[:n],
    }
    for k, v in result.metrics.items():
        out[k] = np.asarray(v)[:n]
    if result.params is not None:
        out["params"] = jax.tree.map(lambda a: np.asarray(a)[:n], result.params)
    if result.transformed is not None:
        out["transformed"] = np.asarray(result.transformed)[:n]
    return out


def train_instances(
    config: ModelConfig,
    population: Population,
    instance_indices: Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
    max_stack: int | None = None,
    conv_impl: str | None = None,
) -> pd.DataFrame:
    """Train instances of one model (stacked) and return one row per instance.

    Instance ``i`` draws training subset ``i`` of the population (the same for every model with
    this seed and ``train_size``) and an init key from ``(seed, i, model)``.

    Args:
      config: the model.
      population: the data.
      instance_indices: which instances (non-negative integers, each trained independently).
      seed: the experiment seed.
      max_stack: train at most this many instances per compiled call.

    Returns:
      DataFrame of the rows a race's ledger has (``jrobust._src.race.ledger.ledger_rows``): ``instance``,
      ``loss`` (the test metric, lower is better; +inf for a failed instance), ``status``
      (``"ok"``, ``"diverged"`` or ``"failed"``), ``epochs`` and every test metric. On a
      population with transformed test sets (``jrobust.data.with_transforms``) each instance
      has its row with ``transform="none"`` (``param`` NaN) followed by one row per
      ``(transform, param)`` of the grid, as in the race's ledger.

    Raises:
      TypeError, ValueError: instance indices that are not non-negative integers, a seed
        outside ``[0, 2**31 - 1]``, a model that cannot train on the population; all before
        anything compiles.

    Example:
      >>> import jrobust, numpy as np
      >>> pop = jrobust.data.from_arrays(np.random.rand(300, 4), np.random.rand(300))  # doctest: +SKIP
      >>> cfg = jrobust.zoo.mlp_config(hidden=(8,), train_size=100, batch_size=20, epochs=2)  # doctest: +SKIP
      >>> jrobust.train_instances(cfg, pop, [0, 1])["loss"].shape  # doctest: +SKIP
      (2,)
    """
    instances = check_instances(instance_indices)
    if instances.size == 0:
        raise ValueError("instance_indices is empty; pass e.g. range(8)")
    seed = check_seed(seed)
    (config,), tally = fit_all([config], population)
    if tally:
        warnings.warn(fit_note(population, tally), UserWarning, stacklevel=2)
    check_compatible(config, population)
    step = max_stack or bucket_size_for(instances.size)
    parts = []
    for start in range(0, instances.size, step):
        chunk = instances[start : start + step]
        res = train_stack(
            [config] * chunk.size,
            chunk,
            population,
            seed=seed,
            conv_impl=conv_impl,
            bucket=bucket_size_for(chunk.size, cap=step),
        )
        res.pop("seconds")
        res.pop("compile_seconds")
        res.pop("params", None)
        parts.append(res)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ok = joined.pop("ok").astype(bool) & np.isfinite(joined["loss"])
    losses = np.where(ok, joined.pop("loss").astype(np.float64), np.inf)
    transformed = joined.pop("transformed", None)
    grid = population.transforms
    if transformed is not None:
        transformed = np.where(
            ok[:, None] & np.isfinite(transformed), transformed.astype(np.float64), np.inf
        )
    reference = losses[np.isfinite(losses)]
    tstatus = None
    if transformed is not None:
        tstatus = statuses(transformed, np.isfinite(transformed), reference)
    rows = ledger_rows(
        {"instance": instances.astype(np.int64)},
        losses,
        statuses(losses, ok, reference),
        joined,
        transformed,
        tstatus,
        list(grid.pairs) if transformed is not None else (),
    )
    return pd.DataFrame(rows)
