import os

# Tests check correctness, not speed: a lower XLA backend optimisation level compiles the many small
# stack programs of the suite about 2.5x faster on the CPU (benchmarks run with the defaults).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import numpy as np
import pytest

import jrobust

# A small CNN on the toy population's 6x6 images: compiles in a second, trains in milliseconds.
SMALL_CNN = dict(
    conv=(4,), pool=(2,), dense=(8,), train_size=200, batch_size=20, epochs=3, target="energy"
)


def small_cnn(**kw):
    return jrobust.zoo.cnn_config(**{**SMALL_CNN, **kw})


def stop_after(rounds):
    """A race ``progress`` callback that ends the race after ``rounds`` rounds (``StopRace``)."""

    def progress(info):
        if info["round"] >= rounds:
            raise jrobust.StopRace

    return progress


def make_regression_population(n=1200, seed=0, shape=(6, 6, 1), val_size=100):
    """A small image-regression population: the target is a noisy weighted sum of the pixels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape)).astype(np.float32)
    w = np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    energy = 1.0 + (x * w).mean(axis=(1, 2, 3)) + 0.01 * rng.standard_normal(n)
    total = x.sum(axis=(1, 2, 3))
    y = np.stack([energy, rng.random(n)], 1)
    side = np.stack([total, x[:, 0, 0, 0]], 1)
    return jrobust.Population(
        x,
        y,
        side=side,
        target_names=("energy", "other"),
        side_names=("total", "corner"),
        test_size=200,
        val_size=val_size,
        name="toy",
    )


@pytest.fixture(scope="session")
def toy_population():
    return make_regression_population()
