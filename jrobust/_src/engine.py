"""Evaluators: what turns a round's work list into losses.

``Engine`` trains a work list with the vectorised JAX trainer. The models are grouped into
*programs* once (``jrobust._src.programs``: cohorts, merged where the padded work pays), each program
is built once (``jrobust._src.train.Program``) and trains its share of a round in stacks of ONE size,
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
import time
from collections.abc import Callable, Sequence

import numpy as np

from jrobust._src import signals as _signals
from jrobust._src import train
from jrobust._src.config import ModelConfig
from jrobust._src.data.population import Population
from jrobust._src.parallel import memory, oom, placement
from jrobust._src.programs import model_steps, plan_programs
from jrobust._src.race.work import Outcome, Work
from jrobust._src.settings import Execution

__all__ = ["Engine", "ProgramSlot"]


@dataclasses.dataclass
class ProgramSlot:
    """One program of a race at one training size: everything the engine learns about it.

    Attributes:
      program: the built program (``jrobust._src.train.Program``).
      size: its one stack size (lowered after a stack ran out of memory).
      compile_seconds: seconds spent compiling its executables in this race.
      stack_sizes: the stack sizes it was compiled for.
      lanes: the real lanes it trained.
      compiling: the background compilation of its stack, while it runs.
    """

    program: train.Program
    size: int
    compile_seconds: float = 0.0
    stack_sizes: set[int] = dataclasses.field(default_factory=set)
    lanes: int = 0
    compiling: concurrent.futures.Future | None = None


# The one owner of the programs, their slots and the compile-ahead pipeline: 15 methods, each
# long: one step (plan, add, slot, stack size, prefetch, train, collect), the longest 37 lines.
class Engine:
    """Trains work lists with the JAX trainer: per program, one stack size, dispatched before
    fetching, the next program compiled while the current one trains.

    Args:
      configs: the models of the race (model id = index).
      population: the data.
      execution: how to compute (stack sizes, convolution form, merge policy, stack mode:
        ``RaceSettings.execution``).
      seed: the race's root seed.
      devices: devices to shard stacks over (``None``: all local devices when there are several).
      cache: where programs and executables are kept (default: the process's, so a second race
        reuses the first one's executables).
      variants: plan the programs from these static variants instead of from ``configs``
        (a search plans them once from its space, ``jrobust._src.search.iterate.every_variant``);
        every model, given now or later by ``add``, then trains in the program whose variants
        hold its static configuration (``static_key``).
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
        execution: Execution,
        seed: int = 0,
        devices=None,
        cache: train.ProgramCache | None = None,
        events: Callable[[dict], None] | None = None,
        variants: Sequence[ModelConfig] | None = None,
    ) -> None:
        self.events = events
        self.configs = list(configs)
        self.population = population
        self.seed = int(seed)
        self.execution = execution
        self.cache = cache or train.default_cache()
        self.placement = placement.placement_for(devices)
        self.multiple = self.placement.n_devices if self.placement is not None else 1
        shared = train.shared_for(population, self.seed)
        self.shared = self.placement.put_shared(shared) if self.placement else shared
        planned = list(variants) if variants is not None else self.configs
        self.plans = plan_programs(
            planned, population.input_shape, merge=execution.merge, waste=execution.waste
        )
        # static configuration -> its program: how a model added later finds its program
        self._program_of_key = {
            v.static_key(): p for p, plan in enumerate(self.plans) for v in plan.variants
        }
        self.program_of = self._programs_of(self.configs)
        self.n_cohorts = len({c.static_key() for c in self.configs})
        self.slots: dict[tuple[int, int | None], ProgramSlot] = {}
        self._subsets: dict[tuple, dict[int, np.ndarray]] = {}
        self._background = concurrent.futures.ThreadPoolExecutor(1, "jrobust-compile")

    # ------------------------------------------------------------------ models
    def _programs_of(self, configs: Sequence[ModelConfig]) -> np.ndarray:
        out = np.empty(len(configs), np.int64)
        for j, config in enumerate(configs):
            p = self._program_of_key.get(config.static_key())
            if p is None:
                raise ValueError(
                    f"the model {config.describe()} fits none of the engine's planned programs "
                    "(its static configuration is not one of the variants they were planned "
                    "from); plan the engine from variants that include it"
                )
            out[j] = p
        return out

    def add(self, configs: Sequence[ModelConfig]) -> np.ndarray:
        """Add models to train, each in the planned program that holds its static
        configuration; returns their model ids (the next free ones, in order).

        Raises:
          ValueError: a model that fits none of the planned programs (nothing is added then).
        """
        configs = list(configs)
        programs = self._programs_of(configs)
        ids = np.arange(len(self.configs), len(self.configs) + len(configs), dtype=np.int64)
        self.configs.extend(configs)
        self.program_of = np.concatenate([self.program_of, programs])
        self.n_cohorts = len({c.static_key() for c in self.configs})
        return ids

    # ------------------------------------------------------------------ programs
    def slot(self, p: int, stage: int | None = None) -> ProgramSlot:
        """Program ``p`` at a fidelity stage's training size ``stage`` (``None``: its own), built
        at its first use with its one stack size (see the module docstring)."""
        key = (p, stage)
        if key not in self.slots:
            variants = [_sized(v, stage) for v in self.plans[p].variants]
            execution = self.execution
            program = self.cache.program(
                variants, self.population, execution.conv_impl, execution.stack_mode
            )
            self.slots[key] = ProgramSlot(program, self._stack_size(p, program))
        return self.slots[key]

    def program(self, p: int, stage: int | None = None) -> train.Program:
        return self.slot(p, stage).program

    def size(self, p: int, stage: int | None = None) -> int:
        """The program's one stack size (see the module docstring)."""
        return self.slot(p, stage).size

    def _stack_size(self, p: int, program: train.Program) -> int:
        execution = self.execution
        cap = memory.max_stack(program, self.population, self.placement, cap=execution.max_bucket)
        n = len(self.plans[p].model_ids)
        if program.map_group is None:
            n = max(n, 8 if execution.min_bucket is None else execution.min_bucket)
        else:
            n = max(min(n, 2 * program.map_group), execution.min_bucket or 1)
        return train.bucket_size_for(n, self.multiple, cap)

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
        slot = self.slot(p, stage)
        if slot.compiling is not None or self.cache.is_compiled(
            slot.program, slot.size, self.placement
        ):
            return
        lanes = slot.program.abstract_stack(slot.size)
        if self.placement is not None:
            lanes = self.placement.put_lanes(lanes)
        slot.compiling = self._background.submit(
            self.cache.executable, slot.program, slot.size, self.placement, lanes, self.shared
        )

    def _is_compiled(self, slot: ProgramSlot) -> bool:
        """Whether a slot's stack is compiled and ready (not compiling in the background)."""
        if slot.compiling is not None:
            return slot.compiling.done()
        return self.cache.is_compiled(slot.program, slot.size, self.placement)

    def _wait_compiled(self, slot: ProgramSlot) -> tuple[float, float]:
        """``(compile seconds, seconds waited)`` of a slot's background compilation."""
        future, slot.compiling = slot.compiling, None
        if future is None:
            return 0.0, 0.0
        t0 = time.perf_counter()
        seconds = future.result()[1]
        slot.compile_seconds += seconds
        slot.stack_sizes.add(slot.size)
        return seconds, time.perf_counter() - t0

    def timing(self) -> dict:
        """Programs, their padded work and their compile seconds, for ``result.timing``."""
        programs = []
        for p, plan in enumerate(self.plans):
            slots = [s for (q, _), s in self.slots.items() if q == p and s.stack_sizes]
            if not slots:
                continue
            programs.append(
                dict(
                    program=p,
                    models=int(np.sum(self.program_of == p)),
                    variants=len(plan.variants),
                    merged=plan.merged,
                    waste=round(float(plan.waste), 4),
                    stack_sizes=sorted({n for s in slots for n in s.stack_sizes}),
                    executables=sum(len(s.stack_sizes) for s in slots),
                    lanes_trained=sum(s.lanes for s in slots),
                    compile_seconds=sum(s.compile_seconds for s in slots),
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
        models, instances = work.model_ids, work.instances
        stages = {None} if work.train_sizes is None else {int(v) for v in work.train_sizes}
        if len(stages) > 1:
            raise ValueError(f"a work list trains at one size, got sizes {sorted(stages)}")
        stage = stages.pop()  # a fidelity stage's training size (None: the models' own)
        t0 = time.perf_counter()
        pending, compile_s, blocked, steps = [], 0.0, 0.0, 0
        order = list(np.unique(self.program_of[models]))
        for k, p in enumerate(order):
            sel = np.flatnonzero(self.program_of[models] == p)
            slot = self.slot(p, stage)
            if self.events is not None:
                self.events(
                    dict(
                        event="program",
                        program=k + 1,
                        programs=len(order),
                        compiling=not self._is_compiled(slot),
                        instances=len(sel),
                    )
                )
            seconds, waited = self._wait_compiled(slot)
            compile_s, blocked = compile_s + seconds, blocked + waited
            if k + 1 < len(order):
                self._prefetch(order[k + 1], stage)
            configs = [_sized(self.configs[m], stage) for m in models[sel]]
            for idx, part in self._train(slot, configs, instances[sel]):
                pending.append((sel[idx], part))
                compile_s += part.compile_seconds
                blocked += part.compile_seconds
            steps += sum(model_steps(c) for c in configs)
        outcome = self._collect(pending, len(models))
        # compilation on the background thread overlapped training: only the waiting counts
        seconds = time.perf_counter() - t0 - blocked
        return outcome._replace(seconds=seconds, compile_seconds=compile_s, instance_steps=steps)

    def _train(self, slot: ProgramSlot, configs: list[ModelConfig], instances: np.ndarray):
        """Dispatch one program's share of a round in stacks of the slot's size; yields
        ``(indices into configs, Pending)``."""
        start = 0
        while start < len(configs):
            _signals.check()
            chunk = np.arange(start, min(start + slot.size, len(configs)))
            start += len(chunk)
            subsets = self.subsets(slot.program, instances[chunk])

            def launch(lanes: np.ndarray, size: int, chunk=chunk, subsets=subsets):
                return train.launch_stack(
                    slot.program,
                    [configs[j] for j in chunk[lanes]],
                    instances[chunk[lanes]],
                    self.population,
                    self.shared,
                    seed=self.seed,
                    subsets=subsets[lanes],
                    bucket=size,
                    placement=self.placement,
                    cache=self.cache,
                )

            parts = oom.launch_with_retry(launch, len(chunk), slot.size, self.multiple)
            for lanes, part in parts:
                slot.compile_seconds += part.compile_seconds
                slot.stack_sizes.add(len(part.result.loss))
                yield chunk[lanes], part
            if len(parts) > 1:  # split after running out of memory: keep the size that fit
                slot.size = max(len(part.result.loss) for _, part in parts)
            slot.lanes += len(chunk)

    def _collect(self, pending: list, n: int) -> Outcome:
        """Fetch every dispatched stack of a round into one ``Outcome`` (in work-list order)."""
        losses = np.empty(n)
        ok = np.zeros(n, bool)
        metrics: dict[str, np.ndarray] = {}
        grid = self.population.transforms
        transformed = np.full((n, len(grid)), np.nan) if grid is not None else None
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
                        total=n,
                    )
                )
            ok[idx] = out.pop("ok")
            losses[idx] = out.pop("loss")
            values = out.pop("transformed", None)
            if transformed is not None and values is not None:
                transformed[idx] = values
            for k, v in out.items():
                metrics.setdefault(k, np.zeros(n, np.float64))[idx] = v
        pairs = tuple(grid.pairs) if grid is not None else None
        return Outcome(losses, metrics, ok, transformed=transformed, pairs=pairs)


def _sized(config: ModelConfig, train_size: int | None) -> ModelConfig:
    """The model at a fidelity stage's training size (``None``: its own)."""
    return config if train_size is None else dataclasses.replace(config, train_size=train_size)
