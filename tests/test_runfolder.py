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
from jrobust.state import CHECKPOINT_FILE

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
