"""Preprocessing: standardisation from the pool only, log energy, one-hot labels."""

import numpy as np
import pytest

from jrobust._src.data.calorimeter import calorimeter
from jrobust._src.data.preprocess import log_energy, one_hot, one_hot_labels, standardize
from jrobust._src.data.sources import digits, from_arrays


# --------------------------------------------------------------------------------- preprocessing
def test_standardize_uses_pool_statistics_only():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, (300, 3))
    pop = from_arrays(x, rng.normal(size=300), side=x[:, :2], test_size=50, val_size=50)
    new = standardize(pop)
    pool = new.pool_index
    np.testing.assert_allclose(new.x[pool].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(new.x[pool].std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(new.side[pool].std(axis=0), 1.0, atol=1e-5)
    for attr in ("test_index", "val_index", "pool_index"):
        np.testing.assert_array_equal(getattr(new, attr), getattr(pop, attr))
    # the held-out events do not move the statistics
    x2 = x.copy()
    x2[pop.test_index] += 1000.0
    other = standardize(from_arrays(x2, pop.y, side=x2[:, :2], test_size=50, val_size=50))
    step, step2 = new.meta["preprocess"][-1], other.meta["preprocess"][-1]
    np.testing.assert_allclose(step["x_mean"], step2["x_mean"])
    np.testing.assert_allclose(step["x_std"], step2["x_std"])
    assert pop.x is not new.x and np.allclose(pop.x, x.astype(np.float32))  # input untouched


def test_standardize_images_per_channel_and_global():
    pop = digits()
    new = standardize(pop)
    assert new.meta["preprocess"][-1]["per"] == "channel"
    assert abs(new.x[new.pool_index].mean()) < 1e-5
    glob = standardize(calorimeter(1024, "A", cache=False, chunk_size=1024), per="global")
    assert glob.x.shape == (1024, 15, 15, 1)
    with pytest.raises(ValueError, match="per='bogus'"):
        standardize(pop, per="bogus")


def test_log_energy_and_one_hot():
    pop = calorimeter(1024, "A", cache=False, chunk_size=1024)
    logged = log_energy(pop)
    np.testing.assert_allclose(logged.y[:, 0], np.log(pop.y[:, 0]), rtol=1e-6)
    np.testing.assert_allclose(logged.y[:, 1:], pop.y[:, 1:])
    np.testing.assert_allclose(logged.side[:, 0], np.log(np.maximum(pop.side[:, 0], 1e-3)))
    assert set(logged.meta["transformed"]) == {"y:energy", "side:total_energy"}
    with pytest.raises(ValueError, match="already transformed"):
        log_energy(logged)
    with pytest.raises(ValueError, match=r"columns \['mass'\] are not in"):
        log_energy(pop, targets=["mass"])
    with pytest.raises(ValueError, match="holds class labels"):
        log_energy(digits())
    oh = one_hot(digits())
    assert oh.y.shape == (1797, 10) and not oh.is_classification
    assert oh.target_names[0] == "class_0" and oh.meta["num_classes"] == 10
    np.testing.assert_array_equal(oh.y.argmax(axis=1), digits().y)
    assert one_hot_labels([1, 0], 2).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(ValueError, match="one_hot needs integer class"):
        one_hot(pop)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        one_hot_labels([0, 2], 2)
