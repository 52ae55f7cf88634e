"""Optimizer families, coupled L2 against decoupled weight decay, schedules (jrobust._src.optim)."""

import dataclasses

import numpy as np
import pytest
from conftest import small_cnn

import jrobust
from jrobust._src.optim import schedule_shape
from jrobust._src.train import train_stack

FAMILY_SCHEDULES = [(f, "constant") for f in ("sgd", "adam", "adamw", "nadam", "nadamw", "rmsprop")]
FAMILY_SCHEDULES += [("adam", "cosine"), ("sgd", "onecycle")]


@pytest.mark.parametrize(("family", "schedule"), FAMILY_SCHEDULES)
def test_every_optimizer_family_and_schedule_learns(toy_population, family, schedule):
    lr = 0.05 if family == "sgd" else 3e-3
    extra = {"weight_decay": 1e-4} if family.endswith("w") else {}
    cfg = small_cnn(
        optimizer=family, learning_rate=lr, schedule=schedule, epochs=10, train_size=400, **extra
    )
    frozen = dataclasses.replace(cfg, learning_rate=1e-12)
    res = train_stack([cfg, cfg, frozen, frozen], [0, 1, 0, 1], toy_population)
    assert res["ok"].all()
    assert res["loss"][:2].mean() < 0.5 * res["loss"][2:].mean()


def test_l2_is_coupled_and_weight_decay_decoupled(toy_population):
    base = small_cnn(optimizer="adamw", learning_rate=1e-2)
    l2 = jrobust.train_instances(dataclasses.replace(base, l2=0.1), toy_population, [0])[
        "loss"
    ].iloc[0]
    wd = jrobust.train_instances(dataclasses.replace(base, weight_decay=0.1), toy_population, [0])[
        "loss"
    ].iloc[0]
    none = jrobust.train_instances(base, toy_population, [0])["loss"].iloc[0]
    assert len({round(l2, 7), round(wd, 7), round(none, 7)}) == 3


def test_onecycle_schedule_shape():

    f = schedule_shape("onecycle", 100, 0.3)
    values = np.array([float(f(i)) for i in range(100)])
    assert values.argmax() == 30 and abs(values.max() - 1.0) < 1e-6
    assert values[0] == pytest.approx(1 / 25) and values[-1] < 0.01
