"""The summary of a run: the best models as a table, the headline facts, ``summary.md``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jrobust._src.atomic import write_text_atomic
from jrobust._src.race.ranking import DOMINANCE_STATISTICS, dominance_values, swap_message
from jrobust._src.result import ELIMINATED, SelectionResult, id_list, loss_table
from jrobust._src.runfolder.layout import CONFIG_FILE, FIGURES

__all__ = [
    "ITERATIONS_LEGEND",
    "column_labels",
    "edge_notes",
    "legend",
    "metric_label",
    "programs_line",
    "programs_view",
    "duration",
    "facts",
    "fmt",
    "history_view",
    "iterations_view",
    "markdown_table",
    "md_code",
    "md_text",
    "race_features",
    "rule_text",
    "runner_up",
    "runner_up_text",
    "stages_view",
    "statistic_label",
    "summary_table",
    "swap_lines",
    "swap_notes",
    "transforms_view",
    "write_summary",
]


def summary_table(result: SelectionResult, top: int | None = 20) -> pd.DataFrame:
    """Models best first: rank, id, name, the statistic, mean, std, PD, ..., instances, failed,
    alive, ``eliminated in round``.

    The survivors come first (the winners leading), ranked by ``rank_by``; then the eliminated,
    latest first by the round they left (``SelectionResult.summary``). ``column_labels`` gives
    the headers a reader sees.
    """
    frame = result.summary(top=None)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    stat = result.settings.get("statistic", "statistic")
    rank_name = result.settings.get("rank_by")
    # the race's own values win over the plain summary column of the same name (e.g. "std")
    shadowed = [c for c in (stat, rank_name) if c in frame.columns and c != "statistic"]
    over = result.over
    if over != "instances":  # e.g. "max over transforms", beside the instances' own max
        shadowed, stat = [], statistic_label(stat, over)
        rank_name = statistic_label(rank_name, over) if rank_name else rank_name
    frame = frame.drop(columns=list(dict.fromkeys(shadowed)))
    frame = frame.rename(columns={"statistic": stat})
    if rank_name and rank_name != stat:
        frame = frame.rename(columns={"rank_value": rank_name})
    else:
        frame = frame.drop(columns=["rank_value"])
    first = ["rank", "model_id", "name", stat, "mean", "std", "pd", "median", "min", "max"]
    last = ["instances", "failed", "alive", ELIMINATED]
    first = [c for c in dict.fromkeys(first) if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first + last] + last]
    return frame.head(top) if top else frame


def metric_label(result: SelectionResult) -> tuple[str, str]:
    """The metric the instance losses are, short (for column headers) and in words.

    ``accuracy`` is recorded as ``1 - accuracy`` (lower is better), so it is called the error;
    a race on an evaluator's losses, or models with different metrics, say "loss".

    Example:
      >>> from types import SimpleNamespace
      >>> from jrobust import zoo
      >>> metric_label(SimpleNamespace(configs=[zoo.resnet18_config()]))
      ('error', 'the test error of each instance (error = 1 - accuracy)')
    """
    metrics = {c.metric for c in result.configs or []}
    if len(metrics) != 1:
        return "loss", "the loss of each instance"
    metric = metrics.pop()
    if metric == "accuracy":
        return "error", "the test error of each instance (error = 1 - accuracy)"
    if metric == "error_rate":
        return "error", "the test error rate of each instance"
    return metric, f"the test {metric} of each instance"


#: The loss columns of the models tables: their headers get the metric and the "lower is better"
#: arrow.
_LOSS_COLUMNS = ("mean", "std", "pd", "median", "min", "max")


def column_labels(result: SelectionResult, frame: pd.DataFrame) -> dict[str, str]:
    """The headers a reader sees for ``summary_table``'s columns: each loss column names the
    metric and carries ↓ (lower is better), e.g. ``max rmse ↓``, ``PD rmse ↓``."""
    short, _ = metric_label(result)
    stat = statistic_label(result.settings.get("statistic", "statistic"), result.over)
    rank = result.settings.get("rank_by")
    rank = statistic_label(rank, result.over) if rank else None
    labels = {"model_id": "model", ELIMINATED: ELIMINATED}
    for col in frame.columns:
        if col in _LOSS_COLUMNS or col in (stat, rank):
            labels[col] = f"{'PD' if col == 'pd' else col} {short} ↓"
    return labels


def legend(result: SelectionResult) -> str:
    """One sentence under a models table: the metric, lower is better, the order of the rows."""
    _, words = metric_label(result)
    stat = statistic_label(result.settings.get("statistic", "statistic"), result.over)
    rank = result.settings.get("rank_by") or stat
    return (
        f"Every loss column is over {words}; ↓ lower is better. The survivors come first, the "
        f"winner leading and the others ranked by {rank}; then the eliminated models, by the "
        f"round they left (latest first). The race eliminates on {stat}; PD = Q90 - Q10."
    )


def runner_up(result: SelectionResult, n_resamples: int = 2000, seed: int = 0) -> dict | None:
    """The winner against the runner-up (the next model of the models table): the difference
    (runner-up minus winner: positive when the winner is better) of the race's statistic and of
    the mean, each with a 95 % percentile bootstrap interval over instances, paired over the
    instances both trained (common random numbers) and unpaired when they share fewer than 2.
    ``None`` when the race has a single model.

    Returns:
      ``winner``, ``runner_up`` (ids), ``name`` (the runner-up's), ``label`` (the statistic's),
      ``paired``, ``n`` (instances resampled: the common ones, or the runner-up's and the
      winner's counts) and for ``statistic`` and ``mean``: ``(winner value, runner-up value,
      difference, low, high)``.
    """
    from jrobust._src.result import loss_table
    from jrobust._src.stats import get_statistic, paired_bootstrap

    table = summary_table(result, top=2)
    if len(table) < 2 or not len(result.ledger):
        return None
    ids = [int(table.model_id.iloc[0]), int(table.model_id.iloc[1])]
    s = result.settings
    stat = get_statistic(s.get("statistic"))
    decisive = result.decisive_ledger()
    decisive = decisive[decisive.model_id.isin(ids)]
    out: dict[str, Any] = {
        "winner": ids[0],
        "runner_up": ids[1],
        "name": str(table["name"].iloc[1]),
        "label": statistic_label(stat.name, result.over),
    }
    for key, statistic, over in (("statistic", stat, result.over), ("mean", "mean", "instances")):
        losses, mask, rows = loss_table(decisive, over)
        order = [int(np.flatnonzero(rows == m)[0]) for m in ids]
        losses, mask = losses[order], mask[order]
        values = get_statistic(statistic)(losses, mask)
        common = int(mask.all(axis=0).sum())
        if common >= 2:
            boot = paired_bootstrap(losses, mask, statistic, 0, n_resamples, seed=seed)
            low, high = float(boot.low[1]), float(boot.high[1])
            out.update(paired=True, n=common)
        else:
            low, high = _unpaired_interval(losses, mask, statistic, n_resamples, seed)
            out.update(paired=False, n=[int(mask[1].sum()), int(mask[0].sum())])
        with np.errstate(invalid="ignore"):  # inf - inf when both only failed: nan
            diff = float(values[1] - values[0])
        out[key] = (float(values[0]), float(values[1]), diff, low, high)
    return out


def _unpaired_interval(losses, mask, statistic, n_resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile interval of statistic(row 1) - statistic(row 0), each row's trained
    values resampled on their own (no instance in common to pair)."""
    from jrobust._src.stats import get_statistic

    stat = get_statistic(statistic)
    rng = np.random.default_rng(seed)
    reps = []
    for row in (0, 1):
        values = losses[row][mask[row]]
        values = np.where(np.isfinite(values), values, np.inf)
        if values.size < 2:
            return float("-inf"), float("inf")
        draws = values[rng.integers(0, values.size, size=(n_resamples, values.size))]
        reps.append(stat(draws, np.ones_like(draws, bool)))
    with np.errstate(invalid="ignore"):
        diff = reps[1] - reps[0]
    diff = np.where(np.isnan(diff), 0.0, diff)
    low, high = np.quantile(diff, [0.025, 0.975], method="inverted_cdf")
    return float(low), float(high)


def runner_up_text(c: Mapping[str, Any], metric: str = "loss") -> str:
    """The comparison of ``runner_up`` in one sentence (differences: runner-up minus winner)."""

    def part(label: str, values) -> str:
        w, r, d, lo, hi = values
        return (
            f"{label} {fmt(r)} against the winner's {fmt(w)}, {_signed(d)} "
            f"(95 % bootstrap interval {_signed(lo)} to {_signed(hi)})"
        )

    over = (
        f"paired over the {c['n']} instances both trained"
        if c["paired"]
        else f"unpaired: no instances in common, {c['n'][0]} and {c['n'][1]} of their own"
    )
    label = f"{c['label']} {metric}"
    return (
        f"Runner-up: model {c['runner_up']}, {c['name']}: {part(label, c['statistic'])}; "
        f"{part(f'mean {metric}', c['mean'])}; {over}."
    )


def edge_notes(result: SelectionResult) -> list[str]:
    """A note for every numeric choice of the space where the winner has the smallest or the
    largest value tried along its own line of the grid (the models equal to the winner in
    every other choice, at least 3 values): the best may lie beyond the grid."""
    models = result.models
    if getattr(result, "iterations", None) is not None:  # a search: its ranges are its bounds
        return []
    if not len(models) or result.winner_id not in set(models.model_id):
        return []
    choices = [c for c in models.columns if c not in ("model_id", "cohort", "name")]
    keys = models[choices].astype(object).where(models[choices].notna(), "-").astype(str)
    mine = keys[models.model_id == result.winner_id].iloc[0]
    notes = []
    for col in choices:
        if models[col].dtype == bool or not pd.api.types.is_numeric_dtype(models[col]):
            continue
        others = [c for c in choices if c != col]
        line = (
            (keys[others] == mine[others]).all(axis=1)
            if others
            else pd.Series(True, index=keys.index)
        )
        tried = np.unique(models.loc[line.to_numpy(), col].dropna().to_numpy(dtype=float))
        value = float(models.loc[models.model_id == result.winner_id, col].iloc[0])
        if tried.size < 3 or not np.isfinite(value):
            continue
        where = "largest" if value == tried.max() else "smallest" if value == tried.min() else None
        if where:
            notes.append(
                f"the winner's {col} ({value:g}) is the {where} tried ({tried.min():g} to "
                f"{tried.max():g}); consider extending the grid"
            )
    return notes


def _signed(v: float) -> str:
    if not np.isfinite(v):
        return "-inf" if v < 0 else "+inf"
    return f"{v:+.3g}"


def statistic_label(name: str, over: str = "instances") -> str:
    """A statistic's name with what it is taken over: ``max``, ``max over transforms``."""
    return name if over == "instances" else f"{name} over {over}"


def transforms_view(result: SelectionResult, top: int = 8) -> pd.DataFrame:
    """The best models' mean loss on each transformed test set: one row per model, one column
    per ``(transform, param)`` (empty without transformations)."""
    if "transform" not in result.ledger.columns:
        return pd.DataFrame()
    ids = result.summary(top=top).model_id.tolist()
    frame = result.transform_summary(ids)
    if not len(frame):
        return pd.DataFrame()
    frame["column"] = [
        f"{t} {p:g}" for t, p in zip(frame["transform"], frame["param"], strict=True)
    ]
    wide = frame.pivot(index="model_id", columns="column", values="mean")
    wide = wide[list(dict.fromkeys(frame["column"]))].reindex(ids)
    names = result.models.set_index("model_id")["name"]
    wide.insert(0, "name", names.reindex(wide.index).to_numpy())
    wide.insert(0, "model_id", wide.index)
    return wide.reset_index(drop=True)


def _rate(result: SelectionResult) -> float | None:
    h = result.history
    if h is None or not len(h) or "instance_steps" not in h or not h["seconds"].sum():
        return None
    return float(h["instance_steps"].sum() / h["seconds"].sum())


def facts(result: SelectionResult, info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headline facts of a run, shared by summary.md, report.html and the command line."""
    info = dict(info or {})
    s = result.settings
    n_models = len(result.models)
    exhaustive = n_models * int(s.get("max_instances", 0) or 0)
    if getattr(result, "iterations", None) is not None:  # sampled models: no grid to exhaust
        exhaustive = 0
    row = summary_table(result, top=1).iloc[0] if len(result.ledger) else None
    stat = statistic_label(s.get("statistic"), result.over)
    t = result.timing
    return {
        "winner_id": int(result.winner_id),
        "winner_name": str(
            result.models.set_index("model_id").name.get(result.winner_id, result.winner_id)
        ),
        "statistic": stat,
        "statistic_value": float(row[stat]) if row is not None else float("nan"),
        "mean": float(row["mean"]) if row is not None else float("nan"),
        "std": float(row["std"]) if row is not None else float("nan"),
        "pd": float(row["pd"]) if row is not None else float("nan"),
        "instances": int(row["instances"]) if row is not None else 0,
        "n_models": n_models,
        "n_cohorts": int(result.models["cohort"].nunique()) if "cohort" in result.models else None,
        "n_programs": t.get("n_programs"),
        "programs": list(t.get("programs") or []),
        "n_trainings": int(result.n_trainings),
        "exhaustive": exhaustive,
        "rounds": len(result.history),
        "wall_seconds": float(t.get("wall_seconds", 0.0) or 0.0),
        "compile_seconds": float(t.get("compile_seconds", 0.0) or 0.0),
        "train_seconds": float(t.get("train_seconds", 0.0) or 0.0),
        "stop_reason": t.get("stop_reason", ""),
        "rate": _rate(result),
        "finished": bool(info.get("finished", t.get("finished", True))),
        "all_failed": result.all_failed,
        "rule_text": rule_text(s),
        "dominance": result.dominance_note,
        "swaps": swap_notes(result),
        "stages": list(result.stages),
        "rescued": _rescued(result),
        "metric": metric_label(result)[0],
        "metric_words": metric_label(result)[1],
        "runner_up": runner_up(result) if len(result.ledger) else None,
        "edges": edge_notes(result),
        **{k: v for k, v in info.items() if k not in ("finished",)},
    }


def swap_lines(notes: list[str]) -> list[str]:
    """The first ``SHOWN_SWAPS`` swap notes, and how many more there are."""
    more = len(notes) - SHOWN_SWAPS
    tail = [f"{more} more such swaps are listed in history.parquet (swaps, finalist_swaps)"]
    return notes[:SHOWN_SWAPS] + (tail if more > 0 else [])


def programs_line(programs: list[dict]) -> str:
    """``3 programs (2 merged, padded work up to +24 %), compiled in 12.3 s``."""
    merged = sum(bool(p.get("merged")) for p in programs)
    waste = max((float(p.get("waste", 0.0)) for p in programs), default=0.0)
    seconds = sum(float(p.get("compile_seconds", 0.0)) for p in programs)
    text = f"{len(programs)} program{'s' if len(programs) != 1 else ''}"
    if merged:
        text += f" ({merged} merged, padded work up to +{100 * waste:.0f} %)"
    return text + f", compiled in {seconds:.1f} s"


def programs_view(programs: list[dict]) -> pd.DataFrame:
    """The programs of a run as a table (one row per program)."""
    frame = pd.DataFrame(programs)
    if len(frame) and "stack_sizes" in frame:
        frame["stack_sizes"] = [", ".join(map(str, s)) for s in frame["stack_sizes"]]
    return frame


def rule_text(s: Mapping[str, Any]) -> str:
    """The rule with its test options, e.g. ``welch (alpha 0.05, holm correction)``."""
    options = []
    if s.get("alpha") is not None:
        options.append(f"alpha {s['alpha']}")
    if s.get("correction"):
        options.append(f"{s['correction']} correction")
    if s.get("patience"):
        options.append(f"patience {s['patience']}")
    return f"{s.get('rule')}" + (f" ({', '.join(options)})" if options else "")


def race_features(s: Mapping[str, Any]) -> list[str]:
    """The race's elites, fidelity stages, final race and statistics over transformed test sets
    in words (empty when none is used)."""
    out = []
    if s.get("over", "instances") != "instances":
        what = (
            "the mean over instances per transformation parameter"
            if s["over"] == "transforms"
            else "one loss per (instance, transformation parameter)"
        )
        out.append(f"statistics over the transformed test sets: {what}")
    if s.get("elites"):
        out.append(
            f"elites {s['elites']} (the best {s['elites']} by {s.get('rank_by')} at the start of "
            "a round cannot be eliminated in it)"
        )
    if s.get("fidelity"):
        sizes = ", ".join(str(v) for v in s["fidelity"])
        out.append(f"fidelity stages at training sizes {sizes} (fresh instances in every stage)")
    if s.get("final_instances") and int(s.get("n_winners") or 1) > 1:
        out.append(
            f"final race: the {s['n_winners']} finalists on {s['final_instances']} fresh "
            f"instances each, ordered by {s.get('rank_by')} on those alone"
        )
    return out


def _rescued(result: SelectionResult) -> int:
    h = result.history
    if h is None or "rescued" not in h:
        return 0
    return int(sum(len(r) for r in h["rescued"] if isinstance(r, list | tuple | np.ndarray)))


#: The history's lists of dominance swaps (pairs [kept, removed instead]) and what decided them.
SWAP_COLUMNS = {"swaps": "rule", "finalist_swaps": "finalists"}
#: summary.md and report.html name at most this many swaps (all are in history.parquet).
SHOWN_SWAPS = 5


def _pairs(value: Any) -> list[tuple[int, int]]:
    if not isinstance(value, list | tuple | np.ndarray):
        return []
    return [(int(p[0]), int(p[1])) for p in value]


def swap_notes(result: SelectionResult) -> list[str]:
    """The decisions the dominance guarantee changed, one sentence each
    (``ranking.swap_message``): a model the rule or the finalist cut removed stayed because it
    is better on mean, std and PD than one they kept, which left instead. The numbers are those
    the decision saw: the stage's instances up to that round, over the race's ``over``."""
    h = result.history
    if h is None or not len(h) or not any(c in h for c in SWAP_COLUMNS):
        return []
    names = result.models.set_index("model_id").name.to_dict() if "name" in result.models else {}
    notes = []
    for _, row in h.iterrows():
        for column, by in SWAP_COLUMNS.items():
            for kept, removed in _pairs(row.get(column)):
                values = _values_seen(result, int(row["round"]), [kept, removed])
                swap = dict(
                    round=int(row["round"]),
                    kept=kept,
                    removed=removed,
                    by=by,
                    rank_by=result.settings.get("rank_by") or result.settings.get("statistic"),
                    values=values,
                )
                notes.append(swap_message(swap, names))
    return notes


def _values_seen(result: SelectionResult, round_: int, models: list[int]) -> dict[str, Any]:
    """The mean, std and PD of ``models`` on the table the decision of round ``round_`` saw
    (``{}`` when the ledger cannot give it)."""
    led = result.ledger
    if not len(led) or "round" not in led:
        return {}
    stage = result.stage_of_rows(led)
    at = result.stage_of_rows(pd.DataFrame({"round": [round_]}))[0]
    rows = led[(stage == at) & (led["round"].to_numpy() <= round_) & led["model_id"].isin(models)]
    try:
        table, mask, ids = loss_table(rows, result.over)
    except ValueError:
        return {}
    values = dominance_values(table, mask, range(len(ids)))
    return {
        str(int(m)): {n: float(values[k, j]) for k, n in enumerate(DOMINANCE_STATISTICS)}
        for j, m in enumerate(ids)
    }


def stages_view(result: SelectionResult) -> pd.DataFrame:
    """One row per stage (fidelity stages, the final race): its size, rounds, models in and out,
    trainings and instance-steps, and why it ended."""
    rows = []
    h = result.history
    for k, st in enumerate(result.stages):
        first, last = st.get("first_round"), st.get("last_round")
        in_stage = (
            h[
                (h["round"] >= first)
                & (h["round"] <= (last if last is not None else h["round"].max()))
            ]
            if len(h) and first is not None
            else h.iloc[0:0]
        )
        rows.append(
            {
                "stage": st.get("stage", k),
                "kind": st.get("kind", "race"),
                "train_size": st.get("train_size") or "own",
                "rounds": f"{first}-{last}" if last is not None else f"{first}-",
                "models": st.get("models"),
                "survivors": st.get("survivors") if st.get("survivors") is not None else "-",
                "trained": int(in_stage["trained"].sum()) if len(in_stage) else 0,
                "instance_steps": (
                    int(in_stage["instance_steps"].sum())
                    if len(in_stage) and "instance_steps" in in_stage
                    else 0
                ),
                "end": st.get("end") or "-",
            }
        )
    return pd.DataFrame(rows)


def fmt(v: Any) -> str:
    if v is pd.NA or v is None:
        return "-"
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "inf" if v > 0 else ("nan" if np.isnan(v) else "-inf")
        return f"{v:.4g}"
    if isinstance(v, list | tuple | np.ndarray):
        return ", ".join(str(x) for x in v) if len(v) else "-"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    return str(v)


def duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def md_text(value: Any) -> str:
    r"""``value`` as Markdown text that renders as itself: no HTML (``<``, ``>``, ``&`` become
    entities), no emphasis, links, code or table cells (their characters are escaped; an
    underscore inside a word, which emphasises nothing, stays as it is), one line.

    Example:
      >>> print(md_text("<b>*x*</b> | p_min _y_"))
      &lt;b&gt;\*x\*&lt;/b&gt; \| p_min \_y\_
    """
    text = " ".join(str(value).splitlines())
    text = re.sub(r"([\\`*\[\]|~])", r"\\\1", text)
    text = re.sub(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", r"\\_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(value: Any) -> str:
    """``value`` as a Markdown code span: fenced by more backticks than it holds in a row, so a
    backtick inside cannot end it early (code spans show HTML as text).

    Example:
      >>> md_code("a`b")
      '``a`b``'
    """
    text = " ".join(str(value).splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = [
        "| " + " | ".join(md_text(c) for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(md_text(fmt(row[c])) for c in cols) + " |")
    return "\n".join(lines)


def _labelled(result: SelectionResult, table: pd.DataFrame) -> pd.DataFrame:
    return table.rename(columns=column_labels(result, table))


def history_view(result: SelectionResult) -> pd.DataFrame:
    """The rounds: survivors, trainings, eliminations, and where they apply the stage and
    training size, the models elitism kept (``rescued``) and the test rule's corrected p-values
    against the best (``p_min``: the smallest of the round; ``p_removed``: the largest that
    removed a model)."""
    h = result.history.copy()
    if not len(h):
        return h
    count = lambda e: len(e) if isinstance(e, list | tuple | np.ndarray) else e  # noqa: E731
    h["eliminated"] = [count(e) for e in h["eliminated"]]
    columns = ["round"]
    if len(result.stages) > 1:
        columns += ["stage", "train_size"]
    columns += ["instances_per_model", "survivors", "trained", "eliminated", "remaining"]
    if result.settings.get("elites") and "rescued" in h:
        h["rescued"] = [count(e) for e in h["rescued"]]
        columns.append("rescued")
    swapped = [sum(len(_pairs(row.get(c))) for c in SWAP_COLUMNS) for _, row in h.iterrows()]
    if any(swapped):  # removed by the dominance guarantee in place of a model it dominates
        h["dominated"] = swapped
        columns.append("dominated")
    path = result.path
    if len(path) and "pvalue" in path and path["pvalue"].notna().any():
        by_round = path.groupby("round")
        h["p_min"] = h["round"].map(by_round["pvalue"].min())
        removed = path[~path["alive"]].groupby("round")["pvalue"].max()
        h["p_removed"] = h["round"].map(removed)
        columns += ["p_min", "p_removed"]
    if "pvalue_omnibus" in h and h["pvalue_omnibus"].notna().any():
        columns.append("pvalue_omnibus")
    columns += ["seconds", "compile_seconds"]
    return h[[c for c in columns if c in h]]


#: What the iterations table of summary.md and report.html shows.
ITERATIONS_LEGEND = (
    "One row per iteration of the search: the candidates it sampled, the elites kept after its "
    "race (best first), whether the sampling model restarted, and per parameter the sampling "
    "model's centre after the iteration (with, for a range, the width its candidates were "
    "sampled with, in unit space)."
)


def iterations_view(result: SelectionResult) -> pd.DataFrame:
    """A search's iterations, one row each: the candidates sampled (how many, which), the
    elites kept, a restart, and per parameter the centre (and a range's width)."""
    table = result.iterations
    if table is None or not len(table):
        return pd.DataFrame()
    rows = []
    for iteration, group in table.groupby("iteration", sort=True):
        first = group.iloc[0]
        sampled = id_list(first["candidates"])
        row: dict[str, Any] = {
            "iteration": int(iteration),
            "sampled": len(sampled),
            "candidates": _id_span(sampled),
            "elites": ", ".join(map(str, id_list(first["elites"]))) or "-",
            "restarted": bool(group["restarted"].any()),
        }
        for _, p in group.iterrows():
            centre = fmt(p["centre"])
            if p["kind"] != "categorical" and pd.notna(p["width"]):
                centre += f" (width {float(p['width']):.3g})"
            row[str(p["parameter"])] = centre
        rows.append(row)
    return pd.DataFrame(rows)


def _id_span(ids: list[int]) -> str:
    """``5-9`` for consecutive ids, else the list."""
    if not ids:
        return "-"
    if ids == list(range(ids[0], ids[0] + len(ids))) and len(ids) > 2:
        return f"{ids[0]}-{ids[-1]}"
    return ", ".join(map(str, ids))


def _head_lines(folder: Path, f: Mapping[str, Any]) -> list[str]:
    """The title, the warnings, the winner and the notes on dominance and the grid's edges."""
    lines = [f"# jrobust run {md_code(folder.name)}", ""]
    if not f["finished"]:
        lines += [
            "> **Unfinished**: this race was stopped; the tables show the state after round "
            f"{f['rounds']}. Continue it with {md_code(f'jrobust run --resume {folder}')}.",
            "",
        ]
    if f["all_failed"]:
        lines += [
            "> **Every instance failed** (non-finite losses): the race has no meaningful winner; "
            "check the learning rates and the data.",
            "",
        ]
    m = f["metric"]
    lines += [
        f"**Winner: model {f['winner_id']}, {md_code(f['winner_name'])}**: "
        f"{md_text(f['statistic'])} {md_text(m)} = "
        f"{fmt(f['statistic_value'])}, mean {fmt(f['mean'])}, std {fmt(f['std'])}, "
        f"PD {fmt(f['pd'])} "
        f"over {f['instances']} instances ({f['metric_words']}; lower is better).",
        "",
    ]
    if f["runner_up"]:
        lines += [md_text(runner_up_text(f["runner_up"], m)), ""]
    if f["dominance"]:
        lines += [f"> **Dominance**: {md_text(f['dominance'])}.", ""]
    if f["swaps"]:
        lines += [f"> **Dominance**: {md_text(note)}." for note in swap_lines(f["swaps"])]
        lines += [""]
    lines += [f"> **Edge of the grid**: {md_text(note)}." for note in f["edges"]]
    lines += [""] if f["edges"] else []
    return lines


def _settings_lines(result: SelectionResult, f: Mapping[str, Any]) -> list[str]:
    """The bulleted list: data, space or search, race settings, trainings, time, stop."""
    s = result.settings
    return [
        f"- data: {md_text(f.get('data', '?'))}",
        (
            f"- search: {f['n_models']} models sampled in "
            f"{result.iterations['iteration'].nunique()} iterations"
            if result.iterations is not None
            else f"- space: {f['n_models']} models"
        )
        + (f" in {f['n_cohorts']} cohorts" if f["n_cohorts"] else "")
        + (f", trained by {programs_line(f['programs'])}" if f["programs"] else ""),
        f"- race: rule {md_code(f['rule_text'])}, statistic {md_code(s.get('statistic'))}, "
        f"ranked by {md_code(s.get('rank_by'))}, warm-up {s.get('warmup')}, "
        f"at most {s.get('max_instances')} instances"
        + (" per stage" if len(f["stages"]) > 1 else "")
        + f", {s.get('n_winners', 1)} winner(s), seed {s.get('seed')}",
        *(f"- {md_text(feature)}" for feature in race_features(s)),
        f"- trainings: {f['n_trainings']} in {f['rounds']} rounds"
        + (
            f" (an exhaustive search with {s.get('max_instances')} instances per model: "
            f"{f['exhaustive']}, {f['exhaustive'] / max(f['n_trainings'], 1):.1f}x as many)"
            if f["exhaustive"]
            else ""
        ),
        f"- time: {duration(f['wall_seconds'])} in all; compiling "
        f"{duration(f['compile_seconds'])} and training {duration(f['train_seconds'])}, partly "
        "at the same time (the next program compiles while one trains)"
        + (f", {f['rate']:.0f} instance-steps/s" if f["rate"] else ""),
        f"- stopped: {md_text(f['stop_reason'] or 'not yet')}",
        "",
    ]


def _tables_lines(result: SelectionResult, f: Mapping[str, Any], top: int) -> list[str]:
    """The tables: models, stages, transformed test sets, iterations, rounds, programs."""
    lines = [
        "## Models, best first",
        "",
        md_text(legend(result)),
        "",
        markdown_table(_labelled(result, summary_table(result, top=top))),
        "",
    ]
    if len(result.stages) > 1:
        lines += [
            "## Stages",
            "",
            "Every stage races on fresh instances; its rules and statistics see only its own.",
            "",
            markdown_table(stages_view(result)),
            "",
        ]
    view = transforms_view(result)
    if len(view):
        lines += [
            "## Transformed test sets",
            "",
            "The mean loss over each model's instances on every transformed test set"
            + (
                " (the race's statistics were taken over these)."
                if result.over != "instances"
                else " (the race's statistics were taken over instances, untransformed)."
            ),
            "",
            markdown_table(view),
            "",
        ]
    lines += [
        *(
            [
                "## Iterations",
                "",
                md_text(ITERATIONS_LEGEND),
                "",
                markdown_table(iterations_view(result)),
                "",
            ]
            if result.iterations is not None
            else []
        ),
        "## Rounds",
        "",
        markdown_table(history_view(result)) if len(result.history) else "(none)",
        "",
        *(
            ["## Programs", "", markdown_table(programs_view(f["programs"])), ""]
            if f["programs"]
            else []
        ),
    ]
    return lines


def _tail_lines(folder: Path) -> list[str]:
    """The figures found in the folder and the commands that rerun the race."""
    lines = ["## Figures", ""]
    for name, file in FIGURES.items():
        if (folder / file).is_file():
            lines.append(f"![{name}]({file})")
    rerun = [f"jrobust run --space {folder / CONFIG_FILE}", f"jrobust report {folder}"]
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", "".join(rerun))), default=0))
    lines += ["", "## Rerun", "", fence, *rerun, fence, ""]
    return lines


def write_summary(
    result: SelectionResult,
    folder: str | os.PathLike,
    info: Mapping[str, Any] | None = None,
    top: int = 20,
) -> Path:
    """Write ``summary.md``: the winner, the settings, the best models, the rounds, the figures."""
    folder = Path(folder)
    f = facts(result, info)
    lines = [
        *_head_lines(folder, f),
        *_settings_lines(result, f),
        *_tables_lines(result, f, top),
        *_tail_lines(folder),
    ]
    return write_text_atomic(folder / "summary.md", "\n".join(lines))
