"""``jrobust.search``: iterated racing (irace's scheme) over candidates sampled from a space.

Each iteration samples new candidates from the sampling model (``jrobust._src.search.sampling``),
races them together with the elites of the previous iteration (a ``jrobust.Race`` driven by ask
and tell, with the race's own statistic, rule and warm-up), and keeps the race's best as the next
elites; the sampling model then narrows around them. Instance ``i`` is the same training subset
and initialisation stream for every model (common random numbers), so an elite's instances from
earlier iterations are answered from the search's store (``jrobust._src.search.store``), never
trained again, and the budget counts real trainings only.

The defaults are irace's (Lopez-Ibanez, Dubois-Lacoste, Perez Caceres, Birattari, Stuetzle,
"The irace package: Iterated racing for automatic algorithm configuration", Operations Research
Perspectives 3, 2016): see ``search``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jrobust._src import lock as _lock
from jrobust._src import signals as _signals
from jrobust._src.checks import CheckError, check_space_fits
from jrobust._src.config import SCALAR_FIELDS, ModelConfig
from jrobust._src.data.population import Population
from jrobust._src.race.checkpoint import fingerprint
from jrobust._src.race.race import Race, as_outcome
from jrobust._src.race.ranking import final_order
from jrobust._src.race.work import Outcome, Work
from jrobust._src.result import ITERATION_COLUMNS, SelectionResult
from jrobust._src.search.sampling import (
    SamplingModel,
    collapsed,
    sample_children,
    sample_uniform,
    shifted,
)
from jrobust._src.search.store import SEARCH_FILE, LossStore
from jrobust._src.select import StopRace, named_population
from jrobust._src.settings import RaceSettings
from jrobust._src.space.distributions import Categorical, Distribution
from jrobust._src.space.fields import SHORT_NAMES, format_value
from jrobust._src.space.product import SearchSpace
from jrobust._src.train import fit_all, fit_note
from jrobust._version import __version__

__all__ = ["MAX_VARIANTS", "SEARCH_FILE", "search"]


#: The most static variants a search plans programs for (every width of an integer width range
#: is one): beyond it, compilation would take longer than it saves.
MAX_VARIANTS = 512

# Draws of one candidate before a repeat of a model already sampled is given up on.
_REDRAWS = 20

# Race settings a search does not take: it decides them, or they need per-stage instances.
_REFUSED = {
    "budget": "the search's own budget= counts every training",
    "n_winners": "the search keeps its elites= best models from each race",
    "fidelity": "fidelity stages are not supported in a search",
    "final_instances": "a final race is not supported in a search",
}

Evaluator = Callable[[np.ndarray, np.ndarray], Any]


def search(
    space: SearchSpace,
    population: Population | str | None = None,
    *,
    budget: int,
    seed: int = 0,
    evaluator: Evaluator | None = None,
    iterations: int | None = None,
    elites: int | None = None,
    first_candidates: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Callable[[dict], None] | bool | None = None,
    settings: RaceSettings | Mapping[str, Any] | None = None,
    devices: Any = None,
    **race_overrides: Any,
) -> SelectionResult:
    """Search a space with ranges by iterated racing (irace's scheme) on the JAX engine.

    Each iteration ``j`` samples new candidates, races them with the elites of iteration
    ``j - 1`` (``jrobust.Race`` with the race's settings: statistic, rule, warm-up, ...; the
    race stops at ``elites`` survivors) and keeps the race's ``elites`` best. Iteration 1
    samples uniformly (log ranges in log space); later ones sample around the elites (numeric
    parameters from a truncated normal whose width shrinks each iteration, categorical ones
    from probabilities that move toward the elites' values; ``jrobust._src.search.sampling``),
    with a soft restart when the candidates collapse onto near-duplicates. The defaults are
    irace's (Lopez-Ibanez et al., Operations Research Perspectives 3, 2016), with ``d`` the
    number of parameters:

    - ``iterations``: ``2 + floor(log2(d))``, and then, as irace does, more while the budget
      left covers an iteration's warm-up of ``elites + 2`` models (a given ``iterations`` is
      exact);
    - ``elites``: ``2 + floor(log2(d))`` (irace's ``N_min``);
    - iteration ``j`` may use ``B_j = remaining budget / (iterations left)`` trainings and races
      ``floor(B_j / (warmup + min(5, j)))`` models, at least ``elites + 2`` (its elites and new
      candidates); ``first_candidates`` sets the count of iteration 1.

    Instance ``i`` is the same training subset and initialisation stream for every model, so an
    elite keeps its instances: a (model, instance) pair is trained once, and ``budget`` counts
    those trainings only. It is never exceeded: a round whose new trainings do not fit ends the
    search there (a round that does not fit ``B_j`` ends the iteration's race). With the JAX
    engine the programs are planned once per search from every static variant of the space
    (every width of an integer width range, every value of a categorical static field), each
    compiled at its first use: new widths, activations and scalars of later iterations are
    lanes of programs already compiled, so the compilations do not grow with the iterations.
    ``merge="auto"`` (the default) merges every mergeable variant into one program here, since
    which widths will be sampled is not known when the programs are planned (a merged program
    compiles in about the time of its widest variant alone, whatever the number of widths;
    ``benchmarks/search_compile.py``).

    Args:
      space: a ``SearchSpace`` with ranges (a finite space works too: its lists are
        categorical parameters).
      population: the data every instance trains on (or its name, as ``jrobust.race``
        takes it); not needed with an ``evaluator``.
      budget: the most trainings (model instances) in all.
      seed: the root seed of the sampling and of the data subsets and initialisations.
      evaluator: ``evaluator(model_ids, instance_indices) -> losses`` instead of the JAX
        trainer; model ids are the search's global ids (``result.configs[model_id]``). An
        evaluator with a parameter named ``configs`` also gets the ``ModelConfig`` of each
        entry (``configs=[...]``), since the candidates are sampled as the search runs.
      iterations, elites, first_candidates: see above (``None``: irace's defaults).
      checkpoint_dir: write ``search.npz`` (every trained loss; data only) after every round;
        a search run again with the same arguments continues from it to the same result.
      progress: a callable called after every round with a dict (iteration, round, models,
        survivors, trained, n_trainings, budget, ...) that may raise ``jrobust.StopRace`` to
        end the search there; ``True``: one printed line per round; ``None``/``False``:
        nothing.
      settings: the race settings (``RaceSettings`` or a mapping of its fields).
      devices: devices to shard stacks over (as ``jrobust.race``).
      **race_overrides: fields of ``RaceSettings`` (``statistic``, ``rule``, ``warmup``, ...).

    Returns:
      A ``SelectionResult`` over global model ids: ``configs`` lists every sampled candidate
      in the order sampled (``models`` has their iteration, parent and parameter values);
      ``ledger`` (one row per training), ``history`` and ``path`` carry an ``iteration``
      column, with round numbers continuing across iterations; ``winner`` is the best elite of
      the last iteration, ``winners`` the last elites, best first; ``iterations`` has one row
      per (iteration, parameter): ``iteration``, ``parameter``, ``kind``, ``log``, ``centre``
      (the best elite's value after the iteration; a categorical's most probable choice, as
      ``repr``), ``width`` (the normal's standard deviation in unit coordinates used to sample
      the iteration's candidates; NaN for a categorical and in iteration 1, which samples
      uniformly), ``candidates`` and ``elites`` (global ids, comma separated, elites best
      first) and ``restarted``.

    Raises:
      CheckError: bad input, before anything is compiled: a budget that is not an integer or
        is below one iteration's warm-up round (the message says the minimum), a space without
        parameters, ``iterations``/``elites``/``first_candidates`` below 1 (or 2 for
        ``first_candidates``), a race setting a search decides itself (``budget``,
        ``n_winners``, ``fidelity``, ``final_instances``), models that do not fit the data.
      jrobust.Interrupted: on Ctrl-C or SIGTERM, after the last complete round's checkpoint.

    Example:
      >>> import numpy as np
      >>> from jrobust import ModelConfig, SearchSpace
      >>> from jrobust.space import loguniform
      >>> space = SearchSpace(ModelConfig(), learning_rate=loguniform(1e-5, 1.0))
      >>> def loss(model_ids, instances, configs):  # the best learning rate is 3e-3
      ...     lr = np.array([c.learning_rate for c in configs])
      ...     return (np.log10(lr) - np.log10(3e-3)) ** 2 + 0.01 * np.sin(instances)
      >>> r = search(space, budget=300, evaluator=loss)
      >>> bool(abs(np.log10(r.winner.learning_rate / 3e-3)) < 0.1), r.n_trainings <= 300
      (True, True)
    """
    t_start = time.perf_counter()
    plan = _Plan.of(
        space,
        budget,
        seed,
        iterations,
        elites,
        first_candidates,
        settings,
        race_overrides,
        evaluator is not None,
    )
    if isinstance(population, str):
        population = named_population(population)
    engine = None
    if evaluator is None:
        if not isinstance(population, Population):
            raise CheckError(
                "search() trains the models on a population: pass one, e.g. "
                "jrobust.data.calorimeter(10_000), or pass evaluator= to race losses you compute"
            )
        engine = _engine(space, population, plan, devices)
    run = _Search(space, plan, population, engine, evaluator)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    # one search per folder, held by the main process (every host takes the same decisions)
    owner = _lock.hold(folder) if folder is not None and _main_process() else None
    with owner or contextlib.nullcontext(), _signals.deferred_signals():
        if folder is not None:
            run.store = LossStore.load(folder, run.key) or LossStore()
        run.folder = folder
        run.progress = _progress(progress)
        run.go()
    result = run.result()
    result.timing["wall_seconds"] = time.perf_counter() - t_start
    if result.all_failed:
        warnings.warn(
            "every instance of every model failed (non-finite losses): the search has no "
            "meaningful winner; check the ranges and the data",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


# ---------------------------------------------------------------------------------- the plan
def _check_arguments(space, budget, seed, iterations, elites, first_candidates, overrides):
    """Refuse, in one line each, the arguments of ``search`` that are wrong whatever the
    settings: before any compilation or evaluation."""
    if not isinstance(space, SearchSpace):
        raise CheckError(
            f"space must be a jrobust.SearchSpace (with ranges: jrobust.space.loguniform, "
            f"uniform, intrange), got {type(space).__name__}"
        )
    parameters = space.parameters
    if not parameters:
        raise CheckError(
            "this search space has no ranges and no choices, so there is nothing to search: "
            "give it a range (e.g. learning_rate=jrobust.space.loguniform(1e-5, 1.0)) or a "
            "list of values"
        )
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral):
        raise CheckError(
            f"budget must be an integer (the most trainings of model instances), got {budget!r}"
        )
    for name, value, low in (
        ("iterations", iterations, 1),
        ("elites", elites, 1),
        ("first_candidates", first_candidates, 2),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
        ):
            raise CheckError(f"{name} must be an integer >= {low} (or None), got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise CheckError(f"seed must be an integer >= 0, got {seed!r}")
    for name in _REFUSED:
        if name in overrides:
            raise CheckError(f"search() does not take the race setting {name}=: {_REFUSED[name]}")


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The search's arguments, checked, with irace's defaults filled in."""

    parameters: dict[str, Distribution | Categorical]
    budget: int
    seed: int
    n_iterations: int
    n_elites: int
    first_candidates: int | None
    settings: RaceSettings  # the race's, resolved: n_winners = n_elites, no budget
    warmup: int
    extend: bool = False  # more iterations while the budget left covers one (the default)

    @classmethod
    def of(
        cls,
        space,
        budget,
        seed,
        iterations,
        elites,
        first_candidates,
        settings,
        overrides,
        external: bool,
    ) -> _Plan:
        _check_arguments(space, budget, seed, iterations, elites, first_candidates, overrides)
        parameters = space.parameters
        try:
            race = RaceSettings.of(settings, **overrides)
        except (TypeError, ValueError) as err:
            raise CheckError(str(err)) from None
        if race.fidelity is not None or race.final_instances:
            which = "fidelity" if race.fidelity is not None else "final_instances"
            raise CheckError(f"search() does not take the race setting {which}: {_REFUSED[which]}")
        d = len(parameters)
        default = 2 + int(math.floor(math.log2(d)))
        n_elites = int(elites) if elites is not None else default
        race = race.replace(n_winners=n_elites, budget=None, seed=int(seed))
        race = race.resolved(evaluator=external)
        warmup = int(race.warmup)
        first = int(first_candidates) if first_candidates is not None else None
        least = (first if first is not None else n_elites + 2) * warmup
        if budget < least:
            n = first if first is not None else n_elites + 2
            raise CheckError(
                f"budget={budget} is below what one iteration needs: {n} candidates x {warmup} "
                f"warm-up instances = {least} trainings; give budget >= {least} (or fewer "
                "elites, a smaller warmup)"
            )
        return cls(
            parameters,
            int(budget),
            int(seed),
            int(iterations) if iterations is not None else default,
            n_elites,
            first,
            race,
            warmup,
            extend=iterations is None,
        )

    def identity(self, space: SearchSpace) -> list[Any]:
        """What a checkpoint must agree on to be resumed."""
        listed = [m.full_repr() for m in space.models] if space._listed else None
        return [
            space.base.full_repr(),
            listed,
            sorted(space.when),
            {p: repr(d) for p, d in self.parameters.items()},
            self.budget,
            self.seed,
            self.n_iterations,
            self.n_elites,
            self.first_candidates,
            self.settings.identity(),
        ]


# ---------------------------------------------------------------------------------- the engine
def every_variant(space: SearchSpace) -> list[ModelConfig]:
    """The static variants a search's programs are planned from: ``space.envelope()``'s, but
    with every value of an integer width range (each its own variant, so any sampled width is a
    lane of a planned program), scalars at the base's values."""
    if space._listed:
        return space.envelope()
    axes: dict[str, list[Any]] = {}
    for field, choice in space.choices.items():
        if isinstance(choice, Distribution):
            axes[field] = (
                [choice.low, choice.high]
                if space.role(field) == "scalar"
                else list(range(choice.low, choice.high + 1))
            )
            if space.role(field) == "scalar" and not space.when:
                axes[field] = [choice.low]
        elif space.role(field) == "scalar" and not space.when:
            axes[field] = list(choice[:1])
        else:
            axes[field] = list(choice)
    total = math.prod(len(v) for v in axes.values())
    if total > MAX_VARIANTS * 8:
        raise CheckError(_too_many(axes, total))
    variants: dict[tuple, ModelConfig] = {}
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo, strict=True))
        try:
            config = space._assign(values)
        except (ValueError, TypeError) as err:
            raise CheckError(f"the values {values} give an invalid model: {err}") from None
        with contextlib.suppress(ValueError, TypeError):
            config = dataclasses.replace(
                config, **{f: getattr(space.base, f) for f in SCALAR_FIELDS}
            )
        variants.setdefault(config.static_key(), config)
    if len(variants) > MAX_VARIANTS:
        raise CheckError(_too_many(axes, len(variants)))
    return list(variants.values())


def _too_many(axes: Mapping[str, list], n: int) -> str:
    sizes = ", ".join(f"{f}: {len(v)}" for f, v in axes.items() if len(v) > 1)
    return (
        f"this space has {n} static variants ({sizes}), more than a search compiles programs for "
        f"({MAX_VARIANTS}); give a width range fewer values (e.g. intrange(16, 64) or a list of "
        "widths)"
    )


def _engine(space: SearchSpace, population: Population, plan: _Plan, devices):
    from jrobust._src.cache import enable_compilation_cache
    from jrobust._src.engine import Engine

    variants, tally = fit_all(every_variant(space), population)
    if tally:
        warnings.warn(fit_note(population, tally), UserWarning, stacklevel=3)
    check_space_fits(variants, population)
    settings = plan.settings
    if settings.compilation_cache:
        cache = settings.compilation_cache
        enable_compilation_cache(None if cache is True else cache)
    execution = settings.execution
    if execution.merge == "auto":  # the sampled widths are unknown when the programs are planned
        execution = dataclasses.replace(execution, merge="max")
    return Engine([], population, execution, plan.seed, devices, variants=variants)


# ---------------------------------------------------------------------------------- the search
# One object for a running search because its steps share much state (the candidates, the
# long: sampling model, the store, the tables); 15 methods, the longest 53 lines.
class _Search:
    """A search's state as it runs: the candidates, the sampling model, the store, the tables."""

    def __init__(self, space, plan: _Plan, population, engine, evaluator) -> None:
        self.space, self.plan, self.population = space, plan, population
        self.engine, self.evaluator = engine, evaluator
        self.rng = np.random.default_rng(plan.seed)
        self.model = SamplingModel(dict(plan.parameters))
        self.values: list[dict[str, Any]] = []
        self.configs: list[ModelConfig] = []
        self.sampled_in: list[int] = []
        self.parents: list[int] = []
        self.elites: list[int] = []
        self.store = LossStore()
        self.seen: set[tuple[int, int]] = set()
        self.trained_at: dict[tuple[int, int], int] = {}  # pair -> global round
        self.fresh: dict[int, int] = {}  # global round -> pairs it trained
        self.used = 0
        self.round = 0
        self.ledger: list[pd.DataFrame] = []
        self.history: list[dict[str, Any]] = []
        self.path: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.last_race: tuple[Race, np.ndarray] | None = None
        self.stop_reason = ""
        self.finished = False
        self.compile_seconds = 0.0
        self.train_seconds = 0.0
        self.folder: Path | None = None
        self.progress: Callable[[dict], None] | None = None
        self._new_configs: list[ModelConfig] = []
        self.with_configs = evaluator is not None and _takes_configs(evaluator)
        data = population.fingerprint() if isinstance(population, Population) else None
        self.key = fingerprint(
            [
                __version__,
                "search",
                *plan.identity(space),
                data,
                "evaluator" if evaluator is not None else "jax",
            ]
        )

    # ------------------------------------------------------------------ the loop
    def go(self) -> None:
        plan = self.plan
        try:
            j = 1
            while j <= plan.n_iterations or (
                plan.extend and plan.budget - self.used >= (plan.n_elites + 2) * plan.warmup
            ):
                if not self._iteration(j):
                    return
                j += 1
            self.stop_reason, self.finished = "iterations", True
        finally:
            self._save()

    def _iteration(self, j: int) -> bool:
        """Run iteration ``j``; False when the search ends before or inside it."""
        plan = self.plan
        remaining = plan.budget - self.used
        share = remaining // max(plan.n_iterations - j + 1, 1)
        if j == 1 and plan.first_candidates is not None:
            n_models = plan.first_candidates
        else:
            n_models = max(share // (plan.warmup + min(5, j)), plan.n_elites + 2)
        n_new = min(n_models - len(self.elites), remaining // plan.warmup)
        if n_new < 1:
            self.stop_reason, self.finished = "budget", True
            return False
        width = math.nan
        restarted = False
        if j == 1:
            drawn = self._draw(
                lambda n: [(v, -1) for v in sample_uniform(self.model, self.rng, n)], n_new
            )
        else:
            self.model.shrink(n_new)
            self.model.shift(self.elites, self._values_of, j, max(plan.n_iterations, j))
            values = self._values_of

            def draw(n: int) -> list[tuple[dict[str, Any], int]]:
                return sample_children(self.model, self.elites, values, self.rng, n)

            drawn = self._draw(draw, n_new)
            if collapsed(self.model, [v for v, _ in drawn]):
                self.model.soft_restart(self.elites, n_new)
                drawn, restarted = self._draw(draw, n_new), True
            width = self.model.width
        if not drawn:
            self.stop_reason, self.finished = "exhausted", True
            return False
        new = self._register(drawn, j)
        local = np.asarray([*self.elites, *new], np.int64)
        ended = self._race(j, local, share)
        self._iteration_rows(j, new, width, restarted)
        return not ended

    @property
    def _values_of(self) -> dict[int, dict[str, Any]]:
        return dict(enumerate(self.values))

    def _draw(self, draw, n: int) -> list[tuple[dict[str, Any], int]]:
        """``n`` candidates that repeat no model sampled before (given up after ``_REDRAWS``
        tries each, so an exhausted finite space gives fewer)."""
        known = set(self.configs)
        out: list[tuple[dict[str, Any], int]] = []
        for _ in range(n):
            for _ in range(_REDRAWS):
                ((values, parent),) = draw(1)
                config = self._config(values)
                if config not in known:
                    known.add(config)
                    out.append((values, parent))
                    break
        return out

    def _config(self, values: Mapping[str, Any]) -> ModelConfig:
        config = self.space.config_of(values)
        if self.engine is not None:
            (config,), _ = fit_all([config], self.population)
        return config

    def _register(self, drawn, j: int) -> list[int]:
        """Give the new candidates their global ids (and their parents' probabilities)."""
        new = []
        for values, parent in drawn:
            gid = len(self.configs)
            self.values.append(dict(values))
            self.configs.append(self._config(values))
            self.sampled_in.append(j)
            self.parents.append(parent)
            base = self.model.probabilities.get(parent)
            self.model.probabilities[gid] = (
                {p: v.copy() for p, v in base.items()}
                if base is not None
                else self.model.uniform_probabilities()
            )
            new.append(gid)
        if self.engine is not None:
            ids = self.engine.add([self.configs[g] for g in new])
            assert list(ids) == new, "the engine's model ids are the search's global ids"
        self._new_configs = [self.configs[g] for g in new]
        return new

    def _race(self, j: int, local: np.ndarray, share: int) -> bool:
        """Race the models ``local`` (global ids; elites first) within ``share`` new trainings;
        True when the search's budget (or a stop) ended the search inside it."""
        plan = self.plan
        race = Race(
            len(local),
            None,
            plan.settings,
            trainer="jax" if self.engine is not None else "external",
        )
        if self.engine is not None:  # the ledger's train_size column
            race.state.own_sizes = np.asarray([self.configs[g].train_size for g in local])
        spent, ended, first_round = 0, False, self.round + 1
        while (work := race.ask()) is not None:
            models = local[work.model_ids]
            pairs = list(zip(models.tolist(), work.instances.tolist(), strict=True))
            fresh = [k for k, p in enumerate(pairs) if p not in self.seen]
            if self.used + len(fresh) > plan.budget:
                self.stop_reason, self.finished, ended = "budget", True, True
                break
            if spent and spent + len(fresh) > share:  # the iteration's share: the next race
                break
            # pairs trained before an interruption are answered from the checkpoint's store
            train = np.asarray([k for k in fresh if pairs[k] not in self.store], np.int64)
            trained = self._evaluate(models[train], work.instances[train])
            self.store.add(models[train], work.instances[train], trained)
            self.round += 1
            self.seen.update(pairs[k] for k in fresh)
            self.trained_at.update((pairs[k], self.round) for k in fresh)
            self.fresh[self.round] = len(fresh)
            self.used += len(fresh)
            spent += len(fresh)
            outcome = self.store.outcome(models, work.instances)._replace(
                seconds=trained.seconds,
                compile_seconds=trained.compile_seconds,
                instance_steps=trained.instance_steps,
            )
            race.tell(work, outcome)
            self.compile_seconds += trained.compile_seconds
            self.train_seconds += trained.seconds
            self._save()
            _signals.check()
            if self.progress is not None:
                try:
                    self.progress(self._info(j, race, local, len(fresh)))
                except StopRace:
                    self.stop_reason, ended = "stopped", True
                    break
        if race.state.round:
            self._collect(j, race, local, first_round)
            self.elites = [int(local[w]) for w in race.result().winners]
            self.last_race = (race, local)
        return ended

    def _evaluate(self, models: np.ndarray, instances: np.ndarray) -> Outcome:
        if not len(models):
            return Outcome(np.zeros(0), {}, np.zeros(0, bool))
        if self.engine is not None:
            return self.engine(Work(models.astype(np.int64), instances.astype(np.int64)))
        t0 = time.perf_counter()
        args = [models.astype(np.int64).copy(), instances.astype(np.int64).copy()]
        if self.with_configs:
            raw = self.evaluator(*args, configs=[self.configs[int(m)] for m in models])
        else:
            raw = self.evaluator(*args)
        outcome = as_outcome(raw, len(models))
        return outcome._replace(seconds=time.perf_counter() - t0)

    def _info(self, j: int, race: Race, local: np.ndarray, trained: int) -> dict[str, Any]:
        state = race.state
        info = dict(
            iteration=j,
            iterations=max(self.plan.n_iterations, j),
            round=self.round,
            models=len(local),
            survivors=int(state.alive.sum()),
            trained=trained,
            n_trainings=self.used,
            budget=self.plan.budget,
            seconds=float(state.history[-1]["seconds"]),
            compile_seconds=float(state.history[-1]["compile_seconds"]),
            done=False,
            new_configs=list(self._new_configs),
        )
        self._new_configs = []
        return info

    # ------------------------------------------------------------------ the tables
    def _collect(self, j: int, race: Race, local: np.ndarray, first_round: int) -> None:
        """Enter a finished iteration's race into the search's tables (global ids and rounds;
        the pairs it answered from the store are not rows of the ledger again)."""
        state = race.state
        offset = first_round - 1
        led = state.ledger.frame(sort=False)
        if len(led):
            led = led.copy()
            led["model_id"] = local[led["model_id"].to_numpy(np.int64)]
            led["round"] = led["round"].to_numpy(np.int64) + offset
            first = np.asarray(
                [
                    self.trained_at.get((int(m), int(i)), -1)
                    for m, i in zip(led["model_id"], led["instance"], strict=True)
                ]
            )
            led = led[first == led["round"].to_numpy()].copy()
            led.insert(int(led.columns.get_loc("round")) + 1, "iteration", j)
            self.ledger.append(led)
        mapped = lambda ids: [int(local[int(m)]) for m in ids]  # noqa: E731
        for row in state.history:
            row = dict(row)
            row["round"] = int(row["round"]) + offset
            fresh = self.fresh.get(row["round"], 0)
            row["reused"] = int(row["trained"]) - fresh
            row["trained"] = fresh
            for key in ("eliminated", "elites", "rescued"):
                if key in row:
                    row[key] = mapped(row[key])
            self.history.append({"iteration": j, **row})
        for row in state.path:
            row = dict(row)
            row["round"] = int(row["round"]) + offset
            row["model_id"] = int(local[int(row["model_id"])])
            self.path.append({"iteration": j, **row})

    def _iteration_rows(self, j: int, new: list[int], width: float, restarted: bool) -> None:
        best = self.elites[0] if self.elites else None
        for p, dist in self.plan.parameters.items():
            if isinstance(dist, Distribution):
                kind = "int" if dist.integer else "float"
                centre = self.values[best][p] if best is not None else None
                row_width, log = float(width), bool(dist.log)
            else:
                kind, log, row_width = "categorical", False, math.nan
                centre = None
                if best is not None:
                    # the vector the next iteration samples from (its shift, as _iteration does)
                    nxt = j + 1
                    vector = shifted(
                        self.model.probabilities[best][p],
                        dist.index(self.values[best][p]),
                        nxt,
                        max(self.plan.n_iterations, nxt),
                    )
                    centre = repr(dist.choices[int(np.argmax(vector))])
            self.rows.append(
                dict(
                    iteration=j,
                    parameter=p,
                    kind=kind,
                    log=log,
                    centre=centre,
                    width=row_width,
                    candidates=",".join(str(g) for g in new),
                    elites=",".join(str(e) for e in self.elites),
                    restarted=bool(restarted),
                )
            )

    # ------------------------------------------------------------------ checkpoint and result
    def _save(self) -> None:
        if self.folder is None or not len(self.store) or not _main_process():
            return
        facts = dict(
            n_trainings=self.used,
            budget=self.plan.budget,
            models=len(self.configs),
            rounds=self.round,
        )
        self.store.save(self.folder, self.key, facts)

    def result(self) -> SelectionResult:
        plan = self.plan
        if self.last_race is None:
            raise RuntimeError("the search trained nothing; this is a bug")
        race, local = self.last_race
        state = race.state
        table, mask = state.table(state.ranking_mask(), plan.settings.over)
        resolved = race.resolved
        _, note = final_order(resolved.statistic, resolved.rank_by, table, mask, state.alive)
        if note is not None:
            note = _global_note(note, local)
        ledger = (
            pd.concat(self.ledger, ignore_index=True)
            .sort_values(["model_id", "instance"], kind="stable")
            .reset_index(drop=True)
        )
        timing = dict(engine_timing(self.engine))
        timing.update(
            compile_seconds=self.compile_seconds,
            train_seconds=self.train_seconds,
            wall_seconds=self.compile_seconds + self.train_seconds,
            stop_reason=self.stop_reason,
            finished=self.finished,
            n_iterations=int(max(self.sampled_in, default=0)),
            budget=plan.budget,
        )
        stage = dict(
            stage=0,
            kind="race",
            train_size=None,
            first_instance=0,
            first_round=1,
            last_round=self.round,
            models=len(self.configs),
            survivors=len(self.elites),
            end=self.stop_reason,
        )
        return SelectionResult(
            winner=self.configs[self.elites[0]],
            winner_id=int(self.elites[0]),
            winners=list(self.elites),
            ledger=ledger,
            history=pd.DataFrame(self.history),
            path=pd.DataFrame(self.path),
            models=self._models_frame(),
            n_trainings=int(self.used),
            timing=timing,
            settings=plan.settings.describe(),
            configs=list(self.configs),
            dominance=note,
            stages=[stage],
            iterations=pd.DataFrame(self.rows, columns=list(ITERATION_COLUMNS)),
        )

    def _models_frame(self) -> pd.DataFrame:
        names = [_name(v) for v in self.values]
        frame = pd.DataFrame(
            {
                "model_id": range(len(self.configs)),
                "name": names,
                "iteration": self.sampled_in,
                "parent": self.parents,
            }
        )
        for p in self.plan.parameters:
            if p in frame.columns:  # a space of listed models: its one parameter is model_id
                continue
            column = [v[p] for v in self.values]
            frame[p] = [
                c if isinstance(c, int | float | str | bool) else format_value(c) for c in column
            ]
        return frame


def _main_process() -> bool:
    import jax

    return jax.process_index() == 0


def _takes_configs(evaluator: Callable) -> bool:
    """Whether an evaluator has a parameter named ``configs``."""
    try:
        return "configs" in inspect.signature(evaluator).parameters
    except (TypeError, ValueError):  # a builtin or extension without a signature
        return False


def engine_timing(engine) -> dict[str, Any]:
    return engine.timing() if engine is not None else {"n_cohorts": 0, "n_programs": 0}


def _name(values: Mapping[str, Any]) -> str:
    parts = []
    for p, v in values.items():
        text = f"{v:.3g}" if isinstance(v, float) else format_value(v)
        parts.append(f"{SHORT_NAMES.get(p, p)}={text}")
    return " ".join(parts)


def _global_note(note: dict[str, Any], local: np.ndarray) -> dict[str, Any]:
    """A dominance note of the last race with its model ids made global."""
    g = lambda m: int(local[int(m)])  # noqa: E731
    out = dict(note)
    out["crowned"], out["winner"] = g(note["crowned"]), g(note["winner"])
    out["dominated_by"] = [g(m) for m in note["dominated_by"]]
    out["values"] = {str(g(m)): v for m, v in note.get("values", {}).items()}
    return out


def _progress(progress) -> Callable[[dict], None] | None:
    if progress is True:

        def show(info: dict) -> None:
            print(
                f"iteration {info['iteration']}/{info['iterations']}  round {info['round']}  "
                f"models {info['survivors']}/{info['models']}  trainings "
                f"{info['n_trainings']}/{info['budget']}",
                flush=True,
            )

        return show
    if progress is None or progress is False:
        return None
    if not callable(progress):
        raise CheckError(f"progress must be True, False, None or a callable, got {progress!r}")
    return progress
