"""Programs: models that differ in widths, side features, activation, optimizer, schedule,
epochs, training-sample size, head depth or pooling train as lanes of ONE compiled program, and
each lane gives what its model gives alone, with its padding exactly zero."""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jrobust
from jrobust._src import presets as zoo
from jrobust._src.models.contract import make_model
from jrobust._src.programs import DEFAULT_WASTE, own_flops, plan_programs
from jrobust._src.train import Program, n_compiled, train_stack

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


def _matmul_flops(jaxpr) -> int:
    """2 x the multiply-adds of every dot_general of a jaxpr (nested ones included)."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            k = math.prod(eqn.invars[0].aval.shape[d] for d in contracting)
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * k
        assert eqn.primitive.name != "conv_general_dilated", "count the im2col form only"
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                total += _matmul_flops(inner)
    return total


SAME_CNN = zoo.cnn_config(
    conv=(4, 6), pool=(2, None), dense=(8, 5), padding="SAME", conv_impl="im2col", batch_size=20
)


@pytest.mark.parametrize(
    "config, shape",
    [
        (zoo.paper_config(1, conv_impl="im2col"), (15, 15, 1)),
        (zoo.paper_config(2, conv_impl="im2col"), (15, 15, 1)),  # side features in the head
        (SAME_CNN, (6, 6, 1)),
        (zoo.mlp_config(hidden=(16, 8), batch_size=20), (6, 6, 1)),
    ],
    ids=["paper1", "paper2", "cnn-same", "mlp"],
)
def test_own_flops_count_every_product_of_a_training_step(config, shape):
    """own_flops against the matrix products JAX's autodiff actually emits for one step (the
    im2col form is all dot_general), and against XLA's own count of the compiled step."""
    model = make_model(config)
    n_side = len(config.side_features)
    side = jnp.ones((config.batch_size, n_side)) if n_side else None
    x = jnp.ones((config.batch_size, *shape))

    def loss(params):
        pred, _ = model.apply({"params": params}, x, side)
        return jnp.mean(pred**2)

    params = model.init(jax.random.key(0), x, side)["params"]
    counted = _matmul_flops(jax.make_jaxpr(jax.grad(loss))(params).jaxpr)
    assert own_flops(config, shape) == counted
    if config.name == "paper1":  # by hand: 64 x (3 x forward - conv1's input gradient)
        forward = 13 * 13 * 9 * 32 * 2 + 4 * 4 * 9 * 32 * 64 * 2 + 576 * 9 * 2 + 9 * 2
        assert counted == 64 * (3 * forward - 13 * 13 * 9 * 32 * 2) == 127_700_352
    # XLA's count of the compiled step adds the elementwise work (a few percent for the paper's
    # models, more for tiny ones): never less (3x the forward pass would be more than XLA's)
    cost = jax.jit(jax.grad(loss)).lower(params).compile().cost_analysis()
    xla = (cost[0] if isinstance(cost, list) else cost)["flops"]
    assert counted <= xla <= (1.06 if str(config.name).startswith("paper") else 1.3) * counted
