"""Programs: models that differ in widths, side features, activation, optimizer, schedule,
epochs, training-sample size, head depth or pooling train as lanes of ONE compiled program, and
each lane gives what its model gives alone, with its padding exactly zero."""

import dataclasses

import flax.linen as nn
import numpy as np
import pytest

import jrobust
from jrobust import zoo
from jrobust.programs import DEFAULT_WASTE, plan_programs
from jrobust.train import Program, n_compiled, train_stack

BASE = zoo.cnn_config(
    conv=(4, 6), pool=(None, 2), dense=(8,), train_size=200, batch_size=20, epochs=2,
    target="energy", optimizer="adam",
)  # fmt: skip
LEARNING_RATES = (1e-3, 1e-2)


def arch(**kw):
    return dataclasses.replace(BASE.architecture, **kw)


# one variant per merge axis, each against the base model
AXES = {
    "widths": dict(architecture=arch(conv=(3, 5), dense=(6,))),
    "side features": dict(side_features=("total",)),
    "activation": dict(architecture=arch(activation="sigmoid")),
    "prelu": dict(architecture=arch(activation="prelu")),
    "optimizer": dict(optimizer="nadamw", weight_decay=0.05),
    "schedule": dict(schedule="onecycle"),
    "epochs": dict(epochs=3),
    "train_size": dict(train_size=160),
    "head depth": dict(architecture=arch(dense=(6, 5))),
    "pooling": dict(architecture=arch(pool=(None, "global"))),
}


VARIANTS = [BASE] + [dataclasses.replace(BASE, **kw) for kw in AXES.values()]


@pytest.fixture(scope="module")
def everything(toy_population):
    """Every axis at once: all variants as lanes of one merged program, and each model alone."""
    program = Program(VARIANTS, toy_population, keep_params=True)
    configs = [dataclasses.replace(v, learning_rate=lr) for v in VARIANTS for lr in LEARNING_RATES]
    instances = np.arange(len(configs)) % 3
    merged = train_stack(configs, instances, toy_population, program=program, bucket=len(configs))
    alone = np.asarray(
        [
            train_stack([c], [i], toy_population, bucket=1)["loss"][0]
            for c, i in zip(configs, instances, strict=True)
        ]
    )
    return program, configs, merged, alone


def padding_of(program, configs, params, lanes):
    """The largest magnitude of any parameter outside a lane's own (masked) shape."""
    worst = 0.0
    for j in lanes:
        masks = program.model.masks(program.variant_of(configs[j]))
        for path, value in params.items():
            worst = max(worst, float(np.abs(value[j] * (1 - np.asarray(masks[path]))).max()))
    return worst


@pytest.mark.parametrize("axis", ["base", *AXES])
def test_a_lane_of_a_merged_program_equals_its_model_alone(everything, axis):
    program, configs, merged, alone = everything
    v = 0 if axis == "base" else 1 + list(AXES).index(axis)
    lanes = [j for j, c in enumerate(configs) if program.variant_of(c) == v]
    assert program.merged and program.model.n_variants == len(VARIANTS) and len(lanes) == 2
    assert merged["ok"][lanes].all()
    np.testing.assert_allclose(merged["loss"][lanes], alone[lanes], rtol=1e-4)
    assert padding_of(program, configs, merged["params"], lanes) == 0.0  # exactly zero at the end


def test_merged_stacks_are_deterministic_and_lanes_independent(toy_population):
    variants = [BASE, dataclasses.replace(BASE, **AXES["widths"])]
    program = Program(variants, toy_population)
    configs = [variants[0], variants[1], variants[0], variants[1]]
    one = train_stack(configs, [0, 1, 2, 3], toy_population, program=program, bucket=4)
    two = train_stack(configs, [0, 1, 2, 3], toy_population, program=program, bucket=4)
    np.testing.assert_array_equal(one["loss"], two["loss"])  # the same seed, the same losses
    # a lane alone in the program equals itself inside the stack
    alone = train_stack(configs[1:2], [1], toy_population, program=program, bucket=4)
    np.testing.assert_allclose(alone["loss"][0], one["loss"][1], rtol=1e-5)
    # a diverging lane fails alone, the others keep their losses
    bad = dataclasses.replace(variants[1], optimizer="adam", learning_rate=1e8)
    mixed = train_stack([configs[0], bad, configs[2], configs[3]], [0, 1, 2, 3], toy_population,
                        program=program, bucket=4)  # fmt: skip
    assert list(mixed["ok"]) == [True, False, True, True]
    np.testing.assert_allclose(mixed["loss"][[0, 2, 3]], one["loss"][[0, 2, 3]], rtol=1e-5)


def test_new_learning_rates_do_not_recompile_a_merged_program(toy_population):
    variants = [BASE, dataclasses.replace(BASE, **AXES["head depth"])]
    program = Program(variants, toy_population)
    train_stack(variants, [0, 1], toy_population, program=program, bucket=2)
    before = n_compiled()
    faster = [dataclasses.replace(v, learning_rate=5e-3) for v in variants]
    out = train_stack(faster, [2, 3], toy_population, program=program, bucket=2)
    assert n_compiled() == before and out["compile_seconds"] == 0.0


def test_paper_space_groups_into_a_dozen_programs():
    space = jrobust.paper_space("energy")
    auto = plan_programs(space.models, (15, 15, 1), merge="auto")
    none = plan_programs(space.models, (15, 15, 1), merge="none")
    assert len(none) == 768 and all(not p.merged for p in none)
    assert len(auto) <= 12 and max(p.waste for p in auto) <= DEFAULT_WASTE + 1e-9
    assert sorted(i for p in auto for i in p.model_ids) == list(range(6912))
    for p in auto:  # batch size stays static
        assert len({v.batch_size for v in p.variants}) == 1
    assert space.programs() == [list(p.model_ids) for p in auto]
    assert len(plan_programs(space.models, (15, 15, 1), merge="max")) == 3  # one per batch size


def test_a_race_gives_the_same_ledger_merged_or_not(toy_population):
    space = jrobust.SearchSpace(
        BASE, learning_rate=[3e-3, 3e-2], dense=[(8,), (6, 5)], optimizer=["adam", "nadam"]
    )
    common = dict(statistic="mean", warmup=2, max_instances=4, compilation_cache=False)
    merged = jrobust.race(space, toy_population, merge="max", **common)
    plain = jrobust.race(space, toy_population, merge="none", **common)
    assert merged.timing["n_programs"] == 1 and plain.timing["n_programs"] == space.n_cohorts
    keys = ["model_id", "instance", "round", "status"]
    assert merged.ledger[keys].equals(plain.ledger[keys])
    np.testing.assert_allclose(merged.ledger.loss, plain.ledger.loss, rtol=1e-4)
    assert merged.winner_id == plain.winner_id
    (program,) = merged.timing["programs"]
    assert program["merged"] and program["models"] == len(space) and program["compile_seconds"] > 0


class _OwnModule(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(x.reshape(x.shape[0], -1))


def test_a_users_module_keeps_its_own_program_and_bad_policies_are_refused(toy_population):
    own = dataclasses.replace(BASE, architecture=_OwnModule())
    plans = plan_programs([BASE, own, dataclasses.replace(BASE, **AXES["widths"])], (6, 6, 1),
                          merge="max")  # fmt: skip
    assert sorted(p.model_ids for p in plans) == [(0, 2), (1,)]
    for kwargs, message in (
        (dict(merge="most"), "merge must be one of auto, none, max"),
        (dict(waste=-0.5), "waste must be a number >= 0"),
    ):
        with pytest.raises(ValueError, match=message):
            jrobust.race([BASE], toy_population, **kwargs)
