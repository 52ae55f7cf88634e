"""The vectorised trainer against one-at-a-time references."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import make_regression_population, small_cnn

import jrobust
from jrobust._src import presets as zoo
from jrobust._src.config import model_hash
from jrobust._src.data.population import INIT_STREAM, SHUFFLE_STREAM
from jrobust._src.models.contract import make_model
from jrobust._src.train import make_trainer, n_cached, n_compiled, train_stack


def reference_train(config, population, instance, seed=0):
    """One instance, trained by a plain Python loop with optax.adam: an independent reference."""
    model = make_model(config)
    data = population.device_arrays()
    root = jax.random.key(seed)
    init_key = jax.random.fold_in(
        jax.random.fold_in(jax.random.fold_in(root, INIT_STREAM), model_hash(config)), instance
    )
    shuffle_key = jax.random.fold_in(jax.random.fold_in(root, SHUFFLE_STREAM), instance)
    subset = jnp.asarray(population.subset_indices([instance], config.train_size, seed=seed)[0])
    col = population.target_column(config.target)
    params = model.init(init_key, data["x"][subset[: config.batch_size]])["params"]
    tx = optax.adam(config.learning_rate, b1=config.b1, b2=config.b2, eps=config.eps)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, idx):
        def loss_fn(p):
            pred, _ = model.apply({"params": p}, data["x"][idx])
            return jnp.mean((pred[:, 0] - data["y"][idx, col]) ** 2)

        g = jax.grad(loss_fn)(params)
        upd, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, upd), opt

    n_batches = config.train_size // config.batch_size
    for e in range(config.epochs):
        order = subset[
            jax.random.permutation(jax.random.fold_in(shuffle_key, e), config.train_size)
        ]
        for b in range(n_batches):
            params, opt = step(
                params, opt, order[b * config.batch_size : (b + 1) * config.batch_size]
            )
    test = jnp.asarray(population.test_index)
    pred, _ = model.apply({"params": params}, data["x"][test])
    return float(jnp.mean((pred[:, 0] - data["y"][test, col]) ** 2))


def test_stack_equals_one_at_a_time_reference(toy_population):
    lrs = [1e-3, 3e-3, 1e-2, 3e-2]
    configs = [small_cnn(learning_rate=lr) for lr in lrs]
    instances = [0, 1, 2, 3]
    stacked = train_stack(configs, instances, toy_population)
    reference = [
        reference_train(c, toy_population, i) for c, i in zip(configs, instances, strict=True)
    ]
    np.testing.assert_allclose(stacked["loss"], reference, rtol=2e-4)
    assert stacked["ok"].all()
    assert len(set(np.round(stacked["loss"], 6))) == 4  # different learning rates, different losses


@pytest.fixture(scope="module")
def clusters():
    """15x15x1 images, the paper's calorimeter clusters' shape (its model 1 needs it)."""
    return make_regression_population(n=700, shape=(15, 15, 1))


def test_paper_model_1_stacked_equals_alone(clusters):
    """The paper's model 1 as the paper trains it (NAdam, coupled L2, relative MSE, its 2x2 pool
    of stride 1 before the head): every lane of a stack gives what the instance gives alone, and
    with Adam and the MSE it matches the independent one-at-a-time reference loop."""
    assert zoo.paper_config(1).architecture.pool[-1] == (2, 1)
    base = zoo.paper_config(1, train_size=256, epochs=2)
    configs = [dataclasses.replace(base, learning_rate=lr) for lr in (1e-4, 1e-3, 3e-3, 1e-2)]
    instances = [0, 1, 2, 5]
    stacked = train_stack(configs, instances, clusters)
    pairs = list(zip(configs, instances, strict=True))
    alone = [train_stack([c], [i], clusters)["loss"][0] for c, i in pairs]
    np.testing.assert_allclose(stacked["loss"], alone, rtol=1e-5)
    assert stacked["ok"].all() and len(set(np.round(stacked["loss"], 6))) == 4
    plain = [dataclasses.replace(c, optimizer="adam", l2=0.0, loss="mse", metric="mse")
             for c, _ in pairs[1:3]]  # fmt: skip
    ours = train_stack(plain, instances[1:3], clusters)["loss"]
    reference = [
        reference_train(c, clusters, i) for c, i in zip(plain, instances[1:3], strict=True)
    ]
    np.testing.assert_allclose(ours, reference, rtol=2e-4)


def test_instance_alone_equals_in_batch_and_seed_determinism(toy_population):
    cfg = small_cnn()
    batch = jrobust.train_instances(cfg, toy_population, range(6))
    alone = jrobust.train_instances(cfg, toy_population, [4])
    np.testing.assert_allclose(alone["loss"].iloc[0], batch["loss"].iloc[4], rtol=1e-5)
    again = jrobust.train_instances(cfg, toy_population, range(6))
    np.testing.assert_array_equal(again["loss"].to_numpy(), batch["loss"].to_numpy())
    assert batch["loss"].nunique() == 6
    other_seed = jrobust.train_instances(cfg, toy_population, range(6), seed=1)
    assert not np.allclose(other_seed["loss"], batch["loss"])


def test_instances_draw_different_subsets_and_inits(toy_population):
    s = toy_population.subset_indices([0, 1], 200)
    assert len(set(s[0]) & set(s[1])) < 150  # distinct draws from a pool of 900
    assert len(set(s[0])) == 200  # without replacement
    # the same instance gets the same subset for any model (common random numbers)
    np.testing.assert_array_equal(toy_population.subset_indices([1], 200)[0], s[1])
    # and nested subsets: a smaller size is a prefix
    np.testing.assert_array_equal(toy_population.subset_indices([1], 50)[0], s[1, :50])
    boot = toy_population.subset_indices([0], 500, bootstrap=True)[0]
    assert len(set(boot)) < 500  # with replacement


def test_new_hyperparameter_values_do_not_recompile(toy_population):
    a = [small_cnn(learning_rate=lr, l2=l2) for lr, l2 in [(1e-3, 0.0), (2e-3, 0.1)]]
    b = [small_cnn(learning_rate=lr, l2=l2, b1=0.8) for lr, l2 in [(5e-3, 0.01), (7e-4, 0.0)]]
    first = train_stack(a, [0, 1], toy_population)
    trainer = make_trainer(a[0], toy_population)
    programs = n_compiled()
    cached = n_cached()
    second = train_stack(b, [2, 3], toy_population)
    assert make_trainer(b[0], toy_population) is trainer
    assert n_compiled() == programs
    assert n_cached() == cached
    assert second["compile_seconds"] == 0.0
    assert not np.allclose(first["loss"], second["loss"])


class UserModule(nn.Module):
    """A user's own Flax module, unaware of jrobust."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))


def test_user_flax_module_trains(toy_population):
    cfg = jrobust.ModelConfig(
        architecture=UserModule(),
        train_size=400,
        batch_size=20,
        target="energy",
        learning_rate=1e-2,
    )
    short = jrobust.train_instances(dataclasses.replace(cfg, epochs=1), toy_population, [0, 1])
    long = jrobust.train_instances(dataclasses.replace(cfg, epochs=15), toy_population, [0, 1])
    assert (long["status"] == "ok").all()
    assert (long["loss"] < 0.5 * short["loss"]).all()


def test_diverging_instance_is_flagged_and_isolated(toy_population):
    good = [small_cnn(optimizer="sgd", learning_rate=lr) for lr in (1e-3, 2e-3, 3e-3)]
    bad = small_cnn(optimizer="sgd", learning_rate=1e8)
    alone = train_stack(good, [0, 1, 2], toy_population)
    mixed = train_stack([good[0], bad, good[1], good[2]], [0, 1, 1, 2], toy_population)
    assert not mixed["ok"][1]
    assert mixed["ok"][[0, 2, 3]].all()
    np.testing.assert_allclose(mixed["loss"][[0, 2, 3]], alone["loss"], rtol=1e-5)


def test_side_features_and_early_stopping(toy_population):
    with_side = small_cnn(side_features=("total",), early_stopping=1, epochs=6)
    res = jrobust.train_instances(with_side, toy_population, range(4))
    assert (res["status"] == "ok").all()
    assert res["epochs"].between(1, 6).all()


def test_classification_with_mlp():
    from sklearn.datasets import load_digits

    d = load_digits()
    pop = jrobust.Population(d.images[..., None] / 16.0, d.target, num_classes=10, test_size=300)
    cfg = zoo.mlp_config(
        hidden=(32,),
        outputs=10,
        loss="cross_entropy",
        metric="accuracy",
        train_size=800,
        batch_size=50,
        epochs=5,
        learning_rate=3e-3,
    )
    res = jrobust.train_instances(cfg, pop, [0, 1])
    assert (res["accuracy"] > 0.8).all()
    np.testing.assert_allclose(res["loss"], 1 - res["accuracy"], atol=1e-6)


BAD = [
    (dict(batch_size=500), ValueError, "batch_size=500 is larger"),
    (
        dict(train_size=5000, batch_size=10),
        ValueError,
        "larger than the population's training pool",
    ),
    (dict(conv=(4, 4, 4), pool=(2, 2, 2)), ValueError, "cannot take inputs"),
    (dict(target="nope"), ValueError, "unknown target"),
    (dict(side_features=("nope",)), ValueError, "unknown side features"),
]


@pytest.mark.parametrize(("kw", "err", "msg"), BAD)
def test_bad_inputs_raise_before_compiling(toy_population, kw, err, msg):
    before = n_cached()
    with pytest.raises(err, match=msg):
        jrobust.train_instances(small_cnn(**kw), toy_population, [0])
    assert n_cached() == before


def test_empty_instances_and_nan_data(toy_population):
    with pytest.raises(ValueError, match="instance_indices is empty"):
        jrobust.train_instances(small_cnn(), toy_population, [])
    x = np.ones((50, 3), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        jrobust.Population(x, np.ones(50))
