"""What the command prints: rich on a terminal, plain lines, the final line only, or JSON; the
live progress of a race; the winners table. ``jrobust.race(..., progress=True)`` shows the same
display from Python (``race_display``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from jrobust._src.runfolder.summary import column_labels, metric_label, statistic_label

__all__ = [
    "Output",
    "RaceProgress",
    "describe_population",
    "duration",
    "final_line",
    "finish",
    "interactive",
    "json_summary",
    "print_table",
    "race_display",
    "round_line",
]


def interactive() -> bool:
    """Whether standard output is a terminal or a notebook (where a live display belongs)."""
    console = Console(file=sys.stdout)
    return bool(console.is_terminal or console.is_jupyter)


class Output:
    """Where messages go: rich on a terminal, plain lines (a pipe, a log file: a header, one
    line per round and the results, each flushed), the final line only, or JSON only."""

    def __init__(
        self,
        args: argparse.Namespace | None = None,
        main_process: bool = True,
        mode: str | None = None,
    ) -> None:
        self.console = Console(file=sys.stdout, highlight=False)
        self.main = main_process
        if not main_process:
            self.mode = "silent"
        elif mode is not None:
            self.mode = mode
        elif getattr(args, "json", False):
            self.mode = "json"
        elif getattr(args, "quiet", False):
            self.mode = "quiet"
        elif self.console.is_terminal or self.console.is_jupyter:
            self.mode = "rich"
        else:
            self.mode = "plain"

    @property
    def chatty(self) -> bool:
        return self.mode in ("rich", "plain")

    def info(self, text: str) -> None:
        if self.mode == "rich":
            self.console.print(text)
        elif self.mode == "plain":
            print(_strip_markup(text), flush=True)

    def final(self, text: str) -> None:
        if self.mode == "rich":
            self.console.print(text, markup=False)
        elif self.mode in ("plain", "quiet"):
            print(text, flush=True)

    def json(self, payload: Any) -> None:
        if self.mode == "json":
            print(json.dumps(payload, indent=2, default=str), flush=True)

    def status(self, text: str):
        """A spinner while something slow runs (on a terminal only)."""
        if self.mode == "rich":
            return self.console.status(text)
        return contextlib.nullcontext()


def _strip_markup(text: str) -> str:
    return re.sub(r"\[/?[a-z #0-9_.]*\]", "", text)


def duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def _forecast(alive: int, count: int, n_models: int, race: dict[str, Any]) -> tuple[int, bool]:
    """Trainings still to come (and whether that is exact for the rule or an upper bound)."""
    warmup, cap = int(race["warmup"]), int(race["max_instances"])
    ipr, n_winners = race.get("instances_per_round", "auto"), int(race.get("n_winners", 1))
    rule = str(race.get("rule", "halving"))
    name, _, value = rule.partition(":")
    exact = name in ("halving", "quantile")
    total = 0
    while alive > n_winners:
        per = warmup if count == 0 else (max(1, n_models // alive) if ipr == "auto" else int(ipr))
        new = min(count + per, cap)
        if new <= count:
            break
        total += alive * (new - count)
        count = new
        if count > warmup:
            if name == "halving":
                alive = -(-alive // 2)
            elif name == "quantile":
                alive = max(1, math.ceil(alive * float(value or 0.5)))
    return total, exact


class RaceProgress:
    """The race's progress callback: a live rich bar, plain lines, or nothing.

    Called after every round with the race's round facts (one line per round); its ``event``
    method gets the engine's steps inside a round (``jrobust._src.engine.Engine``'s ``events``), so
    the live bar says "compiling program 1 of 2", then how many stacks have trained.
    """

    def __init__(
        self,
        out: Output,
        n_models: int,
        race: dict[str, Any],
        start_round: int = 0,
        start_trainings: int = 0,
    ) -> None:
        self.out = out
        self.n_models = n_models
        self.race = race
        self.train_seconds = 0.0
        self.trained = 0
        self.steps = 0
        self.t0 = time.perf_counter()
        self.progress = None
        self.task = None
        remaining, self.exact = _forecast(n_models, 0, n_models, race)
        self.total = min(remaining, int(race["budget"])) if race.get("budget") else remaining
        self.start_round = start_round
        self.start_trainings = start_trainings
        self.round = start_round + 1  # the round being trained
        self.done_so_far = 0  # trainings of this session before the current round
        self.closed = False

    def __enter__(self) -> RaceProgress:
        if self.out.mode == "rich":
            self.progress = Progress(  # narrow enough for a terminal of 100 columns
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=12),
                TextColumn("{task.completed}/{task.total} instances"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=self.out.console,
                transient=True,
            )
            self.progress.__enter__()
            first = "resuming" if self.start_round else "round 1 (warm-up): preparing"
            total = None if self.start_round else self.total  # unknown until a round is done
            self.task = self.progress.add_task(first, total=total, completed=0, rate="", eta="")
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
        self.closed = True

    def _name(self) -> str:
        return f"round {self.round}" + (" (warm-up)" if self.round == 1 else "")

    def event(self, info: dict[str, Any]) -> None:
        """A step inside a round: a program about to launch (compiling or not), a stack done."""
        if self.progress is None or self.closed:
            return
        if info.get("event") == "program":
            what = (
                f"compiling program {info['program']} of {info['programs']}"
                if info.get("compiling")
                else f"training program {info['program']} of {info['programs']}"
            )
            self.progress.update(self.task, description=f"{self._name()}: {what}")
        elif info.get("event") == "trained":
            self.progress.update(
                self.task,
                description=f"{self._name()}: {info['stacks']} of {info['of']} stacks trained",
                completed=self.done_so_far + int(info["instances"]),
            )

    def __call__(self, info: dict[str, Any]) -> None:
        self.train_seconds += float(info["seconds"])
        self.trained += int(info["trained"])
        self.steps += int(info.get("instance_steps", 0))
        rate = self.steps / self.train_seconds if self.train_seconds > 0 else 0.0
        remaining, exact = (
            (0, True)
            if info["done"]
            else _forecast(
                int(info["survivors"]), int(info["instances_per_model"]), self.n_models, self.race
            )
        )
        if self.race.get("budget"):
            remaining = max(0, min(remaining, int(self.race["budget"]) - int(info["n_trainings"])))
        per_training = self.train_seconds / max(self.trained, 1)
        eta = remaining * per_training
        eta_text = (
            "" if info["done"] or not remaining else f"ETA {'~' if exact else '<'}{duration(eta)}"
        )
        line = round_line(info, self.race, rate)
        self.round = int(info["round"]) + 1
        self.done_so_far = int(info["n_trainings"]) - self.start_trainings
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
            self.progress.update(
                self.task,
                completed=self.done_so_far,
                total=self.done_so_far + remaining,
                rate=f"{rate:.0f} steps/s",
                eta=eta_text,
                description=f"{self._name()}: {info['survivors']}/{self.n_models} models racing",
            )
        elif self.out.mode == "plain":
            print(line + (f", {eta_text}" if eta_text else ""), flush=True)


def round_line(info: dict[str, Any], race: dict[str, Any], rate: float) -> str:
    """One finished round in a line: models in and out, instances, seconds, the rate.

    Compiling runs partly alongside training (the next program compiles while one trains), so
    its seconds are said beside the training's, not added to them.
    """
    where = (
        " (final race)"
        if info.get("stage_kind", info.get("stage")) == "final"
        else f" (n={info['train_size']})"
        if race.get("fidelity") and info.get("train_size")
        else " (warm-up)"
        if int(info["round"]) == 1
        else ""
    )
    compiling = (
        f", compiling {duration(info['compile_seconds'])} alongside"
        if info["compile_seconds"] > 0.05
        else ""
    )
    return (
        f"round {info['round']}{where}: {info['survivors'] + info['eliminated']} -> "
        f"{info['survivors']} models, trained {info['trained']} instances in "
        f"{duration(info['seconds'])}{compiling}, {info['n_trainings']} in all, "
        f"{rate:.0f} instance-steps/s"
    )


def _row_facts(row, stat: str, metric: str = "") -> str:
    return (
        f"{stat}{' ' + metric if metric else ''} {row[stat]:.4g} (mean {row['mean']:.4g}, "
        f"std {row['std']:.4g}, "
        f"PD {row['pd']:.4g}, "
        f"{int(row['instances'])} instances)"
    )


def final_line(result, table, folder: Path | None, wall: float) -> str:
    """The last line: the winner and its numbers, the trainings and time, and (for a run
    folder) the report to open."""
    stat = statistic_label(result.settings["statistic"], result.over)
    metric = metric_label(result)[0]
    row = table.iloc[0]
    where = f"; report: {Path(folder) / 'report.html'}" if folder is not None else ""
    return (
        f"winner: model {result.winner_id} '{row['name']}': {_row_facts(row, stat, metric)}; "
        f"{result.n_trainings} trainings in {duration(wall)}{where}"
    )


def print_table(out: Output, table, stat: str, result) -> None:
    """The winner and runners-up: survivors first, then the eliminated by the round they left;
    the headers name the metric, ↓ lower is better."""
    import pandas as pd

    from jrobust._src.result import ELIMINATED

    winners = set(result.winners)
    labels = column_labels(result, table)
    cols = [stat, "mean", "std", "pd"]
    if out.mode == "rich":
        t = Table(
            title=f"winner and runners-up ({metric_label(result)[1]}; ↓ lower is better)",
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        t.add_column("#", justify="right", no_wrap=True, min_width=2)
        t.add_column("model", justify="right", no_wrap=True, min_width=5)
        t.add_column("name", overflow="fold", min_width=12)
        for col in cols:  # "max rmse ↓" on two lines: the table fits 80 columns
            t.add_column(labels.get(col, col).replace(" ", "\n", 1), justify="right", no_wrap=True)
        t.add_column("n", justify="right", no_wrap=True)
        t.add_column(ELIMINATED.replace(" ", "\n", 1), justify="right", no_wrap=True)
        for _, r in table.iterrows():
            winner = int(r.model_id) in winners
            left = r.get(ELIMINATED)
            t.add_row(
                str(r["rank"]),
                str(r.model_id),
                str(r["name"]),
                f"{r[stat]:.4g}",
                f"{r['mean']:.4g}",
                f"{r['std']:.3g}",
                f"{r['pd']:.3g}",
                str(int(r.instances)),
                "-" if left is None or pd.isna(left) else str(int(left)),
                style="bold red" if winner else None if r.alive else "dim",
            )
        out.console.print(t)
    else:
        view = table[["rank", "model_id", "name", *cols, "instances", "alive", ELIMINATED]]
        left = view[ELIMINATED]
        view = view.assign(**{ELIMINATED: left.astype(object).where(left.notna(), "-")})
        view = view.rename(columns=labels)
        text = view.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
        legend = f"({metric_label(result)[1]}; ↓ lower is better)"
        print(f"winner and runners-up {legend}:\n" + text, flush=True)


def describe_population(pop) -> str:
    """The data in a line: name, events, input shape, classes or targets, pool and test sizes,
    transformed test sets."""
    kind = (
        f"{pop.num_classes} classes"
        if pop.is_classification
        else f"targets {', '.join(pop.target_names)}"
    )
    shape = "x".join(str(s) for s in pop.input_shape)
    text = (
        f"{pop.name}: {pop.n_events} events, inputs {shape}, {kind}, "
        f"pool {pop.pool_size}, test {len(pop.test_index)}"
    )
    grid = pop.transforms
    if grid is not None:
        sets = "; ".join(
            f"{n} {', '.join(f'{p:g}' for p in ps)}"
            for n, ps in zip(grid.names, grid.params, strict=True)
        )
        text += f"; transformed test sets: {sets}"
    return text


def race_display(
    n_models: int, n_cohorts: int, population, settings, interactive_only: bool = False
) -> RaceProgress:
    """The command line's display for ``jrobust.race(..., progress=True)``: a header, a live
    bar (terminal, notebook) or one plain line per round, and the final line when the race
    ends (``RaceProgress.finish``)."""
    out = Output(mode="rich" if interactive() else "plain")
    described = settings.describe()
    what = describe_population(population) if population is not None else "your evaluator"
    out.info(f"[bold]jrobust race[/bold]: {n_models} models in {n_cohorts} cohorts on {what}")
    out.info(
        f"rule {described['rule']} on {described['statistic']}, warm-up {settings.warmup}, at "
        f"most {settings.max_instances} instances, seed {settings.seed}"
    )
    return RaceProgress(out, n_models, settings.to_table() if _tableable(settings) else described)


def _tableable(settings) -> bool:
    try:
        settings.to_table()
    except TypeError:  # a statistic or rule given as a Python object
        return False
    return True


def finish(display: RaceProgress, result, wall: float) -> None:
    """The final line of ``race_display``."""
    from jrobust._src.runfolder.summary import summary_table

    if not len(result.ledger):
        return
    display.out.final(final_line(result, summary_table(result, top=1), None, wall))


def json_summary(result, table, folder: Path, wall: float) -> dict[str, Any]:
    stat = statistic_label(result.settings["statistic"], result.over)

    def record(r) -> dict[str, Any]:
        return {
            "model_id": int(r.model_id),
            "name": str(r["name"]),
            "statistic": float(r[stat]),
            "mean": float(r["mean"]),
            "std": float(r["std"]),
            "pd": float(r["pd"]),
            "instances": int(r.instances),
            "alive": bool(r.alive),
        }

    rows = [record(r) for _, r in table.iterrows()]
    return {
        "run_folder": str(folder),
        "winner": rows[0],
        "winners": [int(w) for w in result.winners],
        "runners_up": rows[1:],
        "statistic": stat,
        "rank_by": result.settings["rank_by"],
        "rule": result.settings["rule"],
        "n_models": len(result.models),
        "n_trainings": int(result.n_trainings),
        "rounds": len(result.history),
        "seconds": wall,
        "compile_seconds": float(result.timing.get("compile_seconds", 0.0)),
        "stop_reason": result.timing.get("stop_reason"),
        "settings": result.settings,
    }
