"""Results that explain themselves: the models tables' order and headers, the report's
comparison of the winner with the runner-up, the note on a winner at the edge of the grid, the
glossary, and what a figure that shows some models says."""

import re

import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust import ModelConfig, runfolder
from jrobust._src.result import ELIMINATED
from jrobust._src.runfolder.summary import (
    column_labels,
    edge_notes,
    metric_label,
    runner_up,
    summary_table,
)
from jrobust._src.stats import get_statistic

SPREAD = np.linspace(0.05, 0.6, 16)


def evaluator(models, instances):
    """Model m: level 1 + m / 50 with a spread growing with m, deterministic per instance."""
    models, instances = np.asarray(models), np.asarray(instances)
    return 1.0 + models / 50 + SPREAD[models] * np.sin(7.3 * instances + 1.1 * models)


@pytest.fixture(scope="module")
def raced():
    return jrobust.race(16, evaluator=evaluator, warmup=3, max_instances=8, progress=False)


def test_survivors_first_by_the_statistic_then_the_eliminated_by_the_round_they_left(raced):
    table = summary_table(raced, top=None)
    path = raced.path
    left = path[~path.alive].groupby("model_id")["round"].min()
    last = path[path["round"] == path["round"].max()]
    survivors = set(last[last.alive].model_id)
    assert len(survivors) >= 1 and len(left) == 16 - len(survivors)
    # the column says when each model left; empty for a survivor
    for _, row in table.iterrows():
        if row.model_id in survivors:
            assert pd.isna(row[ELIMINATED]) and row.alive
        else:
            assert row[ELIMINATED] == left[row.model_id] and not row.alive
    # survivors first (the winner leading), ranked by the statistic
    head = table[table.alive]
    assert list(table.model_id[: len(head)]) == list(head.model_id)
    assert head.model_id.iloc[0] == raced.winner_id
    assert head["max"].is_monotonic_increasing
    # then the eliminated: the latest round first, each round's by the statistic (hand-sorted)
    gone = table[~table.alive]
    by_hand = sorted(gone.itertuples(), key=lambda r: (-left[r.model_id], r.max))
    assert list(gone.model_id) == [r.model_id for r in by_hand]
    assert gone[ELIMINATED].is_monotonic_decreasing and len(set(gone[ELIMINATED])) > 1


def test_summary_prints_every_column_and_names_the_winner(raced):
    text = repr(raced.summary(top=None))
    assert "..." not in text and len(text.splitlines()) == 17
    for column in ("name", "statistic (max)", "mean", "std", "pd", "instances", ELIMINATED):
        assert column in text
    assert raced.winner_name == f"model{raced.winner_id}"


def test_headers_name_the_metric_and_lower_is_better(raced, tmp_path):
    table = summary_table(raced, top=None)
    labels = column_labels(raced, table)
    assert labels["max"] == "max loss ↓" and labels["pd"] == "PD loss ↓"
    assert labels[ELIMINATED] == ELIMINATED
    folder = runfolder.save_run(raced, tmp_path / "run", figures=False)
    summary = (folder / "summary.md").read_text()
    assert "| rank | model | name | max loss ↓ | mean loss ↓ |" in summary
    assert "lower is better" in summary and f"| {ELIMINATED} |" in summary
    page = (folder / "report.html").read_text()
    # the loss columns under one header that names the metric, so the table stays narrow
    assert re.search(
        r'<th colspan="6" class="group">loss of the instances, ↓ lower is better', page
    )
    assert "<th>max</th><th>mean</th><th>std</th><th>PD</th>" in page and ELIMINATED in page
    for word in ("instance", "statistic", "PD"):  # the glossary
        assert f"<dt>{word}</dt>" in page


def test_an_accuracy_metric_is_called_the_error():
    class Configs:
        configs = [jrobust.zoo.resnet18_config()]

    short, words = metric_label(Configs)
    assert short == "error" and "error = 1 - accuracy" in words
    Configs.configs = [jrobust.zoo.paper_config(1)]
    assert metric_label(Configs)[0] == "relative_rmse"


def test_runner_up_differences_and_their_paired_interval():
    # model 1 is model 0 plus 0.25 on every instance: the paired interval of the mean difference
    # is exactly [0.25, 0.25]; an unpaired one could not be that narrow
    noise = np.random.default_rng(0).normal(0, 0.2, 64)

    def shifted(models, instances):
        return 1.0 + 0.25 * np.asarray(models) + noise[np.asarray(instances)]

    never = lambda losses, mask, alive, round_index: alive  # noqa: E731
    result = jrobust.race(2, evaluator=shifted, rule=never, warmup=10, max_instances=10)
    c = runner_up(result)
    assert c["winner"] == 0 and c["runner_up"] == 1 and c["paired"] and c["n"] == 10
    w, r, d, lo, hi = c["mean"]
    assert d == pytest.approx(0.25) and lo == pytest.approx(0.25) and hi == pytest.approx(0.25)
    w, r, d, lo, hi = c["statistic"]  # max, the same shift
    assert (w, r) == pytest.approx((1 + noise[:10].max(), 1.25 + noise[:10].max()))
    assert lo <= d <= hi


def test_runner_up_of_the_final_race_is_paired_over_its_fresh_instances():
    def staged(models, instances, sizes):
        return evaluator(models, instances) + 5.0 / np.sqrt(sizes)

    result = jrobust.race(
        8, evaluator=staged, warmup=3, fidelity=[100, 400], n_winners=2, final_instances=4,
        progress=False,
    )  # fmt: skip
    c = runner_up(result)
    assert [c["winner"], c["runner_up"]] == list(summary_table(result, top=2).model_id)
    assert c["paired"] and c["n"] == 4  # the finalists share the final race's instances


def test_unpaired_interval_without_common_instances():
    """Two models that share no instance: each resampled on its own; the 95 % interval of the
    mean difference is about +-1.96 sqrt(2 / n) around it (normal samples, sd 1)."""
    from jrobust._src.runfolder.summary import _unpaired_interval

    rng = np.random.default_rng(1)
    n = 200
    losses = np.full((2, 2 * n), np.nan)
    losses[0, :n] = rng.normal(0.0, 1.0, n)
    losses[1, n:] = rng.normal(1.0, 1.0, n)
    mask = ~np.isnan(losses)
    low, high = _unpaired_interval(losses, mask, "mean", 4000, 0)
    diff = losses[1, n:].mean() - losses[0, :n].mean()
    half = 1.96 * np.sqrt(2 / n)
    assert low < diff < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)


def test_edge_of_the_grid_is_noted():
    space = jrobust.SearchSpace(
        jrobust.zoo.mlp_config(hidden=(4,), optimizer="adamw"),
        learning_rate=[1e-3, 1e-2, 1e-1],
        weight_decay=[0.0, 0.1],
    )
    frame = space.to_frame()
    for winner, expect in ((5, "largest"), (0, "smallest"), (2, None)):

        class Result:
            models = frame
            winner_id = winner

        lr = frame.set_index("model_id").learning_rate[winner]
        notes = edge_notes(Result)
        if expect is None:
            assert notes == [] or all("learning_rate" not in n for n in notes), (lr, notes)
        else:
            assert any(f"learning_rate ({lr:g}) is the {expect} tried" in n for n in notes)
            assert all("weight_decay" not in n for n in notes)  # 2 values: a choice, not a grid


def test_edge_of_a_one_choice_grid():
    space = jrobust.SearchSpace(ModelConfig(), learning_rate=[1e-3, 1e-2, 1e-1])

    class Result:
        models = space.to_frame()
        winner_id = 2

    assert edge_notes(Result) == [
        "the winner's learning_rate (0.1) is the largest tried (0.001 to 0.1); consider "
        "extending the grid"
    ]


def test_report_says_how_many_models_a_figure_shows(raced, tmp_path):
    folder = runfolder.save_run(raced, tmp_path / "run")
    page = (folder / "report.html").read_text()
    assert "12 of 16 models shown" in page and "All 16 models shown" in page  # distributions, path
    # settings, programs and the raw configuration are folded away
    assert "<details><summary>Race settings</summary>" in page
    assert page.index("Against the runner-up") < page.index("<figure>")
    summary = (folder / "summary.md").read_text()
    assert summary.index("Runner-up: model") < summary.index("## Models, best first")
    fig = raced.plot_distributions()
    assert "12 of 16 models" in fig.axes[0].get_title()


def test_plots_from_the_result_return_figures(raced):
    from matplotlib.figure import Figure

    assert isinstance(raced.plot_path(), Figure)
    assert isinstance(raced.plot_distributions(top=3), Figure)
    with pytest.raises(ValueError, match="no transformed test sets"):
        raced.plot_transforms()


def test_statistic_of_the_tables_is_the_race_statistic(raced):
    table = summary_table(raced, top=None)
    stat = get_statistic("max")
    for _, row in table.head(3).iterrows():
        losses = raced.losses(int(row.model_id))
        assert row["max"] == pytest.approx(stat(losses[None, :])[0])
    assert re.fullmatch(r"\d+", str(int(table["rank"].iloc[-1])))
