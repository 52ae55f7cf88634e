"""Figures: distributions, the elimination path, robustness against the sample size."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust._src import plots

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


def test_plots(raced, tmp_path):
    fig = plots.plot_distributions(raced, kind="violin", path=tmp_path / "v.png")
    assert len(fig.axes) == 1
    _is_png(tmp_path / "v.png")
    with pytest.raises(ValueError, match="kind"):
        plots.plot_distributions(raced, kind="pie")
    rng = np.random.default_rng(0)
    sizes = np.repeat([100, 300, 1000, 3000], 20)
    frame = pd.DataFrame(
        {
            "train_size": np.tile(sizes, 2),
            "loss": rng.gamma(2.0, 1.0, 160) / np.tile(sizes, 2),
            "model": np.repeat(["a", "b"], 80),
        }
    )
    plots.plot_sample_size(frame, path=tmp_path / "s.png")
    _is_png(tmp_path / "s.png")
    with pytest.raises(ValueError, match="columns"):
        plots.plot_sample_size(frame.drop(columns="loss"))


def test_sample_size_study_is_saved_and_plotted(raced, tmp_path):
    study = pd.DataFrame({"train_size": [100, 100, 1000, 1000], "loss": [0.3, 0.5, 0.2, 0.25]})
    folder = jrobust.save_run(raced, tmp_path, None, sample_size=study)
    _is_png(folder / "sample_size.png")
    assert pd.read_parquet(folder / "sample_size.parquet").shape == (4, 2)
    assert (folder / "report.html").read_text().count("data:image/png;base64,") == 3
