"""The figures of a run and its self-contained HTML report (``report.html``)."""

from __future__ import annotations

import base64
import dataclasses
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from jrobust._src.atomic import write_text_atomic
from jrobust._src.result import SelectionResult
from jrobust._src.runfolder.layout import CONFIG_FILE, FIGURE_MODELS, FIGURES, SAMPLE_SIZE_TABLE
from jrobust._src.runfolder.summary import (
    ITERATIONS_LEGEND,
    column_labels,
    duration,
    facts,
    fmt,
    history_view,
    iterations_view,
    legend,
    programs_line,
    programs_view,
    race_features,
    stages_view,
    summary_table,
    swap_lines,
    transforms_view,
)

__all__ = ["write_figures", "write_report"]


def write_figures(
    result: SelectionResult, folder: str | os.PathLike, sample_size: pd.DataFrame | None = None
) -> dict[str, Path]:
    """Write the PNG figures of a run; returns ``{name: path}`` of those written."""
    # matplotlib is imported here, not at the top: ``import jrobust`` stays free of plotting.
    from jrobust._src import plots

    folder = Path(folder)
    out: dict[str, Path] = {}
    if len(result.path):
        plots.plot_path(result, path=folder / FIGURES["path"])
        out["path"] = folder / FIGURES["path"]
    if result.iterations is not None and len(result.iterations):
        plots.plot_iterations(result, path=folder / FIGURES["iterations"])
        out["iterations"] = folder / FIGURES["iterations"]
    if len(result.ledger):
        top = FIGURE_MODELS["distributions"]
        plots.plot_distributions(result, top=top, path=folder / FIGURES["distributions"])
        out["distributions"] = folder / FIGURES["distributions"]
    if "transform" in result.ledger.columns and len(result.ledger):
        top = FIGURE_MODELS["transforms"]
        plots.plot_transforms(result, top=top, path=folder / FIGURES["transforms"])
        out["transforms"] = folder / FIGURES["transforms"]
    if sample_size is None and (folder / f"{SAMPLE_SIZE_TABLE}.parquet").is_file():
        sample_size = pd.read_parquet(folder / f"{SAMPLE_SIZE_TABLE}.parquet")
    if sample_size is not None and len(sample_size):
        plots.plot_sample_size(sample_size, path=folder / FIGURES["sample_size"])
        out["sample_size"] = folder / FIGURES["sample_size"]
    return out


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
.legend{font-size:13px;color:#5b6472;margin:4px 0 8px}
.vs{width:auto;min-width:60%} .vs td:first-child,.vs th:first-child{text-align:left}
th{white-space:normal;vertical-align:bottom} th.group{text-align:center;border-bottom:1px solid #c9ced6}
thead tr:nth-child(2) th{top:27px}
details{margin:14px 0} summary{cursor:pointer;font-size:16px;font-weight:600;padding:4px 0}
dl.glossary{grid-template-columns:max-content auto} dl.glossary dd{font-family:inherit}
"""

_CAPTIONS = {
    "path": "Elimination path: the statistic of every model after every round; "
    "eliminated models end "
    "with ×, the winner is red, the last survivors blue (the paper's model-path figures).",
    "iterations": "Search iterations: the values of every parameter sampled in each iteration "
    "(grey), the elites kept after it (circled), the sampling model's centre (line); the winner "
    "is red.",
    "distributions": "Instance-loss distributions of the best models "
    "(each dot is one instance: a new "
    "initialisation and a new training sample).",
    "transforms": "Loss on the transformed test sets: the median over each model's instances "
    "against the transformation's parameter, with the 10-90 % band; the winner is red.",
    "sample_size": "Robustness against the training-sample size: median and quantile bands of the "
    "instance losses.",
}


def _html_table(
    frame: pd.DataFrame,
    winners: set[int] = frozenset(),
    alive: set[int] = frozenset(),
    left: tuple[str, ...] = ("name",),
    labels: Mapping[str, str] | None = None,
    group: tuple[str, str] | None = None,
) -> str:
    """An HTML table of ``frame``: ``labels`` are the headers a reader sees; ``group`` =
    ``(suffix, title)`` puts the columns whose label ends with ``suffix`` under one spanning
    header ``title`` (their own header keeps the rest of the label): a narrow table whose loss
    columns all name the metric."""
    esc = html.escape
    labels = labels or {}

    def cls(c) -> str:
        return "l" if c in left else ""

    grouped = [bool(group) and str(labels.get(c, "")).endswith(group[0]) for c in frame.columns]
    if any(grouped):
        top, below, k = [], [], 0
        columns = list(frame.columns)
        while k < len(columns):
            c = columns[k]
            if not grouped[k]:
                top.append(f'<th rowspan="2" class="{cls(c)}">{esc(str(labels.get(c, c)))}</th>')
                k += 1
                continue
            run = k
            while run < len(columns) and grouped[run]:
                below.append(f"<th>{esc(str(labels[columns[run]])[: -len(group[0])])}</th>")
                run += 1
            top.append(f'<th colspan="{run - k}" class="group">{esc(group[1])}</th>')
            k = run
        head = f"{''.join(top)}</tr><tr>{''.join(below)}"
    else:
        head = "".join(
            f'<th class="{cls(c)}">{esc(str(labels.get(c, c)))}</th>' for c in frame.columns
        )
    rows = []
    for _, row in frame.iterrows():
        m = row.get("model_id")
        cls = "win" if m in winners else "alive" if m in alive else ""
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html.escape(fmt(row[c]))}</td>'
            for c in frame.columns
        )
        rows.append(f'<tr class="{cls}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _kpis(items) -> str:
    esc = html.escape
    return "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in items)


def _dl(rows: Mapping[str, Any], show=fmt) -> str:
    esc = html.escape
    return "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(show(v))}</dd>" for k, v in rows.items())


def _head(folder: Path, f: Mapping[str, Any], s: Mapping[str, Any]) -> list[str]:
    """The page's head, title line and warnings."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>jrobust run {esc(folder.name)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>jrobust run <code>{esc(folder.name)}</code></h1>",
        f'<div class="sub">data: {esc(str(f.get("data", "?")))} &middot; {f["n_models"]} models'
        + (f" in {f['n_cohorts']} cohorts" if f["n_cohorts"] else "")
        + f" &middot; rule <code>{esc(f['rule_text'])}</code> "
        + f"on <code>{esc(str(s.get('statistic')))}</code>"
        + f" &middot; warm-up {esc(str(s.get('warmup')))} &middot; seed {esc(str(s.get('seed')))}"
        + (f" &middot; {esc(f['created'])}" if f.get("created") else "")
        + "</div>",
    ]
    if f["all_failed"]:
        parts.append(
            '<p class="warn"><b>Every instance failed</b> (non-finite losses): the race has no '
            "meaningful winner; check the learning rates and the data.</p>"
        )
    if f["dominance"]:
        parts.append(f'<p class="warn"><b>Dominance</b>: {esc(f["dominance"])}.</p>')
    parts += [f'<p class="warn"><b>Dominance</b>: {esc(n)}.</p>' for n in swap_lines(f["swaps"])]
    features = race_features(s)
    if features:
        parts.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in features) + "</ul>")
    if not f["finished"]:
        parts.append(
            f'<p class="warn"><b>Unfinished run</b>: the state after round {f["rounds"]}. '
            f"Continue it with <code>jrobust run --resume {esc(str(folder))}</code>.</p>"
        )
    return parts


def _cards(f: Mapping[str, Any]) -> list[str]:
    """The winner's card (with the runner-up and any note on the grid) and the run's card."""
    esc = html.escape
    m = f["metric"]
    winner = [
        (f"{f['statistic']} {m} ↓", fmt(f["statistic_value"])),
        (f"mean {m} ↓", fmt(f["mean"])),
        (f"std {m} ↓", fmt(f["std"])),
        (f"PD (Q90-Q10) {m} ↓", fmt(f["pd"])),
        ("instances", str(f["instances"])),
    ]
    run = [
        ("models", str(f["n_models"])),
        ("trainings", str(f["n_trainings"])),
        ("rounds", str(f["rounds"])),
        ("wall time", duration(f["wall_seconds"])),
        ("compiling (overlaps training)", duration(f["compile_seconds"])),
    ]
    if f["exhaustive"]:
        run.append(("fewer than exhaustive", f"{f['exhaustive'] / max(f['n_trainings'], 1):.1f}x"))
    if f["rate"]:
        run.append(("instance-steps/s", f"{f['rate']:.0f}"))
    parts = [
        '<div class="card winner"><div>Winner</div>',
        f'<div class="name">model {f["winner_id"]}: {esc(f["winner_name"])}</div>',
        f'<div class="kpis">{_kpis(winner)}</div>',
        f'<p class="legend">{esc(f["metric_words"][0].upper() + f["metric_words"][1:])}; '
        "↓ lower is better.</p>",
        *(f'<p class="warn"><b>Edge of the grid</b>: {esc(note)}.</p>' for note in f["edges"]),
    ]
    if f["runner_up"]:
        parts.append(_versus(f["runner_up"], f["winner_id"], m))
    parts += [
        "</div>",
        f'<div class="card"><div class="kpis">{_kpis(run)}</div>'
        '<p style="font-size:13px;color:#5b6472;margin:10px 0 0">'
        f"stopped: {esc(str(f['stop_reason']))}</p></div>",
    ]
    return parts


def _versus(c: Mapping[str, Any], winner_id: int, metric: str) -> str:
    """The winner against the runner-up: a small table of the statistic and the mean."""
    esc = html.escape

    def signed(v: float) -> str:
        return (
            f"{v:+.3g}" if pd.notna(v) and abs(v) != float("inf") else ("+inf" if v > 0 else "-inf")
        )

    rows = []
    for label, key in ((f"{c['label']} {metric} ↓", "statistic"), (f"mean {metric} ↓", "mean")):
        w, r, d, lo, hi = c[key]
        rows.append(
            f"<tr><td>{esc(label)}</td><td>{esc(fmt(w))}</td><td>{esc(fmt(r))}</td>"
            f"<td>{esc(signed(d))}</td><td>{esc(signed(lo))} to {esc(signed(hi))}</td></tr>"
        )
    over = (
        f"paired over the {c['n']} instances both trained"
        if c["paired"]
        else f"unpaired: no instances in common ({c['n'][0]} and {c['n'][1]} of their own)"
    )
    return (
        f'<h3 style="font-size:15px;margin:14px 0 6px">Against the runner-up, model '
        f"{c['runner_up']}: {esc(c['name'])}</h3>"
        '<table class="vs"><thead><tr><th></th>'
        f"<th>winner (model {winner_id})</th><th>runner-up (model {c['runner_up']})</th>"
        "<th>difference</th><th>95 % bootstrap interval</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p class="legend">Difference: runner-up minus winner (positive: the winner is '
        f"better); the interval resamples instances, {esc(over)}.</p>"
    )


#: The words of the report, in a few lines each.
_GLOSSARY = {
    "instance": "one training of a model: its own initial weights and its own training sample "
    "drawn from the population. Instance i of every model trains on the same sample, so models "
    "are compared on common random numbers.",
    "statistic": "one number from a model's instance losses that the race eliminates on (e.g. "
    "max: the worst instance, which punishes a poor level and a wide spread at once). Lower is "
    "better.",
    "PD": "Q90 - Q10, the spread between the 90th and the 10th percentile of a model's instance "
    "losses: small means robust.",
    "round": "every survivor trains new instances, then the rule removes models; "
    "'eliminated in round' says when a model left.",
}


def _glossary() -> str:
    esc = html.escape
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _GLOSSARY.items())
    return f'<div class="card"><dl class="glossary">{items}</dl></div>'


def _caption(name: str, f: Mapping[str, Any], result: SelectionResult) -> str:
    """A figure's caption, saying how many of the models it shows when it shows some."""
    caption = _CAPTIONS[name]
    n = f["n_models"]
    shown = {
        "path": len(set(result.path.model_id)) if len(result.path) else n,
        "distributions": min(FIGURE_MODELS["distributions"], n),
        "transforms": min(FIGURE_MODELS["transforms"], n),
    }.get(name)
    if shown is not None and shown < n:
        caption += f" {shown} of {n} models shown (the first {shown} of the models table)."
    elif shown is not None:
        caption += f" All {n} models shown."
    return caption


def _figure_parts(
    result: SelectionResult, f: Mapping[str, Any], figures: Mapping[str, str | os.PathLike]
) -> list[str]:
    """The figures present, inline, each with its caption, in the report's order."""
    parts = []
    for name in ("path", "iterations", "distributions", "transforms", "sample_size"):
        if name in figures and Path(figures[name]).is_file():
            caption = html.escape(_caption(name, f, result))
            parts.append(
                f"<figure>{_img(Path(figures[name]))}<figcaption>{caption}</figcaption></figure>"
            )
    return parts


def _table_parts(result: SelectionResult, f: Mapping[str, Any], top: int) -> list[str]:
    """The tables: models (winners marked), words, stages, transforms, iterations, rounds."""
    last = result.path["round"].max() if len(result.path) else None
    final = result.path[(result.path["round"] == last) & result.path["alive"]] if last else None
    alive = set(final.model_id) if final is not None else set()
    esc = html.escape
    table = summary_table(result, top=top)
    labels = column_labels(result, table)
    transforms = transforms_view(result)
    rounds = _html_table(history_view(result)) if len(result.history) else None
    return [
        f"<h2>Models, best first ({min(top, f['n_models'])} of {f['n_models']})</h2>",
        f'<p class="legend">{esc(legend(result))}</p>',
        '<div class="scroll">'
        + _html_table(
            table,
            set(result.winners),
            alive,
            labels=labels,
            group=(f" {f['metric']} ↓", f"{f['metric']} of the instances, ↓ lower is better"),
        )
        + "</div>",
        "<h2>Words</h2>",
        _glossary(),
        *(
            [
                "<h2>Stages</h2>",
                "<p>Every stage races on fresh instances; its rules and statistics see only its "
                "own.</p>",
                f'<div class="scroll">{_html_table(stages_view(result), left=("kind", "end"))}</div>',
            ]
            if len(result.stages) > 1
            else []
        ),
        *(
            [
                "<h2>Transformed test sets</h2>",
                "<p>The mean loss over each model's instances on every transformed test set.</p>",
                f'<div class="scroll">{_html_table(transforms, set(result.winners), alive)}</div>',
            ]
            if len(transforms)
            else []
        ),
        *(
            [
                "<h2>Iterations</h2>",
                f"<p>{esc(ITERATIONS_LEGEND)}</p>",
                f'<div class="scroll">{_html_table(iterations_view(result))}</div>',
            ]
            if result.iterations is not None
            else []
        ),
        "<h2>Rounds</h2>",
        f'<div class="scroll">{rounds}</div>' if rounds else "<p>none</p>",
    ]


def _tail_parts(result: SelectionResult, f: Mapping[str, Any], folder: Path) -> list[str]:
    """The folded details (programs, settings, the winner's configuration) and the rerun."""
    esc = html.escape
    parts = []
    if f["programs"]:
        parts += [
            f"<details><summary>Programs: {esc(programs_line(f['programs']))}</summary>",
            f'<div class="scroll">{_html_table(programs_view(f["programs"]))}</div></details>',
        ]
    parts += [
        "<details><summary>Race settings</summary>",
        f'<div class="card"><dl>{_dl(result.settings)}</dl></div></details>',
    ]
    if result.winner is not None:
        fields = {
            fl.name: getattr(result.winner, fl.name) for fl in dataclasses.fields(result.winner)
        }
        parts += [
            "<details><summary>The winner's configuration (every field)</summary>",
            f'<div class="card"><dl>{_dl(fields, repr)}</dl></div></details>',
        ]
    rerun = [
        f.get("command"),
        f"jrobust run --space {folder / CONFIG_FILE}",
        f"jrobust report {folder}",
    ]
    parts += [
        "<h2>Rerun</h2>",
        "<pre>" + "\n".join(esc(line) for line in rerun if line) + "</pre>",
        "</main></body></html>",
    ]
    return parts


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
    f = facts(result, info)
    if figures is None:
        figures = {k: folder / v for k, v in FIGURES.items() if (folder / v).is_file()}
    parts = [
        *_head(folder, f, result.settings),
        *_cards(f),
        *_figure_parts(result, f, figures),
        *_table_parts(result, f, top),
        *_tail_parts(result, f, folder),
    ]
    return write_text_atomic(folder / "report.html", "\n".join(parts))
