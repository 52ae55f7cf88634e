"""What the command prints: rich on a terminal, plain lines, the final line only, or JSON; the
live progress of a race; the winners table."""

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

from jrobust.runfolder.summary import statistic_label

__all__ = ["Output", "RaceProgress", "duration", "final_line", "json_summary", "print_table"]


class Output:
    """Where messages go: rich on a terminal, plain lines, the final line only, or JSON only."""

    def __init__(self, args: argparse.Namespace, main_process: bool = True) -> None:
        self.console = Console(file=sys.stdout, highlight=False)
        self.main = main_process
        if not main_process:
            self.mode = "silent"
        elif getattr(args, "json", False):
            self.mode = "json"
        elif getattr(args, "quiet", False):
            self.mode = "quiet"
        elif self.console.is_terminal:
            self.mode = "rich"
        elif getattr(args, "verbose", False):
            self.mode = "plain"
        else:
            self.mode = "quiet"

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
    """The race's progress callback: a live rich bar, plain lines, or nothing."""

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

    def __enter__(self) -> RaceProgress:
        if self.out.mode == "rich":
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.completed}/{task.total} instances"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=self.out.console,
                transient=True,
            )
            self.progress.__enter__()
            first = "resuming" if self.start_round else "round 1 (warm-up): compiling and training"
            total = None if self.start_round else self.total  # unknown until a round is done
            self.task = self.progress.add_task(first, total=total, completed=0, rate="", eta="")
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

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
        eta_text = "" if info["done"] else f"ETA {'~' if exact else '<'}{duration(eta)}"
        where = (
            " (final race)"
            if info.get("stage") == "final"
            else f" (n={info['train_size']})"
            if self.race.get("fidelity") and info.get("train_size")
            else ""
        )
        line = (
            f"round {info['round']}{where}: {info['survivors'] + info['eliminated']} -> "
            f"{info['survivors']} models, "
            f"trained {info['trained']} instances in {duration(info['seconds'])}"
            + (
                f" (+{duration(info['compile_seconds'])} compiling)"
                if info["compile_seconds"] > 0.05
                else ""
            )
            + f", {info['n_trainings']} in all, {rate:.0f} instance-steps/s"
        )
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
            done = int(info["n_trainings"]) - self.start_trainings
            self.progress.update(
                self.task,
                completed=done,
                total=done + remaining,
                rate=f"{rate:.0f} inst-steps/s",
                eta=eta_text,
                description=f"round {info['round'] + 1}: "
                f"{info['survivors']}/{self.n_models} models racing",
            )
        elif self.out.mode == "plain":
            print(line + (f", {eta_text}" if eta_text else ""), flush=True)


def _row_facts(row, stat: str) -> str:
    return (
        f"{stat} {row[stat]:.4g} (mean {row['mean']:.4g}, std {row['std']:.4g}, "
        f"PD {row['pd']:.4g}, "
        f"{int(row['instances'])} instances)"
    )


def final_line(result, table, folder: Path, wall: float) -> str:
    stat = statistic_label(result.settings["statistic"], result.over)
    row = table.iloc[0]
    return (
        f"winner: model {result.winner_id} '{row['name']}': {_row_facts(row, stat)}; "
        f"{result.n_trainings} trainings in {duration(wall)}; run folder: {folder}"
    )


def print_table(out: Output, table, stat: str, result) -> None:
    winners = set(result.winners)
    if out.mode == "rich":
        t = Table(
            title="winner and runners-up",
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        t.add_column("#", justify="right", no_wrap=True, min_width=2)
        t.add_column("model", justify="right", no_wrap=True, min_width=5)
        t.add_column("name", overflow="fold", min_width=12)
        for col in (stat, "mean", "std", "PD", "n"):
            t.add_column(col, justify="right", no_wrap=True)
        for _, r in table.iterrows():
            winner = int(r.model_id) in winners
            t.add_row(
                str(r["rank"]),
                str(r.model_id),
                str(r["name"]),
                f"{r[stat]:.4g}",
                f"{r['mean']:.4g}",
                f"{r['std']:.3g}",
                f"{r['pd']:.3g}",
                str(int(r.instances)),
                style="bold red" if winner else None if r.alive else "dim",
            )
        out.console.print(t)
    else:
        view = table[["rank", "model_id", "name", stat, "mean", "std", "pd", "instances", "alive"]]
        text = view.to_string(index=False, float_format=lambda v: f"{v:.4g}")
        print("winner and runners-up:\n" + text, flush=True)


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
