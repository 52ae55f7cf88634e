"""Optuna as a front end: a study's trials trained as instances by jrobust's engine.

Optuna proposes, jrobust trains. ``optimize`` uses only the study's public ``ask`` / ``tell``
(and ``Trial.report`` / ``should_prune`` when pruning), so samplers, storages and
optuna-dashboard work as with ``Study.optimize``. It asks ``batch`` trials at once, builds each
trial's model with the user's ``make_config(trial)`` and hands the engine one work list of
``batch x instances`` instances, as a race hands it a round (``jrobust._src.engine.Engine``: the
models grouped into programs, packed into stacks, every stack dispatched before the first is
fetched). Instance ``i`` of every trial trains on the same subset of the population in the same
order (common random numbers, as in the race), so the trials' values are paired comparisons.
Each trial is told a statistic of its own instances (``jrobust.stats``; two statistics for a
study with two directions, by default the mean and the std), a failed instance counting as
+inf; its instance losses are kept in its user attributes.

With pruning (``study.pruner``, e.g. ``optuna.pruners.WilcoxonPruner``), a batch trains one
instance index at a time for all its live trials, reports each loss at the step of its instance
index (``trial.report(loss, step=i)``: the pairing WilcoxonPruner needs), and a trial the pruner
prunes is told ``PRUNED`` and trains no more.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

try:
    import optuna
except ModuleNotFoundError as err:
    if err.name != "optuna":  # Optuna is there but broken: its own error says why
        raise
    raise ImportError(
        'jrobust.integrations.optuna needs Optuna, which is not installed: pip install "jrobust[optuna]"'
    ) from None

from optuna.trial import FrozenTrial, Trial, TrialState

from jrobust._src.cache import enable_compilation_cache
from jrobust._src.checks import CheckError, check_space_fits
from jrobust._src.config import ModelConfig
from jrobust._src.data.population import Population
from jrobust._src.engine import Engine
from jrobust._src.race.work import Outcome, Work
from jrobust._src.settings import RaceSettings, StatisticLike, check_seed
from jrobust._src.specs import EXECUTION_FIELDS, Execution, positive_int
from jrobust._src.stats import Statistic, get_statistic
from jrobust._src.train import check_instances, fit_to_population, resolve_stack_mode

__all__ = [
    "DEFAULT_STATISTICS",
    "INSTANCES_ATTR",
    "LOSSES_ATTR",
    "STATISTIC_ATTR",
    "optimize",
]

#: What a study is told by default, per number of directions: one direction, the race's default
#: statistic (``"max"``, the worst instance: see docs/concepts.md, "Robustness"); two, the mean
#: and the std of the instance losses (the level and the spread, a Pareto front of the two).
DEFAULT_STATISTICS: dict[int, tuple[str, ...]] = {1: (RaceSettings.statistic,), 2: ("mean", "std")}

#: The user attributes every trial gets (JSON values, so every storage keeps them): the
#: instance indices it trained, in the order trained; their test losses (``None`` for a failed
#: instance, which the statistics count as +inf); the names of the statistics it was told.
INSTANCES_ATTR = "instances"
LOSSES_ATTR = "instance_losses"
STATISTIC_ATTR = "statistic"


@dataclasses.dataclass
class _Seen:
    """What one ``optimize`` call has already done once: the cohorts checked to fit the
    population (a later batch checks only new ones), and whether the classification warning
    was given."""

    checked: set = dataclasses.field(default_factory=set)
    warned: bool = False


class _Plan(NamedTuple):
    """Everything ``optimize`` checked before asking its first trial."""

    statistics: tuple[Statistic, ...]  # one per direction of the study
    instances: np.ndarray  # (K,) int64: the instance indices every trial trains
    prune: bool  # report per instance and stop the trials the study's pruner prunes
    execution: Execution  # how the engine computes (stack sizes, merge policy, ...)
    population: Population
    seed: int


def optimize(
    study: optuna.Study,
    make_config: Callable[[Trial], ModelConfig],
    population: Population | str,
    *,
    n_trials: int,
    batch: int = 8,
    instances: int | Sequence[int] = 10,
    statistic: StatisticLike | Sequence[StatisticLike] | None = None,
    seed: int = 0,
    prune: bool | None = None,
    devices: Any = None,
    **execution: Any,
) -> list[FrozenTrial]:
    """Run ``n_trials`` trials of ``study``, ``batch`` at a time, each trained as ``instances``
    instances by jrobust's engine, and tell each trial the statistic of its own instances.

    Args:
      study: an Optuna study whose directions are all ``"minimize"`` (jrobust's instance losses
        are lower-is-better test losses; accuracy is recorded as 1 - accuracy). One direction:
        each trial is told one statistic; two: two statistics (by default the mean and the std).
        Any sampler and storage; trials already in the study are left as they are.
      make_config: ``make_config(trial) -> jrobust.ModelConfig``: suggests the trial's
        parameters (``trial.suggest_float(...)``, ...) and returns its model. Scalar
        hyperparameters (learning rate, weight decay, L2, momentum, Adam's betas and epsilon)
        never recompile; static fields (widths, optimizer, batch size, ...) compile once per
        program.
      population: the data every instance samples its training subset from, or its name as
        ``jrobust.race`` takes it (``"digits"``, ``"calo-b"``, ...). On a classification
        population, models with the regression defaults train with the classification loss
        and outputs (``jrobust.race`` does the same; a warning says so once).
      n_trials: the trials to run (asked in batches of ``batch``; the last batch may be smaller).
      batch: trials asked at once and trained together. With a sampler that models running
        trials (``optuna.samplers.TPESampler(constant_liar=True)``) a larger batch loses less of
        the sampler's sequential information.
      instances: instances per trial: a count ``K`` (instances ``0..K-1``) or the instance
        indices. Instance ``i`` is the same training subset and shuffling for every trial and
        every batch (common random numbers); its initialisation is drawn from
        ``(seed, model, i)``, so a trial trained again alone gives the same losses
        (``jrobust.train_instances(config, population, range(K), seed=seed)``).
      statistic: what each trial is told, one per direction of the study: a name of
        ``jrobust.stats.STATISTICS`` (``"mean"``, ``"std"``, ``"pd"``, ``"q3+iqr"``, ...), a
        percentile ``"q<p>"``, a ``Statistic`` or a function of the instance losses; for a
        study with two directions a pair, e.g. ``("mean", "pd")``. ``None``:
        ``DEFAULT_STATISTICS`` (``"max"``; ``("mean", "std")`` for two directions).
      seed: the root seed of the training subsets, shuffling and initialisations (as a race's).
      prune: ``None`` (default): prune when the study has one direction and a pruner other than
        ``optuna.pruners.NopPruner`` (a study created without one has Optuna's default
        ``MedianPruner``); ``False``: never (all ``batch x instances`` instances train as one
        work list); ``True``: always (an error for a study without a pruner or with two
        directions, which Optuna cannot prune). When pruning, each batch trains one instance
        index at a time, in an order shuffled per batch (as Optuna recommends for
        WilcoxonPruner), reports each loss at ``step`` = its instance index, and tells a pruned
        trial ``TrialState.PRUNED`` (its value is its last reported loss, as Optuna records it).
      devices: devices to shard stacks over (``None``: all local devices when there are several).
      **execution: how the engine computes, as in ``jrobust.RaceSettings``: ``max_bucket``,
        ``min_bucket``, ``conv_impl``, ``compilation_cache``, ``merge``, ``waste``,
        ``stack_mode``. Where a stack is one ``vmap`` (accelerators), ``min_bucket`` defaults
        to the batch's lanes, so a batch trains as one stack (within the device's memory).

    Returns:
      The trials this call ran, as ``study.tell`` returned them (``FrozenTrial``), in the order
      asked. Each has the user attributes ``"instances"`` (the instance indices trained),
      ``"instance_losses"`` (their test losses, ``None`` for a failed instance) and
      ``"statistic"`` (the names of the statistics told).

    Raises:
      ValueError, TypeError (``jrobust._src.checks.CheckError``, both): bad arguments, a
        study that maximizes, a statistic count that does not match the study's directions,
        ``prune=True`` on a study that cannot prune; before any trial is asked. A
        ``make_config`` that does not return a ``ModelConfig``, or models that cannot train on
        the population: before anything of that batch compiles; the batch's trials are told
        ``FAIL`` and the earlier batches' trials stay as told.

    Example:
      >>> import optuna
      >>> import jrobust
      >>> from jrobust.integrations.optuna import optimize
      >>> population = jrobust.data.digits()
      >>> def make_config(trial):
      ...     lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
      ...     return jrobust.zoo.mlp_config(hidden=(32,), learning_rate=lr, epochs=5)
      >>> study = optuna.create_study(directions=["minimize", "minimize"])
      >>> trials = optimize(study, make_config, population, n_trials=16, batch=8)  # doctest: +SKIP
      >>> len(study.best_trials) >= 1  # doctest: +SKIP
      True
    """
    plan = _check(study, make_config, population, n_trials, batch, instances, statistic, seed)
    plan = plan._replace(prune=_resolve_prune(study, prune))
    plan = plan._replace(execution=_execution(execution, plan, batch))
    if plan.execution.compilation_cache:
        cache = plan.execution.compilation_cache
        enable_compilation_cache(None if cache is True else cache)
    told: list[FrozenTrial] = []
    seen = _Seen()
    while len(told) < n_trials:
        size = min(batch, n_trials - len(told))
        told.extend(_run_batch(study, make_config, plan, size, devices, seen))
    return told


# ---------------------------------------------------------------------------------- checks
def _check(
    study: Any,
    make_config: Any,
    population: Any,
    n_trials: Any,
    batch: Any,
    instances: Any,
    statistic: Any,
    seed: Any,
) -> _Plan:
    """Every argument checked before the first trial is asked (``CheckError``, one line)."""
    if not isinstance(study, optuna.Study):
        raise CheckError(
            f"study must be an optuna.Study, got {type(study).__name__}; create one with "
            "optuna.create_study() (or optuna.load_study for a stored one)"
        )
    if not callable(make_config):
        raise CheckError(
            f"make_config must be a function make_config(trial) -> jrobust.ModelConfig, got "
            f"{type(make_config).__name__}"
        )
    try:
        positive_int("n_trials", n_trials)
        positive_int("batch", batch)
        seed = check_seed(seed)
    except ValueError as err:
        raise CheckError(str(err)) from None
    directions = study.directions
    if any(d != optuna.study.StudyDirection.MINIMIZE for d in directions):
        names = [d.name.lower() for d in directions]
        raise CheckError(
            f"the study's directions are {names}, but jrobust's instance losses are lower-is-"
            "better test losses (accuracy is recorded as 1 - accuracy): create the study with "
            "direction='minimize' (or directions=['minimize', 'minimize'])"
        )
    statistics = _statistics(statistic, len(directions))
    chosen = _instances(instances)
    if len(directions) > 1 and chosen.size < 2:
        raise CheckError(
            f"a study with {len(directions)} directions is told {len(directions)} statistics of "
            f"each trial's instances, which need at least 2 instances to differ; got "
            f"instances={instances!r}: use instances=10, say"
        )
    if isinstance(population, str):
        from jrobust._src.select import named_population

        population = named_population(population)
    if not isinstance(population, Population):
        raise CheckError(
            f"population must be a jrobust.Population (or a name such as 'digits'), got "
            f"{type(population).__name__}; wrap arrays with jrobust.data.from_arrays(x, y)"
        )
    return _Plan(statistics, chosen, False, Execution(), population, seed)


def _statistics(statistic: Any, n_directions: int) -> tuple[Statistic, ...]:
    """One statistic per direction of the study (``DEFAULT_STATISTICS`` for ``None``)."""
    if statistic is None:
        if n_directions not in DEFAULT_STATISTICS:
            raise CheckError(
                f"the study has {n_directions} directions and there is no default for so many: "
                f"give one statistic per direction, e.g. statistic={('mean', 'std', 'max')!r}"
            )
        statistic = DEFAULT_STATISTICS[n_directions]
    several = isinstance(statistic, Sequence) and not isinstance(statistic, str)
    chosen = list(statistic) if several else [statistic]
    if len(chosen) != n_directions:
        if n_directions == 2:
            how = (
                "give a level and a spread, e.g. statistic=('mean', 'std') (or 'pd', "
                "'q3+iqr' for the spread)"
            )
        else:
            how = f"give {n_directions} statistic{'s' if n_directions > 1 else ''}"
        raise CheckError(
            f"the study has {n_directions} direction{'s' if n_directions > 1 else ''} but "
            f"statistic={statistic!r} gives {len(chosen)} value{'s' if len(chosen) > 1 else ''} "
            f"per trial: {how}"
        )
    try:
        return tuple(get_statistic(s) for s in chosen)
    except (ValueError, TypeError) as err:
        raise CheckError(f"statistic: {err}") from None


def _instances(instances: Any) -> np.ndarray:
    """The instance indices every trial trains: ``0..K-1`` for a count ``K``, else the given
    distinct non-negative integers."""
    if isinstance(instances, int | np.integer) and not isinstance(instances, bool):
        if instances < 1:
            raise CheckError(
                f"instances must be at least 1, got {instances}; use instances=10, say"
            )
        return np.arange(int(instances), dtype=np.int64)
    try:
        chosen = check_instances(instances).astype(np.int64)
    except (ValueError, TypeError) as err:
        raise CheckError(f"instances: {err}") from None
    if chosen.size == 0 or np.unique(chosen).size != chosen.size:
        raise CheckError(
            f"instances must be a count or distinct instance indices, got {list(chosen)}; "
            "e.g. instances=10 or instances=range(10, 20)"
        )
    return chosen


def _resolve_prune(study: optuna.Study, prune: Any) -> bool:
    """Whether to report per instance and prune (see ``optimize``'s ``prune``)."""
    if prune is not None and not isinstance(prune, bool):
        raise CheckError(f"prune must be None, True or False, got {prune!r}")
    single = len(study.directions) == 1
    has_pruner = not isinstance(study.pruner, optuna.pruners.NopPruner)
    if prune is None:
        return single and has_pruner
    if prune and not single:
        raise CheckError(
            "prune=True, but Optuna cannot prune a study with several directions "
            "(Trial.report is single-objective): use prune=None or a single direction"
        )
    if prune and not has_pruner:
        raise CheckError(
            "prune=True, but the study's pruner is a NopPruner: create the study with a pruner, "
            "e.g. optuna.create_study(pruner=optuna.pruners.WilcoxonPruner(p_threshold=0.1))"
        )
    return prune


def _execution(execution: Mapping[str, Any], plan: _Plan, batch: int) -> Execution:
    """The engine's execution settings: the user's, with a vmapped stack as wide as one
    engine call of a full batch (all its instances; with pruning, one instance of each trial)
    unless ``min_bucket`` is given."""
    unknown = sorted(set(execution) - set(EXECUTION_FIELDS))
    if unknown:
        raise CheckError(
            f"optimize() got unexpected keyword argument(s) {unknown}; the execution settings "
            f"are {', '.join(EXECUTION_FIELDS)}"
        )
    try:
        chosen = Execution(**execution)
        mode = resolve_stack_mode(chosen.stack_mode)
    except (ValueError, TypeError) as err:
        raise CheckError(str(err)) from None
    if chosen.min_bucket is None and mode == "vmap":
        lanes = batch if plan.prune else batch * len(plan.instances)
        chosen = dataclasses.replace(chosen, min_bucket=lanes)
    return chosen


# ---------------------------------------------------------------------------------- a batch
def _run_batch(
    study: optuna.Study,
    make_config: Callable[[Trial], ModelConfig],
    plan: _Plan,
    size: int,
    devices: Any,
    seen: _Seen,
) -> list[FrozenTrial]:
    """Ask ``size`` trials, train them together, tell each its value. Whatever stops the batch
    (a bad model, an error, Ctrl-C) tells its trials still running ``FAIL`` (as
    ``Study.optimize`` does), so the storage keeps no trial running forever."""
    trials = [study.ask() for _ in range(size)]
    try:
        configs = _configs(trials, make_config, plan.population, seen)
        engine = Engine(configs, plan.population, plan.execution, plan.seed, devices)
        if plan.prune:
            trained = _train_pruning(engine, trials, plan)
        else:
            trained = _train_together(engine, len(trials), plan.instances)
        return [
            _tell(study, trial, indices, losses, plan.statistics, pruned)
            for trial, (indices, losses, pruned) in zip(trials, trained, strict=True)
        ]
    except BaseException:
        for trial in trials:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise


def _configs(
    trials: list[Trial],
    make_config: Callable[[Trial], ModelConfig],
    population: Population,
    seen: _Seen,
) -> list[ModelConfig]:
    """Each trial's model, made fit for a classification population where it has the
    regression defaults (said once per ``optimize``), and checked to train on the population
    (each cohort once per ``optimize``)."""
    configs = []
    for trial in trials:
        config = make_config(trial)
        if not isinstance(config, ModelConfig):
            raise CheckError(
                f"make_config(trial) must return a jrobust.ModelConfig, got "
                f"{type(config).__name__} for trial {trial.number}; return e.g. "
                "jrobust.zoo.mlp_config(hidden=(32,), learning_rate=trial.suggest_float("
                "'learning_rate', 1e-4, 1e-1, log=True))"
            )
        config, changes = fit_to_population(config, population)
        configs.append(config)
        if changes and not seen.warned:
            key = ", ".join(f"{k}={v!r}" for k, v in changes.items())
            warnings.warn(
                f"the population {population.name!r} is a classification set "
                f"({population.num_classes} classes) and trial {trial.number}'s model has the "
                f"regression defaults, so it trains with {key} (set loss, metric and outputs "
                "in make_config to choose otherwise; said once)",
                UserWarning,
                stacklevel=4,
            )
            seen.warned = True
    new = [j for j, c in enumerate(configs) if c.static_key() not in seen.checked]
    names = [f"trial {trials[j].number}: {configs[j].describe()}" for j in new]
    check_space_fits([configs[j] for j in new], population, names)
    seen.checked.update(configs[j].static_key() for j in new)
    return configs


def _failed_as_worst(outcome: Outcome) -> np.ndarray:
    """The outcome's losses with every failed instance (flagged or non-finite) as +inf."""
    losses = np.asarray(outcome.losses, np.float64)
    return np.where(np.asarray(outcome.ok, bool) & np.isfinite(losses), losses, np.inf)


def _train_together(
    engine: Engine, n: int, instances: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Every instance of every trial of the batch as one work list: ``(indices, losses,
    pruned=False)`` per trial."""
    k = len(instances)
    work = Work(np.repeat(np.arange(n, dtype=np.int64), k), np.tile(instances, n))
    losses = _failed_as_worst(engine(work)).reshape(n, k)
    return [(instances, losses[j], False) for j in range(n)]


def _train_pruning(
    engine: Engine, trials: list[Trial], plan: _Plan
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """One instance index at a time for the batch's live trials (one work list each), every
    loss reported at the step of its instance index, the trials the pruner prunes stopped:
    ``(indices trained, losses, pruned)`` per trial."""
    # Optuna recommends shuffling the order per trial; the batch's trials share one (they
    # train each index together), and each batch gets its own, drawn from the seed.
    order = np.random.default_rng([plan.seed, trials[0].number]).permutation(plan.instances)
    n = len(trials)
    indices: list[list[int]] = [[] for _ in range(n)]
    losses: list[list[float]] = [[] for _ in range(n)]
    pruned = [False] * n
    live = list(range(n))
    for index in order:
        if not live:
            break
        work = Work(np.asarray(live, np.int64), np.full(len(live), index, np.int64))
        for j, loss in zip(live, _failed_as_worst(engine(work)), strict=True):
            indices[j].append(int(index))
            losses[j].append(float(loss))
            trials[j].report(float(loss), step=int(index))
        for j in live:
            pruned[j] = trials[j].should_prune()
        live = [j for j in live if not pruned[j]]
    return [
        (np.asarray(indices[j], np.int64), np.asarray(losses[j], np.float64), pruned[j])
        for j in range(n)
    ]


def _tell(
    study: optuna.Study,
    trial: Trial,
    indices: np.ndarray,
    losses: np.ndarray,
    statistics: tuple[Statistic, ...],
    pruned: bool,
) -> FrozenTrial:
    """Record a trial's instances in its user attributes and tell it its statistics (or that
    it was pruned)."""
    trial.set_user_attr(INSTANCES_ATTR, [int(i) for i in indices])
    trial.set_user_attr(LOSSES_ATTR, [float(v) if np.isfinite(v) else None for v in losses])
    trial.set_user_attr(STATISTIC_ATTR, [s.name for s in statistics])
    if pruned:
        return study.tell(trial, state=TrialState.PRUNED)
    values = [float(s(losses[None, :])[0]) for s in statistics]
    return study.tell(trial, values[0] if len(values) == 1 else values)
