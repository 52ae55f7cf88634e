"""Evaluators: what turns a round's work list into losses.

``Engine`` trains a work list with the vectorised JAX trainer. The models are grouped into
*programs* once (``jrobust.programs``: cohorts, merged where the padded work pays), each program
is built once (``jrobust.train.Program``) and trains its share of a round in stacks of ONE size,
chosen at its first use: every program compiles once per race. Where a stack is one ``vmap``
(accelerators) the size is one instance of each of the program's models, at least
``min_bucket`` (default 8); on the CPU, where a stack is a ``lax.map`` over groups of two lanes
and the speed per lane hardly depends on the stack's size, it is at most two groups (4 lanes),
so a round's share is padded by at most 3 lanes. Both are powers of two (times the device
count) within what the device memory holds. All stacks of a round are
dispatched before the first is fetched, and while one program's stacks train, the next
program's executable compiles on a background thread. ``call_evaluator`` wraps a user's Python
evaluator (``f(model_ids, instances) -> losses``), so the race is model-agnostic.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import numbers
import time
from collections.abc import Callable

import jax
import numpy as np

from jrobust import _signals, parallel, train
from jrobust.config import ModelConfig, model_hash
from jrobust.data.population import Population
from jrobust.programs import plan_programs
from jrobust.settings import RaceSettings
from jrobust.state import Outcome, Work

__all__ = ["Engine", "call_evaluator"]


def call_evaluator(
    evaluator: Callable[[np.ndarray, np.ndarray], np.ndarray], work: Work
) -> Outcome:
    """Run a user's evaluator on a work list (it gets copies: it cannot change the race's)."""
    t0 = time.perf_counter()
    raw = evaluator(work.models.copy(), work.instances.copy())
    transformed = None
    if isinstance(raw, tuple):
        if len(raw) != 2:
            raise TypeError(
                "the evaluator must return the losses, or a pair (losses, transformed_losses) "
                f"with transformed_losses of shape (instances, transforms); got {len(raw)} items"
            )
        raw, transformed = raw
    losses = _real_numbers(raw, "the evaluator must return real numbers, one per instance")
    if losses.shape != work.models.shape:
        raise ValueError(
            f"the evaluator returned {losses.shape[0]} losses for {len(work.models)} instances; "
            "return one loss per (model, instance) pair, in their order"
        )
    if transformed is not None:
        transformed = _real_numbers(
            transformed, "the evaluator's transformed losses must be real numbers", flat=False
        )
        if transformed.ndim == 1:
            transformed = transformed[:, None]
        if transformed.ndim != 2 or transformed.shape[0] != len(losses):
            raise ValueError(
                f"the evaluator's transformed losses have shape {transformed.shape}; give one row "
                f"per instance and one column per transformation: ({len(losses)}, T)"
            )
    seconds = time.perf_counter() - t0
    return Outcome(losses, {}, np.isfinite(losses), seconds=seconds, transformed=transformed)


def _real_numbers(values, message: str, flat: bool = True) -> np.ndarray:
    """``values`` as float64 if they are real numbers (integers or floats; NaN and inf are
    failures the race records), else a ``TypeError``: strings, booleans, complex numbers and
    other objects are refused rather than converted (``"1.5"`` is not a loss, ``True`` is not
    1.0, and a complex loss has no order)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{message}: {err}") from None
    if arr.dtype == object:
        bad = [v for v in arr.reshape(-1) if isinstance(v, bool | np.bool_) or not _is_real(v)]
    elif arr.dtype.kind in "iuf":
        bad = []
    else:
        bad = arr.reshape(-1)[:1].tolist() or [arr.dtype]
    if bad:
        raise TypeError(
            f"{message}, got {type(bad[0]).__name__} {bad[0]!r} (dtype {arr.dtype}); return a "
            "float array, with NaN for an instance that failed"
        )
    arr = arr.astype(np.float64)
    return arr.reshape(-1) if flat else arr


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


class Engine:
    """Trains work lists with the JAX trainer: per program, one stack size, dispatched before
    fetching, the next program compiled while the current one trains.

    Args:
      configs: the models of the race (model id = index).
      population: the data.
      settings: the race settings (seed, bucket sizes, convolution form, merge policy, stack mode).
      devices: devices to shard stacks over (``None``: all local devices when there are several).
      events: called with a dict at the steps inside a round, for a progress display (it must
        not change anything the engine uses): ``{"event": "program", "program": k, "programs":
        n, "compiling": bool, "instances": i}`` before program ``k`` (1-based) of the round's
        ``n`` launches its stacks (``compiling``: its executable is not ready yet, so this
        launch waits for the compiler), and ``{"event": "trained", "stacks": j, "of": s,
        "instances": i, "total": t}`` each time a stack's results arrive.
    """

    def __init__(
        self,
        configs: list[ModelConfig],
        population: Population,
        settings: RaceSettings,
        devices=None,
        events: Callable[[dict], None] | None = None,
    ) -> None:
        self.events = events
        self.configs = configs
        self.population = population
        self.seed = int(settings.seed)
        self.conv_impl = settings.conv_impl
        self.stack_mode = settings.stack_mode
        self.max_bucket = settings.max_bucket
        self.min_bucket = settings.min_bucket
        self.placement = parallel.placement_for(devices)
        self.multiple = self.placement.n_devices if self.placement is not None else 1
        self.plans = plan_programs(
            configs, population.input_shape, merge=settings.merge, waste=settings.waste
        )
        self.program_of = np.empty(len(configs), np.int64)
        for p, plan in enumerate(self.plans):
            self.program_of[list(plan.model_ids)] = p
        self.n_cohorts = len({c.static_key() for c in configs})
        self._programs: dict[int, train.Program] = {}
        self._size: dict[int, int] = {}  # per program: its one stack size
        self._compile: dict[int, float] = {}  # per program: seconds spent compiling
        self._sizes: dict[int, set] = {}  # per program: the (stage size, stack size) compiled
        self._lanes: dict[int, int] = {}  # per program: lanes trained (real ones)
        self._subsets: dict[tuple, dict[int, np.ndarray]] = {}
        self._hashes = np.asarray([model_hash(c) for c in configs], np.int32)
        self._background = concurrent.futures.ThreadPoolExecutor(1, "jrobust-compile")
        self._compiling: dict[int, concurrent.futures.Future] = {}

    # ------------------------------------------------------------------ programs
    def program(self, p: int, stage: int | None = None) -> train.Program:
        """Program ``p``, at a fidelity stage's training size ``stage`` (``None``: its own)."""
        key = (p, stage)
        if key not in self._programs:
            variants = [_sized(v, stage) for v in self.plans[p].variants]
            self._programs[key] = train.program_for(
                variants, self.population, self.conv_impl, self.stack_mode
            )
        return self._programs[key]

    def size(self, p: int, stage: int | None = None) -> int:
        """The program's one stack size (see the module docstring)."""
        key = (p, stage)
        if key not in self._size:
            program = self.program(p, stage)
            cap = parallel.max_stack(program, self.population, self.placement, cap=self.max_bucket)
            n = len(self.plans[p].model_ids)
            if program.stack_mode == "vmap":
                n = max(n, 8 if self.min_bucket is None else self.min_bucket)
            else:
                group = int(program.stack_mode.partition(":")[2])
                n = max(min(n, 2 * group), self.min_bucket or 1)
            self._size[key] = train.bucket_size_for(n, self.multiple, cap)
        return self._size[key]

    def subsets(self, program: train.Program, instances: np.ndarray) -> np.ndarray:
        """Training subsets of the program's largest size, drawn once per instance (a smaller
        subset is a prefix of a larger one)."""
        key = (program.train_size, program.config.bootstrap)
        cache = self._subsets.setdefault(key, {})
        missing = sorted({int(i) for i in instances} - set(cache))
        if missing:
            padded = missing + [missing[-1]] * (train.bucket_size_for(len(missing)) - len(missing))
            rows = self.population.subset_indices(
                padded, program.train_size, seed=self.seed, bootstrap=program.config.bootstrap
            )
            cache.update({i: rows[j] for j, i in enumerate(missing)})
        return np.stack([cache[int(i)] for i in instances])

    def _prefetch(self, p: int, stage: int | None) -> None:
        """Compile program ``p``'s stack on the background thread (if it is not compiled)."""
        program, size = self.program(p, stage), self.size(p, stage)
        key = ("compiled", program.key, size, self.placement)
        if (p, stage) in self._compiling or key in train._cache:
            return
        args = _abstract_args(program, self.population, size, self.placement)
        future = self._background.submit(program.compiled, size, self.placement, args)
        self._compiling[(p, stage)] = future

    def _is_compiled(self, p: int, stage: int | None) -> bool:
        """Whether program ``p``'s stack is compiled and ready (not compiling in the background)."""
        future = self._compiling.get((p, stage))
        if future is not None:
            return future.done()
        program, size = self.program(p, stage), self.size(p, stage)
        return ("compiled", program.key, size, self.placement) in train._cache

    def _wait_compiled(self, p: int, stage: int | None) -> tuple[float, float]:
        """``(compile seconds, seconds waited)`` of program ``p``'s background compilation."""
        future = self._compiling.pop((p, stage), None)
        if future is None:
            return 0.0, 0.0
        t0 = time.perf_counter()
        seconds = future.result()[1]
        self._compile[p] = self._compile.get(p, 0.0) + seconds
        self._sizes.setdefault(p, set()).add((stage, self.size(p, stage)))
        return seconds, time.perf_counter() - t0

    def timing(self) -> dict:
        """Programs, their padded work and their compile seconds, for ``result.timing``."""
        programs = []
        for p, plan in enumerate(self.plans):
            if p not in self._sizes:
                continue
            programs.append(
                dict(
                    program=p,
                    models=len(plan.model_ids),
                    variants=len(plan.variants),
                    merged=plan.merged,
                    waste=round(float(plan.waste), 4),
                    stack_sizes=sorted({size for _, size in self._sizes[p]}),
                    executables=len(self._sizes[p]),
                    lanes_trained=self._lanes.get(p, 0),
                    compile_seconds=self._compile.get(p, 0.0),
                )
            )
        return {
            "n_cohorts": self.n_cohorts,
            "n_programs": len(programs),
            "n_planned_programs": len(self.plans),
            "n_compiled": sum(x["executables"] for x in programs),
            "programs": programs,
        }

    # ------------------------------------------------------------------ a round
    def __call__(self, work: Work) -> Outcome:
        """Train a work list; between stacks, a pending Ctrl-C stops it (``_signals.check``)."""
        models, instances = work.models, work.instances
        stages = {None} if work.train_size is None else {int(v) for v in work.train_size}
        if len(stages) > 1:
            raise ValueError(f"a work list trains at one size, got sizes {sorted(stages)}")
        stage = stages.pop()  # a fidelity stage's training size (None: the models' own)
        t0 = time.perf_counter()
        pending, compile_s, blocked, steps = [], 0.0, 0.0, 0
        order = list(np.unique(self.program_of[models]))
        for k, p in enumerate(order):
            sel = np.flatnonzero(self.program_of[models] == p)
            program = self.program(p, stage)
            if self.events is not None:
                self.events(
                    dict(
                        event="program",
                        program=k + 1,
                        programs=len(order),
                        compiling=not self._is_compiled(p, stage),
                        instances=len(sel),
                    )
                )
            seconds, waited = self._wait_compiled(p, stage)
            compile_s, blocked = compile_s + seconds, blocked + waited
            if k + 1 < len(order):
                self._prefetch(order[k + 1], stage)
            start = 0
            while start < len(sel):
                _signals.check()
                size = self.size(p, stage)  # lowered after a stack ran out of memory
                chunk = sel[start : start + size]
                start += len(chunk)
                parts = parallel.launch_with_retry(
                    [_sized(self.configs[m], stage) for m in models[chunk]],
                    instances[chunk],
                    self.population,
                    seed=self.seed,
                    subsets=self.subsets(program, instances[chunk]),
                    bucket=size,
                    placement=self.placement,
                    program=program,
                )
                for part_index, part in parts:
                    pending.append((chunk[part_index], part))
                    compile_s += part.compile_seconds
                    blocked += part.compile_seconds
                    self._compile[p] = self._compile.get(p, 0.0) + part.compile_seconds
                    self._sizes.setdefault(p, set()).add((stage, len(part.result.loss)))
                if len(parts) > 1:  # split after running out of memory: keep the size that fit
                    self._size[(p, stage)] = max(len(part.result.loss) for _, part in parts)
                self._lanes[p] = self._lanes.get(p, 0) + len(chunk)
            steps += sum(
                c.epochs * (c.train_size // c.batch_size)
                for c in (_sized(self.configs[m], stage) for m in models[sel])
            )
        losses = np.empty(len(models))
        ok = np.zeros(len(models), bool)
        metrics: dict[str, np.ndarray] = {}
        grid = self.population.transforms
        transformed = np.full((len(models), len(grid)), np.nan) if grid is not None else None
        done = 0
        for j, (idx, part) in enumerate(pending):
            out = train.collect(part)
            done += len(idx)
            if self.events is not None:
                self.events(
                    dict(
                        event="trained",
                        stacks=j + 1,
                        of=len(pending),
                        instances=done,
                        total=len(models),
                    )
                )
            ok[idx] = out.pop("ok")
            losses[idx] = out.pop("loss")
            values = out.pop("transformed", None)
            if transformed is not None and values is not None:
                transformed[idx] = values
            for k, v in out.items():
                metrics.setdefault(k, np.zeros(len(models), np.float64))[idx] = v
        # compilation on the background thread overlapped training: only the waiting counts
        seconds = time.perf_counter() - t0 - blocked
        pairs = tuple(grid.pairs) if grid is not None else None
        return Outcome(losses, metrics, ok, seconds, compile_s, steps, transformed, pairs)


def _sized(config: ModelConfig, train_size: int | None) -> ModelConfig:
    """The model at a fidelity stage's training size (``None``: its own)."""
    return config if train_size is None else dataclasses.replace(config, train_size=train_size)


def _abstract_args(program: train.Program, population: Population, size: int, placement):
    """Shape-only arguments of a stack of ``size`` lanes, to compile it ahead of its data."""
    config = program.config
    lanes = program.lanes([config] * size)
    struct = lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype)  # noqa: E731
    args = (
        {k: struct(v) for k, v in lanes.items()},
        jax.ShapeDtypeStruct((size,), np.int32),
        jax.ShapeDtypeStruct((size,), np.int32),
        jax.ShapeDtypeStruct((size, program.train_size), np.int32),
    )
    data = population.device_arrays()
    if placement is not None:
        args, data = placement.shard_abstract(args, data)
    test_index, val_index = population.device_splits()
    return (*args, np.int32(0), data, test_index, val_index)
