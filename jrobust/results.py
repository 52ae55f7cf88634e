"""Run folders: a finished (or killed) race saved as tables, figures, a summary and an HTML report.

A run folder holds::

    config.toml        the resolved configuration (data, race settings, space): enough to rerun
                       with ``jrobust run --space config.toml``
    checkpoint.pkl     the race state after the last round (``jrobust run --resume`` continues it)
    result.json        winner, winners, trainings, timing, settings
    ledger.parquet     one row per trained instance (model_id, instance, loss, status, round, ...)
    history.parquet    one row per round (survivors, trained, eliminated, seconds, ...)
    path.parquet       one row per (round, model racing in it): the statistic, rank, alive
    models.parquet     the space: model_id, name, cohort and the varied fields
    summary.md         the summary in Markdown
    report.html        a self-contained report (tables and figures embedded; no network needed)
    distributions.png  instance-loss distributions of the survivors
    path.png           the elimination path (statistic of each model per round)
    sample_size.png    robustness vs training-sample size (when a study provides
                       ``sample_size.parquet``)

CSV copies of the tables are written on request. ``load_run`` reads a folder back into a
``SelectionResult`` (from the checkpoint when the race was killed before finishing), so
``jrobust report DIR`` can rebuild the summary and figures at any time.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import pickle
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jrobust.select import CHECKPOINT_FILE, SelectionResult

__all__ = [
    "CONFIG_FILE",
    "RESULT_FILE",
    "TABLES",
    "FIGURES",
    "save_run",
    "load_run",
    "read_config",
    "write_config",
    "write_figures",
    "write_summary",
    "write_report",
    "summary_table",
    "is_run_folder",
]

CONFIG_FILE = "config.toml"
RESULT_FILE = "result.json"
TABLES = ("ledger", "history", "path", "models")
FIGURES = {
    "path": "path.png",
    "distributions": "distributions.png",
    "sample_size": "sample_size.png",
}
SAMPLE_SIZE_TABLE = "sample_size"
FORMAT_VERSION = 1


# ------------------------------------------------------------------------------ small helpers
def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed types (e.g. ``None`` and ints) become strings, lists stay lists."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col].tolist()
        if all(isinstance(v, list | tuple | np.ndarray) for v in values):
            out[col] = [
                [int(x) if isinstance(x, int | np.integer) else x for x in v] for v in values
            ]
            continue
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 or any(v is None for v in values) and kinds - {str}:
            out[col] = [str(v) for v in values]
    return out


def _write_table(frame: pd.DataFrame, folder: Path, name: str, csv: bool) -> None:
    path = folder / f"{name}.parquet"
    tmp = folder / f"{name}.parquet.tmp{os.getpid()}"
    safe = _parquet_safe(frame)
    safe.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    if csv:
        safe.to_csv(folder / f"{name}.csv", index=False)


def is_run_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a jrobust run (its ``config.toml``, results or checkpoint)."""
    f = Path(folder)
    return (
        (f / CONFIG_FILE).is_file()
        or (f / RESULT_FILE).is_file()
        or (f / CHECKPOINT_FILE).is_file()
    )


def write_config(
    folder: str | os.PathLike, config: Mapping[str, Any], header: str | None = None
) -> Path:
    """Write the resolved configuration as ``config.toml`` (atomically)."""
    from jrobust.spaces import to_toml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    _atomic_text(path, to_toml(config, header=header))
    return path


def read_config(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config.toml`` of a run folder as a dict (``None`` when there is none)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: malformed TOML: {err}") from None


# ------------------------------------------------------------------------------ tables
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


def _facts(result: SelectionResult, info: Mapping[str, Any] | None) -> dict[str, Any]:
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
        "n_trainings": int(result.n_trainings),
        "exhaustive": exhaustive,
        "rounds": len(result.history),
        "wall_seconds": float(t.get("wall_seconds", 0.0) or 0.0),
        "compile_seconds": float(t.get("compile_seconds", 0.0) or 0.0),
        "train_seconds": float(t.get("train_seconds", 0.0) or 0.0),
        "stop_reason": t.get("stop_reason", ""),
        "rate": _rate(result),
        "finished": bool(info.get("finished", t.get("finished", True))),
        **{k: v for k, v in info.items() if k not in ("finished",)},
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "inf" if v > 0 else ("nan" if np.isnan(v) else "-inf")
        return f"{v:.4g}"
    if isinstance(v, list | tuple | np.ndarray):
        return ", ".join(str(x) for x in v) if len(v) else "-"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    return str(v)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = [
        "| " + " | ".join(str(c) for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def _history_view(result: SelectionResult) -> pd.DataFrame:
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


# ------------------------------------------------------------------------------ figures
def write_figures(
    result: SelectionResult, folder: str | os.PathLike, sample_size: pd.DataFrame | None = None
) -> dict[str, Path]:
    """Write the PNG figures of a run; returns ``{name: path}`` of those written."""
    from jrobust import plots

    folder = Path(folder)
    out: dict[str, Path] = {}
    if len(result.path):
        plots.plot_path(result, path=folder / FIGURES["path"])
        out["path"] = folder / FIGURES["path"]
    if len(result.ledger):
        plots.plot_distributions(result, path=folder / FIGURES["distributions"])
        out["distributions"] = folder / FIGURES["distributions"]
    if sample_size is None and (folder / f"{SAMPLE_SIZE_TABLE}.parquet").is_file():
        sample_size = pd.read_parquet(folder / f"{SAMPLE_SIZE_TABLE}.parquet")
    if sample_size is not None and len(sample_size):
        plots.plot_sample_size(sample_size, path=folder / FIGURES["sample_size"])
        out["sample_size"] = folder / FIGURES["sample_size"]
    return out


# ------------------------------------------------------------------------------ summary.md
def write_summary(
    result: SelectionResult,
    folder: str | os.PathLike,
    info: Mapping[str, Any] | None = None,
    top: int = 20,
) -> Path:
    """Write ``summary.md``: the winner, the settings, the best models, the rounds, the figures."""
    folder = Path(folder)
    f = _facts(result, info)
    s = result.settings
    lines = [f"# jrobust run `{folder.name}`", ""]
    if not f["finished"]:
        lines += [
            "> **Unfinished**: this race was stopped; the tables show the state after round "
            f"{f['rounds']}. Continue it with `jrobust run --resume {folder}`.",
            "",
        ]
    lines += [
        f"**Winner: model {f['winner_id']}, `{f['winner_name']}`**: {f['statistic']} = "
        f"{_fmt(f['statistic_value'])}, mean {_fmt(f['mean'])}, std {_fmt(f['std'])}, "
        f"PD {_fmt(f['pd'])} "
        f"over {f['instances']} instances.",
        "",
        f"- data: {f.get('data', '?')}",
        f"- space: {f['n_models']} models"
        + (f" in {f['n_cohorts']} cohorts" if f["n_cohorts"] else ""),
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
        f"- time: {_duration(f['wall_seconds'])} "
        f"(compilation {_duration(f['compile_seconds'])}, training "
        f"{_duration(f['train_seconds'])})"
        + (f", {f['rate']:.0f} instance-steps/s" if f["rate"] else ""),
        f"- stopped: {f['stop_reason'] or 'not yet'}",
        "",
        "## Models, best first",
        "",
        _markdown_table(summary_table(result, top=top)),
        "",
        "## Rounds",
        "",
        _markdown_table(_history_view(result)) if len(result.history) else "(none)",
        "",
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
    path = folder / "summary.md"
    _atomic_text(path, "\n".join(lines))
    return path


# ------------------------------------------------------------------------------ report.html
_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:8px 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
.sub{color:#5b6472;margin-bottom:18px;font-size:14px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:16px 20px;margin:12px 0}
.winner{border-left:6px solid #d62728}
.winner .name{font-size:20px;font-weight:600;font-family:ui-monospace,Menlo,Consolas,monospace}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}
.kpi{background:#f1f3f6;border-radius:6px;padding:8px 12px;min-width:96px}
.kpi b{display:block;font-size:17px} .kpi span{font-size:12px;color:#5b6472}
.warn{background:#fff4e5;border:1px solid #f0b45b;border-radius:6px;padding:10px 14px}
table{border-collapse:collapse;width:100%;font-size:13px;background:#fff}
th,td{padding:5px 8px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
th{background:#eef1f5;position:sticky;top:0} td.l,th.l{text-align:left}
tr.win td{background:#fdecea;font-weight:600} tr.alive td{background:#eef5fc}
.scroll{max-height:520px;overflow:auto;border:1px solid #dde1e7;border-radius:6px}
figure{margin:12px 0;background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:13px;color:#5b6472;margin-top:6px}
dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px;font-size:13px;margin:0}
dt{color:#5b6472} dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px;overflow:auto}
"""

_CAPTIONS = {
    "path": "Elimination path: the statistic of every model after every round; "
    "eliminated models end "
    "with ×, the winner is red, the last survivors blue (the paper's model-path figures).",
    "distributions": "Instance-loss distributions of the best models "
    "(each dot is one instance: a new "
    "initialisation and a new training sample).",
    "sample_size": "Robustness against the training-sample size: median and quantile bands of the "
    "instance losses.",
}


def _html_table(
    frame: pd.DataFrame,
    winners: set[int] = frozenset(),
    alive: set[int] = frozenset(),
    left: tuple[str, ...] = ("name",),
) -> str:
    head = "".join(
        f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in frame.columns
    )
    rows = []
    for _, row in frame.iterrows():
        m = row.get("model_id")
        cls = "win" if m in winners else "alive" if m in alive else ""
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html.escape(_fmt(row[c]))}</td>'
            for c in frame.columns
        )
        rows.append(f'<tr class="{cls}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(
    result: SelectionResult,
    folder: str | os.PathLike,
    info: Mapping[str, Any] | None = None,
    figures: Mapping[str, str | os.PathLike] | None = None,
    top: int = 40,
) -> Path:
    """Write ``report.html``: one self-contained page (inline CSS, figures as base64 PNG).

    Args:
      result: the race result.
      folder: the run folder (figures are looked up there when ``figures`` is not given).
      info: extra facts (``data``, ``command``, ``finished``, ...).
      figures: ``{name: png_path}``; default: the PNG files of ``FIGURES`` present in ``folder``.
      top: rows of the model table.

    Returns:
      The path of the report.
    """
    folder = Path(folder)
    f = _facts(result, info)
    s = result.settings
    if figures is None:
        figures = {k: folder / v for k, v in FIGURES.items() if (folder / v).is_file()}
    winners = {int(w) for w in result.winners}
    last = result.path["round"].max() if len(result.path) else None
    alive = (
        set(result.path[(result.path["round"] == last) & result.path["alive"]].model_id)
        if last
        else set()
    )
    esc = html.escape
    kpis = [
        (f"{f['statistic']}", _fmt(f["statistic_value"])),
        ("mean", _fmt(f["mean"])),
        ("std", _fmt(f["std"])),
        ("PD (Q90-Q10)", _fmt(f["pd"])),
        ("instances", str(f["instances"])),
    ]
    run_kpis = [
        ("models", str(f["n_models"])),
        ("trainings", str(f["n_trainings"])),
        ("rounds", str(f["rounds"])),
        ("wall time", _duration(f["wall_seconds"])),
        ("compilation", _duration(f["compile_seconds"])),
    ]
    if f["exhaustive"]:
        run_kpis.append(
            ("fewer than exhaustive", f"{f['exhaustive'] / max(f['n_trainings'], 1):.1f}x")
        )
    if f["rate"]:
        run_kpis.append(("instance-steps/s", f"{f['rate']:.0f}"))
    kpi_html = lambda items: "".join(
        f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in items
    )
    config_rows = ""
    winner_cfg = result.winner
    if winner_cfg is not None:
        import dataclasses

        fields = {fl.name: getattr(winner_cfg, fl.name) for fl in dataclasses.fields(winner_cfg)}
        config_rows = "".join(
            f"<dt>{esc(k)}</dt><dd>{esc(repr(v))}</dd>" for k, v in fields.items()
        )
    settings_rows = "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(_fmt(v))}</dd>" for k, v in s.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>jrobust run {esc(folder.name)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>jrobust run <code>{esc(folder.name)}</code></h1>",
        f'<div class="sub">data: {esc(str(f.get("data", "?")))} &middot; {f["n_models"]} models'
        + (f" in {f['n_cohorts']} cohorts" if f["n_cohorts"] else "")
        + f" &middot; rule <code>{esc(str(s.get('rule')))}</code> "
        + f"on <code>{esc(str(s.get('statistic')))}</code>"
        + f" &middot; warm-up {esc(str(s.get('warmup')))} &middot; seed {esc(str(s.get('seed')))}"
        + (f" &middot; {esc(f['created'])}" if f.get("created") else "")
        + "</div>",
    ]
    if not f["finished"]:
        parts.append(
            f'<p class="warn"><b>Unfinished run</b>: the state after round {f["rounds"]}. '
            "Continue it "
            f"with <code>jrobust run --resume {esc(str(folder))}</code>.</p>"
        )
    parts += [
        '<div class="card winner"><div>Winner</div>',
        f'<div class="name">model {f["winner_id"]}: {esc(f["winner_name"])}</div>',
        f'<div class="kpis">{kpi_html(kpis)}</div></div>',
        f'<div class="card"><div class="kpis">{kpi_html(run_kpis)}</div>'
        '<p style="font-size:13px;color:#5b6472;margin:10px 0 0">'
        f"stopped: {esc(str(f['stop_reason']))}</p></div>",
    ]
    for name in ("path", "distributions", "sample_size"):
        if name in figures and Path(figures[name]).is_file():
            parts.append(
                f"<figure>{_img(Path(figures[name]))}<figcaption>{esc(_CAPTIONS[name])}</figcaption></figure>"
            )
    table = summary_table(result, top=top)
    parts += [
        f"<h2>Models, best first ({min(top, f['n_models'])} of {f['n_models']})</h2>",
        f'<div class="scroll">{_html_table(table, winners, alive)}</div>',
        "<h2>Rounds</h2>",
        f'<div class="scroll">{_html_table(_history_view(result))}</div>'
        if len(result.history)
        else "<p>none</p>",
        "<h2>Race settings</h2>",
        f'<div class="card"><dl>{settings_rows}</dl></div>',
    ]
    if config_rows:
        parts += [
            "<h2>The winner's configuration</h2>",
            f'<div class="card"><dl>{config_rows}</dl></div>',
        ]
    command = f.get("command")
    parts += [
        "<h2>Rerun</h2>",
        "<pre>"
        + (esc(command) + "\n" if command else "")
        + esc(f"jrobust run --space {folder / CONFIG_FILE}")
        + "\n"
        + esc(f"jrobust report {folder}")
        + "</pre>",
        "</main></body></html>",
    ]
    path = folder / "report.html"
    _atomic_text(path, "\n".join(parts))
    return path


# ------------------------------------------------------------------------------ save / load
def save_run(
    result: SelectionResult,
    folder: str | os.PathLike,
    config_dict: Mapping[str, Any] | None = None,
    csv: bool = False,
    *,
    info: Mapping[str, Any] | None = None,
    sample_size: pd.DataFrame | None = None,
    figures: bool = True,
) -> Path:
    """Save a race result as a run folder (see the module docstring for its files).

    Args:
      result: the ``SelectionResult``.
      folder: the run folder (created if needed).
      config_dict: the resolved configuration, written as ``config.toml`` (``None``: keep the
        folder's ``config.toml`` if any).
      csv: also write the tables as CSV.
      info: extra facts shown in the summary and report (``data``, ``command``, ...), kept in
        ``result.json``.
      sample_size: a sample-size study (``train_size``, ``loss`` [, ``model``] per instance):
        saved as ``sample_size.parquet`` and plotted.
      figures: write the PNG figures (and embed them in the report).

    Returns:
      The folder.

    Example:
      >>> import numpy as np, tempfile, jrobust
      >>> ev = lambda m, i: 1.0 + 0.1 * (m + 1) * np.sin(13.0 * i + m)
      >>> r = jrobust.race(4, evaluator=ev, warmup=3)
      >>> folder = save_run(r, tempfile.mkdtemp())
      >>> load_run(folder).winner_id == r.winner_id
      True
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if config_dict is not None:
        write_config(folder, config_dict)
    for name in TABLES:
        _write_table(getattr(result, name), folder, name, csv)
    if sample_size is not None:
        _write_table(sample_size, folder, SAMPLE_SIZE_TABLE, csv)
    from jrobust import __version__

    info = {"created": _dt.datetime.now().isoformat(timespec="seconds"), **dict(info or {})}
    payload = {
        "format": FORMAT_VERSION,
        "jrobust_version": __version__,
        "winner_id": int(result.winner_id),
        "winner_name": str(result.models.set_index("model_id").name.get(result.winner_id, "")),
        "winner_config": repr(result.winner) if result.winner is not None else None,
        "winners": [int(w) for w in result.winners],
        "n_trainings": int(result.n_trainings),
        "timing": _jsonable(result.timing),
        "settings": _jsonable(result.settings),
        "info": _jsonable(info),
    }
    _atomic_text(folder / RESULT_FILE, json.dumps(payload, indent=2) + "\n")
    written = write_figures(result, folder, sample_size) if figures else {}
    write_summary(result, folder, info)
    write_report(result, folder, info, figures=written if figures else {})
    return folder


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if np.isfinite(value) else str(float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return repr(value)


def _configs_from(config: Mapping[str, Any] | None, n_models: int):
    if not config or not config.get("space"):
        return None
    from jrobust.spaces import build_space

    try:
        space = build_space(config["space"])
    except (ValueError, TypeError):
        return None
    return space.models if len(space) == n_models else None


def _settings_from(config: Mapping[str, Any] | None) -> dict[str, Any]:
    race = dict((config or {}).get("race", {}))
    race = {k: (None if v == "none" else v) for k, v in race.items()}
    race.setdefault("statistic", "std")
    race["rank_by"] = race.get("rank_by") or race["statistic"]
    return race


def load_run(folder: str | os.PathLike) -> SelectionResult:
    """Read a run folder back into a ``SelectionResult``.

    A finished run is read from its tables and ``result.json``; a run killed before it finished
    is rebuilt from its checkpoint (then ``result.timing["finished"]`` is False).
    ``winner``/``configs`` are rebuilt from ``config.toml`` when it holds the space.

    Raises:
      FileNotFoundError: when the folder holds no run.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {folder}")
    config = read_config(folder)
    if (folder / RESULT_FILE).is_file() and all(
        (folder / f"{t}.parquet").is_file() for t in TABLES
    ):
        payload = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
        tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in TABLES}
        history = tables["history"]
        if "eliminated" in history:
            history["eliminated"] = [
                list(map(int, e)) if e is not None else [] for e in history["eliminated"]
            ]
        configs = _configs_from(config, len(tables["models"]))
        settings = dict(payload["settings"])
        winner_id = int(payload["winner_id"])
        return SelectionResult(
            winner=configs[winner_id] if configs else None,
            winner_id=winner_id,
            winners=[int(w) for w in payload["winners"]],
            ledger=tables["ledger"],
            history=history,
            path=tables["path"],
            models=tables["models"],
            n_trainings=int(payload["n_trainings"]),
            timing=dict(payload["timing"]),
            settings=settings,
            configs=configs,
        )
    if (folder / CHECKPOINT_FILE).is_file():
        return _from_checkpoint(folder, config)
    raise FileNotFoundError(
        f"{folder} holds no jrobust results (no {RESULT_FILE} and tables, no {CHECKPOINT_FILE})"
    )


def _from_checkpoint(folder: Path, config: Mapping[str, Any] | None) -> SelectionResult:
    from jrobust.select import _best
    from jrobust.stats import get_statistic

    if not config or not config.get("race"):
        raise FileNotFoundError(
            f"{folder} holds a checkpoint but no {CONFIG_FILE} with its [race] settings"
        )
    try:
        with open(folder / CHECKPOINT_FILE, "rb") as fh:
            state = pickle.load(fh)["state"]
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint gets one message
        raise ValueError(f"cannot read {folder / CHECKPOINT_FILE}: {err}") from None
    settings = _settings_from(config)
    stat, rank = get_statistic(settings["statistic"]), get_statistic(settings["rank_by"])
    alive = np.asarray(state["alive"], bool)
    n_winners = int(settings.get("n_winners", 1) or 1)
    winners = _best(
        stat,
        rank,
        np.asarray(state["losses"]),
        np.asarray(state["mask"]),
        alive,
        min(n_winners, int(alive.sum())),
    )
    ledger = pd.DataFrame(state["records"])
    if len(ledger):
        ledger = ledger.sort_values(["model_id", "instance"], kind="stable").reset_index(drop=True)
    n_models = len(alive)
    configs = _configs_from(config, n_models)
    if configs is not None:
        from jrobust.spaces import build_space

        models = build_space(config["space"]).to_frame()
    else:
        models = pd.DataFrame(
            {"model_id": range(n_models), "name": [f"model{i}" for i in range(n_models)]}
        )
    return SelectionResult(
        winner=configs[int(winners[0])] if configs else None,
        winner_id=int(winners[0]),
        winners=[int(w) for w in winners],
        ledger=ledger,
        history=pd.DataFrame(state["history"]),
        path=pd.DataFrame(state["path"]),
        models=models,
        n_trainings=int(state["n_trainings"]),
        timing=dict(
            compile_seconds=state["compile_seconds"],
            train_seconds=state["train_seconds"],
            wall_seconds=state["compile_seconds"] + state["train_seconds"],
            stop_reason=state.get("stop_reason", ""),
            finished=bool(state.get("done")),
        ),
        settings=settings,
        configs=configs,
    )
