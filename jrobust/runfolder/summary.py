"""The summary of a run: the best models as a table, the headline facts, ``summary.md``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jrobust._atomic import write_text_atomic
from jrobust.result import SelectionResult
from jrobust.runfolder.layout import CONFIG_FILE, FIGURES

__all__ = [
    "programs_line",
    "programs_view",
    "duration",
    "facts",
    "fmt",
    "history_view",
    "markdown_table",
    "summary_table",
    "write_summary",
]


def summary_table(result: SelectionResult, top: int | None = 20) -> pd.DataFrame:
    """Models best first: rank, id, name, instances, failed, the statistic, mean, std, PD, ...

    The winners come first (in their order), then the models alive at the end, then those that
    lasted longest, each group by ``rank_by``.
    """
    frame = result.summary(top=None)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    stat = result.settings.get("statistic", "statistic")
    rank_name = result.settings.get("rank_by")
    # the race's own values win over the plain summary column of the same name (e.g. "std")
    shadowed = [c for c in (stat, rank_name) if c in frame.columns and c != "statistic"]
    frame = frame.drop(columns=shadowed)
    frame = frame.rename(columns={"statistic": stat})
    if rank_name and rank_name != stat:
        frame = frame.rename(columns={"rank_value": rank_name})
    else:
        frame = frame.drop(columns=["rank_value"])
    first = ["rank", "model_id", "name", stat, "mean", "std", "pd", "median", "min", "max"]
    last = ["instances", "failed", "alive"]
    first = [c for c in dict.fromkeys(first) if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first + last] + last]
    return frame.head(top) if top else frame


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
    row = summary_table(result, top=1).iloc[0] if len(result.ledger) else None
    t = result.timing
    return {
        "winner_id": int(result.winner_id),
        "winner_name": str(
            result.models.set_index("model_id").name.get(result.winner_id, result.winner_id)
        ),
        "statistic": s.get("statistic"),
        "statistic_value": float(row[s.get("statistic")]) if row is not None else float("nan"),
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
        **{k: v for k, v in info.items() if k not in ("finished",)},
    }


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


def fmt(v: Any) -> str:
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


def markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = [
        "| " + " | ".join(str(c) for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(fmt(row[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def history_view(result: SelectionResult) -> pd.DataFrame:
    h = result.history.copy()
    if not len(h):
        return h
    h["eliminated"] = [
        len(e) if isinstance(e, list | tuple | np.ndarray) else e for e in h["eliminated"]
    ]
    keep = [
        c
        for c in (
            "round",
            "instances_per_model",
            "survivors",
            "trained",
            "eliminated",
            "remaining",
            "seconds",
            "compile_seconds",
        )
        if c in h
    ]
    return h[keep]


def write_summary(
    result: SelectionResult,
    folder: str | os.PathLike,
    info: Mapping[str, Any] | None = None,
    top: int = 20,
) -> Path:
    """Write ``summary.md``: the winner, the settings, the best models, the rounds, the figures."""
    folder = Path(folder)
    f = facts(result, info)
    s = result.settings
    lines = [f"# jrobust run `{folder.name}`", ""]
    if not f["finished"]:
        lines += [
            "> **Unfinished**: this race was stopped; the tables show the state after round "
            f"{f['rounds']}. Continue it with `jrobust run --resume {folder}`.",
            "",
        ]
    if f["all_failed"]:
        lines += [
            "> **Every instance failed** (non-finite losses): the race has no meaningful winner; "
            "check the learning rates and the data.",
            "",
        ]
    lines += [
        f"**Winner: model {f['winner_id']}, `{f['winner_name']}`**: {f['statistic']} = "
        f"{fmt(f['statistic_value'])}, mean {fmt(f['mean'])}, std {fmt(f['std'])}, "
        f"PD {fmt(f['pd'])} "
        f"over {f['instances']} instances.",
        "",
        f"- data: {f.get('data', '?')}",
        f"- space: {f['n_models']} models"
        + (f" in {f['n_cohorts']} cohorts" if f["n_cohorts"] else "")
        + (f", trained by {programs_line(f['programs'])}" if f["programs"] else ""),
        f"- race: rule `{s.get('rule')}`, statistic `{s.get('statistic')}`, "
        f"ranked by `{s.get('rank_by')}`, warm-up {s.get('warmup')}, "
        f"at most {s.get('max_instances')} instances, seed {s.get('seed')}"
        + (f", alpha {s.get('alpha')}" if s.get("alpha") is not None else ""),
        f"- trainings: {f['n_trainings']} in {f['rounds']} rounds"
        + (
            f" (an exhaustive search with {s.get('max_instances')} instances per model: "
            f"{f['exhaustive']}, {f['exhaustive'] / max(f['n_trainings'], 1):.1f}x as many)"
            if f["exhaustive"]
            else ""
        ),
        f"- time: {duration(f['wall_seconds'])} "
        f"(compilation {duration(f['compile_seconds'])}, training "
        f"{duration(f['train_seconds'])})"
        + (f", {f['rate']:.0f} instance-steps/s" if f["rate"] else ""),
        f"- stopped: {f['stop_reason'] or 'not yet'}",
        "",
        "## Models, best first",
        "",
        markdown_table(summary_table(result, top=top)),
        "",
        "## Rounds",
        "",
        markdown_table(history_view(result)) if len(result.history) else "(none)",
        "",
        *(
            ["## Programs", "", markdown_table(programs_view(f["programs"])), ""]
            if f["programs"]
            else []
        ),
        "## Figures",
        "",
    ]
    for name, file in FIGURES.items():
        if (folder / file).is_file():
            lines.append(f"![{name}]({file})")
    lines += [
        "",
        "## Rerun",
        "",
        "```",
        f"jrobust run --space {folder / CONFIG_FILE}",
        f"jrobust report {folder}",
        "```",
        "",
    ]
    return write_text_atomic(folder / "summary.md", "\n".join(lines))
