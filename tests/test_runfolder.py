"""Run folders, figures and space files: no JAX training here (races use a synthetic evaluator)."""

import json
import re
import tomllib

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from conftest import stop_after

import jrobust
from jrobust import runfolder as results
from jrobust._src.race.checkpoint import CHECKPOINT_FILE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPREAD = np.linspace(0.05, 0.5, 8)


def evaluator(models, instances):
    """Model m: mean 1 + 0.1 m, spread SPREAD[m]; deterministic in (model, instance)."""
    return 1.0 + 0.1 * models + SPREAD[models] * np.sin(12.9898 * instances + 78.233 * models)


@pytest.fixture(scope="module")
def raced():
    return jrobust.race(8, evaluator=evaluator, statistic="q3+iqr", rule="halving", warmup=3)


def _is_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_save_and_load_round_trip(raced, tmp_path):
    config = {"race": {"statistic": "q3+iqr", "rule": "halving", "warmup": 3}}
    folder = results.save_run(raced, tmp_path / "run", config, csv=True, info={"data": "synthetic"})
    for name in (
        "config.toml",
        "result.json",
        "summary.md",
        "report.html",
        "path.png",
        "distributions.png",
    ):
        assert (folder / name).is_file(), name
    for table in results.TABLES:
        frame = pd.read_parquet(folder / f"{table}.parquet")
        assert len(frame) == len(getattr(raced, table))
        assert (folder / f"{table}.csv").is_file()
    _is_png(folder / "path.png")
    _is_png(folder / "distributions.png")
    back = results.load_run(folder)
    assert back.winner_id == raced.winner_id and back.winners == raced.winners
    assert back.n_trainings == raced.n_trainings
    pd.testing.assert_frame_equal(back.ledger, raced.ledger, check_dtype=False)
    assert [list(e) for e in back.history.eliminated] == [list(e) for e in raced.history.eliminated]
    assert tomllib.loads((folder / "config.toml").read_text())["race"]["rule"] == "halving"
    payload = json.loads((folder / "result.json").read_text())
    assert payload["winner_id"] == raced.winner_id and payload["info"]["data"] == "synthetic"
    pd.testing.assert_frame_equal(back.summary(), raced.summary(), check_dtype=False)


def test_report_is_self_contained(raced, tmp_path):
    folder = results.save_run(raced, tmp_path, None)
    page = (folder / "report.html").read_text()
    winner_name = raced.models.name[raced.winner_id]
    assert winner_name in page and "Winner" in page
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), (
        "the report must not load anything"
    )
    summary = (folder / "summary.md").read_text()
    assert f"model {raced.winner_id}" in summary and "![path](path.png)" in summary


def test_summary_table_puts_the_winner_first(raced):
    table = results.summary_table(raced, top=None)
    assert table.model_id.iloc[0] == raced.winner_id
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert {"q3+iqr", "mean", "std", "pd", "instances"} <= set(table.columns)


def test_unfinished_run_loads_from_its_checkpoint(tmp_path):
    config = {"race": {"statistic": "std", "rule": "halving", "warmup": 3}}
    results.write_config(tmp_path, config)
    partial = jrobust.race(
        8,
        evaluator=evaluator,
        statistic="std",
        warmup=3,
        checkpoint_dir=tmp_path,
        progress=stop_after(2),
    )
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    back = results.load_run(tmp_path)
    assert back.timing["finished"] is False
    assert back.n_trainings == partial.n_trainings
    pd.testing.assert_frame_equal(back.ledger, partial.ledger, check_dtype=False)
    results.write_figures(back, tmp_path)
    page = results.write_report(back, tmp_path, {"finished": False}).read_text()
    assert "Unfinished run" in page


def test_load_run_of_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no jrobust results"):
        results.load_run(tmp_path)


# ------------------------------------------------------------------------------ space files


def staged_evaluator(models, instances, sizes):
    """As ``evaluator``, a little worse at smaller training sizes."""
    return evaluator(models, instances) + 5.0 / np.sqrt(sizes)


STAGED = dict(
    statistic="mean",
    rule="welch",
    correction="holm",
    warmup=3,
    elites=1,
    fidelity=[100, 400],
    n_winners=2,
    final_instances=3,
)


def test_run_folder_shows_the_rule_elites_stages_final_race_and_pvalues(tmp_path):
    result = jrobust.race(8, evaluator=staged_evaluator, **STAGED)
    config = {"race": jrobust.RaceSettings(**STAGED).to_table()}
    folder = results.save_run(result, tmp_path / "run", config)
    history = pd.read_parquet(folder / "history.parquet")
    assert {"stage", "train_size", "elites", "rescued"} <= set(history.columns)
    assert history.stage_kind.iloc[-1] == "final" and set(history.train_size) == {100, 400}
    path = pd.read_parquet(folder / "path.parquet")
    assert {"pvalue", "pvalue_raw", "elite", "stage", "train_size"} <= set(path.columns)
    assert path.pvalue.notna().any()
    ledger = pd.read_parquet(folder / "ledger.parquet")
    assert set(ledger.stage_kind) == {"race", "final"} and set(ledger.train_size) == {100, 400}
    payload = json.loads((folder / "result.json").read_text())
    assert [s["kind"] for s in payload["stages"]] == [s["kind"] for s in result.stages]
    summary = (folder / "summary.md").read_text()
    assert "rule `welch (holm correction)`" in summary
    assert "elites 1 (the best 1 by mean at the start of a round cannot be eliminated in it)" in (
        summary
    )
    assert "fidelity stages at training sizes 100, 400" in summary
    assert "final race: the 2 finalists on 3 fresh instances each" in summary
    assert "## Stages" in summary and "| p_min | p_removed |" in summary
    page = (folder / "report.html").read_text()
    assert "welch (holm correction)" in page and "<h2>Stages</h2>" in page and "p_min" in page
    back = results.load_run(folder)
    assert back.stages == result.stages and back.winners == result.winners
    assert back.summary(top=3).equals(result.summary(top=3))


def test_run_folder_names_the_dominance(tmp_path):
    crowned = [0.0345, 0.0347, 0.0349, 0.035, 0.035, 0.035, 0.0352, 0.0355, 0.044, 0.073]
    better = [0.0325, 0.033, 0.0345, 0.0346, 0.0347, 0.0363, 0.0365, 0.0386, 0.0394, 0.0399]
    table = np.full((6, 10), 0.09)
    table[3], table[5] = crowned, better
    result = jrobust.race(
        6,
        evaluator=lambda m, i: table[m, i],
        statistic="q3+iqr",
        rule="threshold:0.045",
        warmup=9,
        max_instances=10,
    )
    folder = results.save_run(result, tmp_path / "run", figures=False)
    sentence = "model 3 (model3) was ranked first by q3+iqr but model 5 (model5) is better on mean, std and PD"
    assert sentence in (folder / "summary.md").read_text()
    assert sentence in (folder / "report.html").read_text()
    assert "**Winner: model 5" in (folder / "summary.md").read_text()
    back = results.load_run(folder)
    assert back.dominance["crowned"] == 3 and back.dominance_note == result.dominance_note


def test_an_unfinished_staged_run_loads_from_its_checkpoint(tmp_path):
    folder = tmp_path / "run"
    settings = jrobust.RaceSettings(**STAGED)
    results.write_config(folder, {"race": settings.to_table()})
    part = jrobust.race(
        8,
        evaluator=staged_evaluator,
        settings=settings,
        checkpoint_dir=folder,
        progress=stop_after(4),
    )
    back = results.load_run(folder)
    assert not back.finished and back.stages == part.stages and len(back.stages) >= 2
    assert back.ledger.drop(columns="seconds").equals(part.ledger.drop(columns="seconds"))
