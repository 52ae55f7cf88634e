"""``SelectionResult``: what a race returns (its tables, its winners and a per-model summary).

A run folder (``jrobust._src.runfolder``) is this object on disk; ``jrobust.load_run`` reads it back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jrobust._src.config import ModelConfig
from jrobust._src.race.ledger import transform_table
from jrobust._src.race.ranking import dominance_message, final_order
from jrobust._src.race.stages import stage_columns, stage_firsts
from jrobust._src.stats import get_statistic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from jrobust._src.race.resolved import ResolvedRace
    from jrobust._src.race.state import RaceState

__all__ = [
    "ELIMINATED",
    "ITERATION_COLUMNS",
    "SelectionResult",
    "id_list",
    "loss_table",
    "instance_rows",
    "transformed_rows",
    "stage_columns",
    "stage_firsts",
    "USABLE_STATUSES",
]

#: The column of ``SelectionResult.summary()`` (and the models tables) that says in which round
#: an eliminated model left the race.
ELIMINATED = "eliminated in round"


class _Summary(pd.DataFrame):
    """A summary frame that prints whole: every column, no ``...``, numbers to 4 digits."""

    @property
    def _constructor(self):
        return _Summary

    def __repr__(self) -> str:
        shown = pd.DataFrame(self)
        if ELIMINATED in shown:
            left = shown[ELIMINATED]
            shown[ELIMINATED] = left.astype(object).where(left.notna(), "-")
        stat, rank = self.attrs.get("statistic"), self.attrs.get("rank_by")
        if rank == stat and "rank_value" in shown:
            shown = shown.drop(columns="rank_value")  # the same numbers twice
        names = {"statistic": f"statistic ({stat})", "rank_value": f"rank_value ({rank})"}
        shown = shown.rename(columns={k: v for k, v in names.items() if stat})
        return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", line_width=None)


#: Ledger statuses whose losses are finite: a model with none of them has only failures.
USABLE_STATUSES = ("ok", "diverged")


def instance_rows(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger rows of the untransformed test set (all rows of a race without
    transformations; ``transform == "none"`` otherwise)."""
    if "transform" not in ledger.columns:
        return ledger
    return ledger[_untransformed(ledger)]


def transformed_rows(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger rows of the transformed test sets (one per instance, transform and
    parameter); a ``ValueError`` for a race without transformed test sets."""
    if "transform" not in ledger.columns:
        raise ValueError(
            "this race has no transformed test sets: race on "
            "jrobust.data.with_transforms(population, rotation=[...]) to have them"
        )
    return ledger[~_untransformed(ledger)]


def _untransformed(ledger: pd.DataFrame) -> pd.Series:
    return ledger["transform"].fillna("none") == "none"


def id_list(text: Any) -> list[int]:
    """The model ids of an ``iterations`` cell (``"5,6,7"``; empty or missing: none).

    Example:
      >>> id_list("5,6,7"), id_list("")
      ([5, 6, 7], [])
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return [int(part) for part in str(text).split(",") if part.strip()]


def loss_table(
    ledger: pd.DataFrame, over: str = "instances"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ledger as a table of what the statistics see: ``(losses, mask, model_ids)``.

    ``over="instances"``: ``(models, instances)`` on the untransformed test set; ``"transforms"``
    and ``"both"``: the tables of ``race/ledger.py``'s ``transform_table`` (per transformation
    parameter, the mean over instances; per (instance, parameter)). Row ``j`` is model
    ``model_ids[j]``; ``mask`` marks the trained cells.
    """
    if over != "instances":
        return _transform_loss_table(ledger, over)
    ledger = instance_rows(ledger)
    ids = np.sort(ledger.model_id.unique()) if len(ledger) else np.zeros(0, int)
    width = int(ledger.instance.max()) + 1 if len(ledger) else 1
    table = np.full((len(ids), width), np.nan)
    mask = np.zeros((len(ids), width), bool)
    if len(ledger):
        row = np.searchsorted(ids, ledger.model_id.to_numpy())
        table[row, ledger.instance.to_numpy()] = ledger.loss.to_numpy()
        mask[row, ledger.instance.to_numpy()] = True
    return table, mask, ids


def _transform_loss_table(ledger: pd.DataFrame, over: str):
    base, mask, ids = loss_table(ledger)
    rows = transformed_rows(ledger) if "transform" in ledger.columns else ledger.iloc[:0]
    if not len(rows):
        raise ValueError(f"over={over!r}: this ledger has no transformed losses")
    pairs = list(dict.fromkeys(zip(rows["transform"], rows["param"], strict=True)))
    column = {p: t for t, p in enumerate(pairs)}
    tlosses = np.full((*base.shape, len(pairs)), np.nan)
    r = np.searchsorted(ids, rows.model_id.to_numpy())
    t = np.array([column[p] for p in zip(rows["transform"], rows["param"], strict=True)])
    tlosses[r, rows.instance.to_numpy(), t] = rows.loss.to_numpy()
    table, tmask = transform_table(tlosses, mask, over)
    return table, tmask, ids


#: The columns of ``SelectionResult.iterations``, in order (``jrobust.search`` writes them, the run
#: folder checks them).
ITERATION_COLUMNS = (
    "iteration",
    "parameter",
    "kind",
    "log",
    "centre",
    "width",
    "candidates",
    "elites",
    "restarted",
)


# The result users hold: its fields, their documentation and short views (summary, plots,
# tables); building it is `from_state`, the work is in race/ and runfolder/.
@dataclasses.dataclass
class SelectionResult:  # long: see above
    """The outcome of a race.

    Attributes:
      winner: the winning ModelConfig (``None`` when the space is a bare model count).
      winner_id: its model id; winners: the ids of the ``n_winners`` best survivors, best first.
      ledger: one row per trained instance: ``model_id``, ``instance``, ``loss`` (+inf for a
        failed instance), ``status`` (``ok``, ``diverged`` or ``failed``), ``round``,
        ``seconds`` (wall time share of its stack) and the test metrics. On a population with
        transformed test sets (``jrobust.data.with_transforms``) the columns ``transform`` and
        ``param`` say which test set a row's loss is on: each instance has its row with
        ``transform="none"`` (the untransformed test set; ``param`` NaN, the test metrics and
        the seconds) and one row per ``(transform, param)`` of the grid
        (``instance_ledger``, ``transform_summary``).
      history: one row per round: ``round``, ``instances_per_model``, ``survivors`` (before the
        rule), ``trained``, ``eliminated`` (ids), ``remaining``, ``elites``, ``rescued``,
        ``swaps`` and ``finalist_swaps`` (the pairs ``[kept, removed instead]`` of the dominance
        guarantee in the rule's and in the finalist cut's decision), ``seconds``,
        ``compile_seconds``, ``instance_steps``.
      path: one row per (round, model alive in it): ``statistic`` and ``rank`` values,
        ``instances``, ``alive`` after the rule, ``reason`` (why it left in that round:
        ``"rule"``, ``"finalists"`` or ``"dominated"``; ``""`` when it stayed) (the paper's
        "model path" figures).
      models: the space as a DataFrame; n_trainings: instances trained in all.
      timing: compile, training and total seconds, cohorts and compiled programs, the stop
        reason, and ``finished`` (False for a race stopped before its end).
      settings: the resolved race settings (``RaceSettings.describe()``).
      dominance: ``None``, or when the dominance guarantee changed the winner, what happened:
        ``crowned`` (the model ``rank_by`` ranked first), ``dominated_by`` (the survivors strictly
        better on mean, std and PD), ``winner``, ``rank_by`` and the three statistics of each
        (``jrobust._src.race.ranking.final_order``); ``dominance_note`` says it in a sentence.
      stages: one dict per stage of the race (fidelity stages, the final race): ``stage``,
        ``kind`` (``"race"``/``"final"``), ``train_size``, ``first_instance``, ``first_round``,
        ``last_round``, ``models`` (entering), ``survivors`` (leaving), ``end`` (why it ended).
      iterations: ``None`` for a race; for ``jrobust.search`` one row per (iteration, parameter).

    The ledger, history and path rows carry ``stage`` (the stage's number, as in ``stages``:
    0 without fidelity stages, the last number for the final race), ``stage_kind``
    (``"race"`` or ``"final"``) and ``train_size`` (the instance's training-sample size; 0 when
    an evaluator's own size is not known); the path rows of a test rule carry ``pvalue``
    (after the correction: the one compared with ``alpha``) and ``pvalue_raw`` against the
    round's best model, and ``elite`` (protected by ``elites`` in that round).
    """

    winner: ModelConfig | None
    winner_id: int
    winners: list[int]
    ledger: pd.DataFrame
    history: pd.DataFrame
    path: pd.DataFrame
    models: pd.DataFrame
    n_trainings: int
    timing: dict[str, Any]
    settings: dict[str, Any]
    configs: list[ModelConfig] | None = None
    dominance: dict[str, Any] | None = None
    stages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    iterations: pd.DataFrame | None = None

    @classmethod
    def from_state(
        cls,
        state: RaceState,
        race: ResolvedRace,
        models: pd.DataFrame,
        *,
        configs: list[ModelConfig] | None = None,
        timing: Mapping[str, Any] | None = None,
    ) -> SelectionResult:
        """The result of a race's state (``timing["finished"]`` is False while it is not done).

        The survivors are ranked on the instances of the latest stage they raced in (the final
        race's fresh instances once it has run) by ``rank_by``, with the dominance guarantee of
        ``final_order``: no model comes first while another survivor is strictly better on
        mean, std and PD; ``dominance`` says when that changed the winner.
        """
        n = min(race.settings.n_winners, int(state.alive.sum()))
        table, mask = state.table(state.ranking_mask(), race.settings.over)
        order, note = final_order(race.statistic, race.rank_by, table, mask, state.alive)
        winners = [int(w) for w in order[:n]]
        return cls(
            winner=configs[winners[0]] if configs is not None else None,
            winner_id=winners[0],
            winners=winners,
            ledger=state.ledger.frame(),
            history=pd.DataFrame(state.history),
            path=pd.DataFrame(state.path),
            models=models,
            n_trainings=state.n_trainings,
            timing=dict(
                compile_seconds=state.compile_seconds,
                train_seconds=state.train_seconds,
                wall_seconds=state.compile_seconds + state.train_seconds,
                stop_reason=state.stop_reason,
                finished=state.done,
                **(timing or {}),
            ),
            settings=race.settings.describe(),
            configs=configs,
            dominance=note,
            stages=[dict(s) for s in state.stages],
        )

    @property
    def finished(self) -> bool:
        """False when the race was stopped (interrupted, killed) before its end."""
        return bool(self.timing.get("finished", True))

    @property
    def all_failed(self) -> bool:
        """True when no instance gave a finite loss: the winner then means nothing."""
        led = self.instance_ledger()
        return bool(len(led)) and not led.status.isin(USABLE_STATUSES).any()

    @property
    def over(self) -> str:
        """What the race's statistics were taken over (``RaceSettings.over``)."""
        return str(self.settings.get("over", "instances"))

    def instance_ledger(self) -> pd.DataFrame:
        """The ledger rows on the untransformed test set: one per trained instance."""
        return instance_rows(self.ledger)

    def losses(self, model_id: int) -> np.ndarray:
        """The instance losses of one model (untransformed test set), in instance order."""
        led = self.instance_ledger()
        rows = led[led.model_id == model_id].sort_values("instance")
        return rows["loss"].to_numpy()

    def transform_losses(self, model_id: int) -> pd.DataFrame:
        """One model's losses on the transformed test sets: instances by ``(transform, param)``."""
        led = transformed_rows(self.ledger)
        rows = led[led.model_id == model_id]
        return rows.pivot_table(index="instance", columns=["transform", "param"], values="loss")

    def transform_summary(self, models: list[int] | None = None) -> pd.DataFrame:
        """Per model and ``(transform, param)``: the loss's ``mean``, ``std``, ``median``,
        ``min``, ``max`` and ``instances`` over the instances of the last stage each model raced
        in (``decisive_ledger``); failed instances count as +inf."""
        led = transformed_rows(self.decisive_ledger())
        if models is not None:
            led = led[led.model_id.isin([int(m) for m in models])]
        g = led.groupby(["model_id", "transform", "param"], sort=True)["loss"]
        frame = pd.DataFrame(
            {
                "instances": g.size(),
                "mean": g.mean(),
                "std": g.std(ddof=1).fillna(0.0),
                "median": g.median(),
                "min": g.min(),
                "max": g.max(),
            }
        )
        return frame.reset_index()

    @property
    def dominance_note(self) -> str:
        """The dominance guarantee in a sentence when it changed the winner (else ``""``), e.g.
        "model 3 was ranked first by q3+iqr but model 5 is better on mean, std and PD ..."."""
        names = self.models.set_index("model_id").name.to_dict() if "name" in self.models else {}
        return dominance_message(self.dominance, names)

    def stage_of_rows(self, frame: pd.DataFrame | None = None) -> np.ndarray:
        """The position in ``stages`` of each row's stage (the ledger's, or ``frame``'s), from
        its round."""
        frame = self.ledger if frame is None else frame
        firsts = [int(s["first_round"]) for s in self.stages] or [1]
        if not len(frame):
            return np.zeros(0, np.int64)
        return np.searchsorted(np.asarray(firsts), frame["round"].to_numpy(), side="right") - 1

    def decisive_ledger(self) -> pd.DataFrame:
        """The ledger rows each model is judged on: those of the last stage it raced in (its
        largest training size; the final race for the finalists). Without fidelity stages and a
        final race, the whole ledger."""
        led = self.ledger.copy()
        if len(self.stages) <= 1 or not len(led):
            return led
        stage = self.stage_of_rows(led)
        last = pd.Series(stage).groupby(led["model_id"].to_numpy()).transform("max").to_numpy()
        return led[stage == last].copy()

    def summary(self, top: int | None = 10, alive_only: bool = False) -> pd.DataFrame:
        """Per-model statistics (mean, std, median, PD, min, max, instances), best first.

        The survivors come first, the winners leading (in their order), the others ranked by
        ``rank_by``; then the eliminated models, latest first by the round they left (column
        ``eliminated in round``; empty for a survivor), each round's by ``rank_by``. With
        fidelity stages or a final race, each model's statistics are those of the last stage it
        raced in (``decisive_ledger``), and the columns ``stage`` and ``train_size`` say which.
        The loss columns are over the untransformed test set; ``statistic`` and ``rank_value``
        are the race's own (over instances, transformations or both: ``RaceSettings.over``).
        Printed, the frame shows every column (``print(result.summary())``).
        """
        every = self.decisive_ledger()
        led = instance_rows(every).copy()
        led["loss"] = np.where(np.isfinite(led["loss"]), led["loss"], np.inf)
        g = led.groupby("model_id")["loss"]
        frame = pd.DataFrame(
            {
                "instances": g.size(),
                "failed": led.assign(f=led.status == "failed").groupby("model_id")["f"].sum(),
                "mean": g.mean(),
                "std": g.std(ddof=1).fillna(0.0),
                "median": g.median(),
                "pd": g.quantile(0.9) - g.quantile(0.1),
                "min": g.min(),
                "max": g.max(),
            }
        )
        stat = get_statistic(self.settings["statistic"])
        rank = get_statistic(self.settings.get("rank_by") or self.settings["statistic"])
        table, mask, ids = loss_table(every, self.over)
        frame.loc[ids, "statistic"] = stat(table, mask)
        frame.loc[ids, "rank_value"] = rank(table, mask)
        last = self.path[self.path["round"] == self.path["round"].max()] if len(self.path) else None
        final = set(last[last.alive].model_id) if last is not None else set()
        frame["alive"] = frame.index.isin(final)
        if len(self.stages) > 1 and {"stage", "train_size"} <= set(led.columns):
            last_rows = led.groupby("model_id")[["stage", "train_size"]].last()
            frame = frame.join(last_rows)
        frame = frame.join(self.models.set_index("model_id")[["name"]])
        left = self.elimination_rounds().reindex(frame.index)
        frame[ELIMINATED] = left.where(~frame["alive"]).astype("Int64")
        survivors = frame[frame["alive"]].sort_values("rank_value", kind="stable").index
        gone = (
            frame[~frame["alive"]]
            .assign(_left=frame[ELIMINATED].fillna(0).astype(int))
            .sort_values(["_left", "rank_value"], ascending=[False, True], kind="stable")
            .index
        )
        first = [w for w in self.winners if w in set(survivors)]
        order = [*first, *[i for i in survivors if i not in first], *gone]
        frame = frame.loc[[i for i in order if i in frame.index]]
        if alive_only:
            frame = frame[frame.alive]
        frame.insert(0, "model_id", frame.index)
        first = ["model_id", "name", "statistic", "rank_value", "mean", "std", "pd", "median"]
        first += ["min", "max", "instances", "failed", "alive", ELIMINATED]
        frame = frame[first + [c for c in frame.columns if c not in first]]
        frame = _Summary(frame.reset_index(drop=True))
        frame.attrs.update(statistic=stat.name, rank_by=rank.name)
        return frame.head(top) if top else frame

    def elimination_rounds(self) -> pd.Series:
        """The round in which each eliminated model left the race (``model_id`` -> round; the
        survivors are not in it)."""
        path = self.path
        if not len(path) or "alive" not in path:
            return pd.Series(dtype="Int64", name="round")
        gone = path[~path["alive"].astype(bool)]
        return gone.groupby("model_id")["round"].min().astype("Int64")

    # ------------------------------------------------------------------ figures
    def plot_path(self, **kwargs: Any) -> Figure:
        """The elimination path: each model's statistic after each round, the winner in red
        (``jrobust.plots.plot_path``; ``path=`` also saves it as PNG).

        Returns:
          The matplotlib figure.
        """
        from jrobust import plots  # matplotlib loads on the first figure, not with jrobust

        return plots.plot_path(self, **kwargs)

    def plot_distributions(self, models: list[int] | None = None, **kwargs: Any) -> Figure:
        """The instance-loss distributions of the best models (box plots, one dot per
        instance; ``jrobust.plots.plot_distributions``: ``top=``, ``kind="violin"``, ``path=``).

        Returns:
          The matplotlib figure.
        """
        from jrobust._src import plots

        return plots.plot_distributions(self, models, **kwargs)

    def plot_transforms(self, models: list[int] | None = None, **kwargs: Any) -> Figure:
        """The loss against each transformation's parameter, one line per model, for a race on
        ``jrobust.data.with_transforms`` data (``jrobust.plots.plot_transforms``); a
        ``ValueError`` for a race without transformed test sets.

        Returns:
          The matplotlib figure.
        """
        from jrobust._src import plots

        transformed_rows(self.ledger)  # the clear error of a race without transformations
        return plots.plot_transforms(self, models, **kwargs)

    def plot_iterations(self, **kwargs: Any) -> Figure:
        """The search's iterations: the sampled values of every parameter against the
        iteration, elites marked, the winner in red (``jrobust.plots.plot_iterations``;
        ``path=`` also saves it as PNG); a ``ValueError`` for a race (no ``iterations``).

        Returns:
          The matplotlib figure.
        """
        from jrobust._src import plots

        return plots.plot_iterations(self, **kwargs)

    @property
    def winner_name(self) -> str:
        """The winner's name in the space (e.g. ``"paper2 lr=0.003 wd=0.01"``)."""
        names = self.models.set_index("model_id")["name"] if "name" in self.models else {}
        return str(names.get(self.winner_id, f"model {self.winner_id}"))

    def __repr__(self) -> str:
        name = self.models.set_index("model_id").name.get(self.winner_id, "")
        return (
            f"SelectionResult(winner_id={self.winner_id}, name={name!r}, "
            f"n_trainings={self.n_trainings}, rounds={len(self.history)}, "
            f"models={len(self.models)})"
        )
