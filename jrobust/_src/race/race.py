"""``Race``: Algorithm 1 of Boldyrev, Ratnikov, Shevelev (IEEE Access 2025), driven by ask and tell.

A race is data (``RaceState``) and three steps: ``ask`` (which instances the next round trains),
``tell`` (their losses: record them, apply the rule, move through the stages) and ``result``.
The loop lives with the caller, as in evosax and Optuna: ``jrobust.race`` is that loop with
jrobust's JAX trainer (or a Python evaluator) answering each ask, and a user races models
trained by any other code the same way::

    r = jrobust.Race(space, settings)
    while (work := r.ask()) is not None:
        r.tell(work, my_losses(work.model_ids, work.instances))
    result = r.result()

The race is deterministic: the same settings and losses give the same ledger and winner, a saved
race (``save``/``load``) continues to the result an uninterrupted one gives, and every host of a
multi-host run takes the same decisions.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jrobust._src.checks import check_memory
from jrobust._src.config import ModelConfig, config_from_dict, config_to_dict
from jrobust._src.data.population import Population
from jrobust._src.race.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointMismatch,
    load_state,
    race_fingerprint,
    refuse_legacy,
    save_state,
)
from jrobust._src.race.plan import next_work
from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.race.state import RaceState
from jrobust._src.race.tell import RoundReport, decide, record
from jrobust._src.race.work import Outcome, Work
from jrobust._src.result import SelectionResult
from jrobust._src.settings import RaceSettings
from jrobust._src.space.product import SearchSpace

__all__ = ["Race", "as_outcome", "resolve_space"]

#: Who trains a race's instances: jrobust's engine, a whole round at once (``"jax"``), or an
#: evaluator or the caller (``"external"``); it sets the default of ``instances_per_round``.
TRAINERS = ("jax", "external")


class Race:
    """A race driven from outside: ``ask`` for the next instances, ``tell`` their losses.

    Args:
      space: a ``SearchSpace``, a list of ``ModelConfig``, or a model count.
      population: the data (optional: it enters the race's fingerprint, and names the columns of
        transformed losses).
      settings: a ``RaceSettings`` (or a mapping of its fields); default ``RaceSettings()``.
      trainer: ``"external"`` (default: the caller trains; ``instances_per_round`` defaults to
        1, the paper's) or ``"jax"`` (a whole round trains at once; it defaults to ``"auto"``).
      **overrides: any field of ``RaceSettings``, applied over ``settings``.

    Attributes:
      state: the race so far (``RaceState``); resolved: its resolved settings
        (``ResolvedRace``); configs: the models (``None`` for a bare count); models: the space
        as a DataFrame; key: the race's fingerprint.

    Example:
      >>> import numpy as np
      >>> spread = np.linspace(0.1, 1.0, 8)
      >>> r = Race(8, statistic="std", warmup=3)
      >>> while (work := r.ask()) is not None:
      ...     _ = r.tell(work, 1.0 + spread[work.model_ids] * np.sin(13.0 * work.instances))
      >>> r.result().winner_id
      0
    """

    def __init__(
        self,
        space: SearchSpace | Sequence[ModelConfig] | int,
        population: Population | None = None,
        settings: RaceSettings | Mapping[str, Any] | None = None,
        *,
        trainer: str = "external",
        **overrides: Any,
    ) -> None:
        if trainer not in TRAINERS:
            raise ValueError(f"trainer must be one of {TRAINERS}, got {trainer!r}")
        self.settings = RaceSettings.of(settings, **overrides)
        self.trainer = trainer
        self.resolved = ResolvedRace.of(self.settings, batched=trainer == "jax")
        self.configs, self.models = resolve_space(space)
        self.population = population
        self._population_key = population.fingerprint() if population is not None else None
        grid = getattr(population, "transforms", None)
        n_transforms = len(grid) if grid is not None else 0
        check_memory(len(self.models), self.resolved.settings, n_transforms=n_transforms)
        self.state = self._new_state()
        self._asked: Work | None = None

    def _new_state(self) -> RaceState:
        state = RaceState.new(len(self.models), self.resolved.settings.max_instances)
        if self.configs is not None:
            state.own_sizes = np.array([c.train_size for c in self.configs], np.int64)
        return state

    @property
    def key(self) -> str:
        """The race's fingerprint: version, race settings, models and data."""
        return race_fingerprint(
            self.resolved.settings, self.configs, len(self.models), self._population_key
        )

    @property
    def done(self) -> bool:
        return self.state.done

    # ------------------------------------------------------------------ ask and tell
    def ask(self) -> Work | None:
        """The instances the next round trains (``Work``: ``model_ids``, ``instances`` and,
        with fidelity stages, ``train_sizes``), or ``None`` when the race is over. Asking again
        before telling gives the same work."""
        if self._asked is None:
            self._asked = next_work(self.state, self.resolved)
        work = self._asked
        if work is None:
            return None
        sizes = None if work.train_sizes is None else work.train_sizes.copy()
        return Work(work.model_ids.copy(), work.instances.copy(), sizes)

    def tell(self, work: Work, losses: Any) -> RoundReport:
        """Record the losses of the asked ``work`` and decide the round.

        Args:
          work: the ``Work`` that ``ask`` returned.
          losses: one loss per ``(model_id, instance)`` of the work, in its order (non-finite:
            failed); or a pair ``(losses, transformed_losses)`` with ``transformed_losses`` of
            shape ``(instances, T)`` (a race ``over="transforms"``/``"both"``); or an
            ``Outcome``.

        Returns:
          A ``RoundReport``: the models removed and why, the elites, whether a stage or the
          race ended.

        Raises:
          ValueError: ``work`` is not what was asked, or the losses do not fit it.
        """
        asked = self._asked
        if asked is None:
            raise ValueError("tell() answers ask(): call ask() first for the work to train")
        if not _same_work(work, asked):
            raise ValueError(
                "tell() got work that is not what ask() returned last: tell the losses of "
                "exactly the asked model_ids and instances, in their order"
            )
        outcome = as_outcome(losses, len(asked.model_ids), self._pairs(), "tell()")
        record(self.state, asked, outcome)
        self._asked = None
        return decide(self.state, self.resolved)

    def _pairs(self):
        grid = getattr(self.population, "transforms", None)
        return tuple(grid.pairs) if grid is not None else None

    # ------------------------------------------------------------------ the result
    def result(self, timing: Mapping[str, Any] | None = None) -> SelectionResult:
        """The ``SelectionResult`` of the race so far (``finished`` is False until it is over)."""
        return SelectionResult.from_state(
            self.state, self.resolved, self.models, configs=self.configs, timing=timing
        )

    # ------------------------------------------------------------------ checkpoints
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the race to ``folder/checkpoint.npz`` (data only, atomically); returns the
        file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CHECKPOINT_FILE
        save_state(self.state, path, self.key, self._definition(), self._population_key)
        return path

    def _definition(self) -> dict[str, Any]:
        try:
            table = self.settings.to_table()
        except TypeError:  # a statistic or rule given as a Python object has no data form
            table = None
        configs = None
        if self.configs is not None:
            configs = [config_to_dict(c) for c in self.configs]
            if any(c is None for c in configs):  # a user's Flax module is code, not data
                configs = None
        return {
            "settings": table,
            "trainer": self.trainer,
            "names": [str(n) for n in self.models["name"]],
            "configs": configs,
        }

    def resume(self, folder: str | os.PathLike) -> bool:
        """Continue from ``folder``'s checkpoint when there is one (of this very race);
        returns whether it did.

        Raises:
          CheckpointMismatch: the checkpoint belongs to another race (or is a pickled one).
          CheckpointError: the checkpoint is damaged.
        """
        folder = Path(folder)
        refuse_legacy(folder)
        path = folder / CHECKPOINT_FILE
        if not path.exists():
            return False
        state, _ = load_state(path, self.key)
        state.own_sizes = self.state.own_sizes
        self.state, self._asked = state, None
        return True

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        space: SearchSpace | Sequence[ModelConfig] | int | None = None,
        population: Population | None = None,
        settings: RaceSettings | Mapping[str, Any] | None = None,
    ) -> Race:
        """The race saved in ``folder`` (``save``), ready to ``ask`` on.

        The checkpoint holds what defines the race (its settings, its models' names and, for
        the zoo's architectures, their configurations); give ``space`` (and ``settings``) when
        it could not (a user's Flax module, a statistic given as a function): they must be the
        race's own.

        Raises:
          CheckpointMismatch: ``space``/``population``/``settings`` are not those of the saved
            race, or what is missing cannot be rebuilt from it.
          CheckpointError: the checkpoint is missing or damaged.
        """
        folder = Path(folder)
        refuse_legacy(folder)
        state, meta = load_state(folder / CHECKPOINT_FILE)
        definition = meta.get("definition", {})
        if settings is None:
            if definition.get("settings") is None:
                raise CheckpointMismatch(
                    f"the race in {folder} was saved with a statistic or rule given as a Python "
                    "object, which a checkpoint cannot hold: pass settings=... to Race.load"
                )
            settings = RaceSettings.from_table(definition["settings"])
        if space is None:
            space = _space_of(definition, meta["n_models"], folder)
        race = cls(space, population, settings, trainer=definition.get("trainer", "external"))
        if population is None:
            race._population_key = meta.get("data_fingerprint")
        if meta.get("fingerprint") != race.key:
            raise CheckpointMismatch(
                f"the checkpoint in {folder} belongs to a different race than the space, "
                "population or settings given; pass the race's own, or none of them"
            )
        state.own_sizes = race.state.own_sizes
        race.state = state
        return race


# ---------------------------------------------------------------------------------- helpers
def resolve_space(
    space: SearchSpace | Sequence[ModelConfig] | int,
) -> tuple[list[ModelConfig] | None, pd.DataFrame]:
    """``(configs, models frame)`` of a space, a list of configs, or a bare model count."""
    if isinstance(space, int | np.integer) and not isinstance(space, bool):
        if space < 1:
            raise ValueError(f"the space is empty ({space} models)")
        n = int(space)
        return None, pd.DataFrame({"model_id": range(n), "name": [f"model{i}" for i in range(n)]})
    if not isinstance(space, SearchSpace):
        space = list(space)
        _refuse_repeats(space)
        space = SearchSpace.from_models(space)
    return space.models, space.to_frame()


def _refuse_repeats(models: list) -> None:
    """A list of models races under the list's indices: a model listed twice is refused (the
    ids of the models after it would otherwise shift, and the race cannot tell a model from
    itself; see docs/reliability.md)."""
    first: dict = {}
    for i, model in enumerate(models):
        try:
            j = first.setdefault(model, i)
        except TypeError:  # not hashable, so not a ModelConfig: SearchSpace names the problem
            return
        if j != i:
            what = model.describe() if hasattr(model, "describe") else repr(model)
            raise ValueError(
                f"models {j} and {i} of the list are the same configuration ({what}): model ids "
                "are the list's indices, so a repeat cannot be dropped without shifting the ids "
                "after it, and racing a model against itself decides nothing; remove the repeat "
                "(e.g. list(dict.fromkeys(models))) or pass a SearchSpace"
            )


def _space_of(definition: Mapping[str, Any], n_models: int, folder: Path):
    configs = definition.get("configs")
    if configs is not None:
        return [config_from_dict(c) for c in configs]
    names = definition.get("names") or []
    if names and names != [f"model{i}" for i in range(n_models)]:
        raise CheckpointMismatch(
            f"the race in {folder} has models whose configurations a checkpoint cannot hold "
            "(a Flax module of your own): pass space=... to Race.load"
        )
    return int(n_models)


def _same_work(a: Work, b: Work) -> bool:
    try:
        return np.array_equal(np.asarray(a.model_ids), b.model_ids) and np.array_equal(
            np.asarray(a.instances), b.instances
        )
    except (TypeError, ValueError, AttributeError):
        return False


def as_outcome(
    raw: Any, n: int, pairs: tuple | None = None, source: str = "the evaluator"
) -> Outcome:
    """An ``Outcome`` from what ``source`` (``"the evaluator"``, or ``"tell()"``) gives for
    ``n`` instances: the losses, a pair ``(losses, transformed_losses)``, or an ``Outcome``.

    Raises:
      TypeError: not real numbers (strings, booleans, complex numbers and other objects are
        refused rather than converted), or a tuple that is not a pair.
      ValueError: not one loss per instance; transformed losses not ``(n, T)``.
    """
    if isinstance(raw, Outcome):
        return raw
    must = "must return" if source == "the evaluator" else "must be given"
    transformed = None
    if isinstance(raw, tuple):
        if len(raw) != 2:
            raise TypeError(
                f"{source} {must} the losses, or a pair (losses, transformed_losses) with "
                f"transformed_losses of shape (instances, transforms); got {len(raw)} items"
            )
        raw, transformed = raw
    losses = _real_numbers(raw, f"{source} {must} real numbers, one per instance")
    if losses.shape != (n,):
        raise ValueError(
            f"{source} got {losses.shape[0]} losses for {n} instances; give one loss per (model, "
            "instance) pair, in their order"
        )
    if transformed is not None:
        transformed = _real_numbers(
            transformed, f"{source}: the transformed losses must be real numbers", flat=False
        )
        if transformed.ndim == 1:
            transformed = transformed[:, None]
        if transformed.ndim != 2 or transformed.shape[0] != n:
            raise ValueError(
                f"{source}: the transformed losses have shape {transformed.shape}; give one row per "
                f"instance and one column per transformation: ({n}, T)"
            )
        if pairs is not None and len(pairs) != transformed.shape[1]:
            pairs = None  # not the population's grid: the columns are named custom 0..T-1
    else:
        pairs = None
    return Outcome(losses, {}, np.isfinite(losses), transformed=transformed, pairs=pairs)


def _real_numbers(values: Any, message: str, flat: bool = True) -> np.ndarray:
    """``values`` as float64 if they are real numbers (integers or floats; NaN and inf are
    failures the race records), else a ``TypeError``: ``"1.5"`` is not a loss, ``True`` is not
    1.0, and a complex loss has no order."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{message}: {err}") from None
    if arr.dtype == object:
        bad = [v for v in arr.reshape(-1) if not _is_real(v)]
    elif arr.dtype.kind in "iuf":
        bad = []
    else:
        bad = arr.reshape(-1)[:1].tolist() or [arr.dtype]
    if bad:
        raise TypeError(
            f"{message}, got {type(bad[0]).__name__} {bad[0]!r} (dtype {arr.dtype}); give a "
            "float array, with NaN for an instance that failed"
        )
    arr = arr.astype(np.float64)
    return arr.reshape(-1) if flat else arr


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
