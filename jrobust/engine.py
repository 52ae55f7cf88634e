"""Evaluators: what turns a round's work list into losses.

``Engine`` trains a work list with the vectorised JAX trainer: the instances of each cohort are
packed into buckets (stacks of a few fixed sizes) that one compiled, vmapped call trains each,
sharded over the devices when there are several; every stack is dispatched before the first is
fetched. ``call_evaluator`` wraps a user's Python evaluator (``f(model_ids, instances) ->
losses``), so the race is model-agnostic.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from jrobust import _signals, parallel, train
from jrobust.config import ModelConfig
from jrobust.data.population import Population
from jrobust.settings import RaceSettings
from jrobust.state import Outcome, Work

__all__ = ["Engine", "call_evaluator"]


def call_evaluator(
    evaluator: Callable[[np.ndarray, np.ndarray], np.ndarray], work: Work
) -> Outcome:
    """Run a user's evaluator on a work list (it gets copies: it cannot change the race's)."""
    t0 = time.perf_counter()
    raw = evaluator(work.models.copy(), work.instances.copy())
    try:
        losses = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"the evaluator must return one number per instance: {err}") from None
    if losses.shape != work.models.shape:
        raise ValueError(
            f"the evaluator returned {losses.shape[0]} losses for {len(work.models)} instances; "
            "return one loss per (model, instance) pair, in their order"
        )
    return Outcome(losses, {}, np.isfinite(losses), seconds=time.perf_counter() - t0)


class Engine:
    """Trains work lists with the JAX trainer: per cohort, bucketed, dispatched before fetching.

    Args:
      configs: the models of the race (model id = index).
      population: the data.
      settings: the race settings (seed, bucket sizes, convolution form).
      devices: devices to shard stacks over (``None``: all local devices when there are several).
    """

    def __init__(
        self,
        configs: list[ModelConfig],
        population: Population,
        settings: RaceSettings,
        devices=None,
    ) -> None:
        self.configs = configs
        self.population = population
        self.seed = int(settings.seed)
        self.conv_impl = settings.conv_impl
        self.max_bucket = settings.max_bucket
        self.min_bucket = int(settings.min_bucket)
        self.placement = parallel.placement_for(devices)
        self.multiple = self.placement.n_devices if self.placement is not None else 1
        self._caps: dict[int, int] = {}  # per cohort: the largest stack per call
        keys: dict[tuple, int] = {}
        self.cohort = np.asarray([keys.setdefault(c.static_key(), len(keys)) for c in configs])
        self.n_cohorts = len(keys)
        self.programs: set = set()
        self._subsets: dict[tuple, dict[int, np.ndarray]] = {}

    @property
    def n_programs(self) -> int:
        return len(self.programs)

    def timing(self) -> dict[str, int]:
        return {"n_cohorts": self.n_cohorts, "n_programs": self.n_programs}

    def cap(self, cohort: int, config: ModelConfig) -> int:
        """The largest stack of a cohort per compiled call: sized from free device memory and
        the model's footprint, at most ``max_bucket``; decided once per cohort (and on every host
        alike), lowered when a stack still runs out of memory."""
        if cohort not in self._caps:
            self._caps[cohort] = parallel.max_stack(
                config, self.population, self.placement, cap=self.max_bucket,
                conv_impl=self.conv_impl,
            )  # fmt: skip
        return self._caps[cohort]

    def subsets(self, config: ModelConfig, instances: np.ndarray) -> np.ndarray:
        """Training subsets of the instances, drawn once per (size, bootstrap) and instance."""
        cache = self._subsets.setdefault((config.train_size, config.bootstrap), {})
        missing = sorted({int(i) for i in instances} - set(cache))
        if missing:
            padded = missing + [missing[-1]] * (train.bucket_size_for(len(missing)) - len(missing))
            rows = self.population.subset_indices(
                padded, config.train_size, seed=self.seed, bootstrap=config.bootstrap
            )
            cache.update({i: rows[j] for j, i in enumerate(missing)})
        return np.stack([cache[int(i)] for i in instances])

    def __call__(self, work: Work) -> Outcome:
        """Train a work list; between stacks, a pending Ctrl-C stops it (``_signals.check``)."""
        models, instances = work.models, work.instances
        size = None if work.train_size is None else {int(v) for v in work.train_size}
        if size is not None and len(size) > 1:
            raise ValueError(f"a work list trains at one size, got sizes {sorted(size)}")
        size = size.pop() if size else None

        def sized(config: ModelConfig) -> ModelConfig:  # a fidelity stage's training size
            return config if size is None else dataclasses.replace(config, train_size=size)

        t0 = time.perf_counter()
        pending, compile_s, steps = [], 0.0, 0
        for c in np.unique(self.cohort[models]):
            sel = np.flatnonzero(self.cohort[models] == c)
            config = sized(self.configs[models[sel[0]]])
            start = 0
            while start < len(sel):
                _signals.check()
                cap = self.cap(int(c), config)  # a multiple of the device count
                chunk = sel[start : start + cap]
                start += len(chunk)
                bucket = train.bucket_size_for(max(len(chunk), self.min_bucket), self.multiple, cap)
                parts = parallel.launch_with_retry(
                    [sized(self.configs[m]) for m in models[chunk]],
                    instances[chunk],
                    self.population,
                    seed=self.seed,
                    subsets=self.subsets(config, instances[chunk]),
                    bucket=bucket,
                    conv_impl=self.conv_impl,
                    placement=self.placement,
                )
                for part_index, part in parts:
                    pending.append((chunk[part_index], part))
                    compile_s += part.compile_seconds
                    self.programs.add((int(c), len(part.result.loss)))
                if len(parts) > 1:  # split after running out of memory: remember the size that fit
                    self._caps[int(c)] = max(len(part.result.loss) for _, part in parts)
                steps += len(chunk) * config.epochs * (config.train_size // config.batch_size)
        losses = np.empty(len(models))
        ok = np.zeros(len(models), bool)
        metrics: dict[str, np.ndarray] = {}
        for idx, part in pending:
            out = train.collect(part)
            ok[idx] = out.pop("ok")
            losses[idx] = out.pop("loss")
            for k, v in out.items():
                metrics.setdefault(k, np.zeros(len(models), np.float64))[idx] = v
        seconds = time.perf_counter() - t0 - compile_s
        return Outcome(losses, metrics, ok, seconds, compile_s, steps)
