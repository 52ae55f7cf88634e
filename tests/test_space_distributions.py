"""Ranges in a search space: the distributions against SciPy, the unit map, sampling with
conditions, the one error of a space with ranges, space files with ranges, and the envelope."""

import dataclasses
import itertools
import math
import tomllib

import numpy as np
import pytest
from scipy import stats

import jrobust
from jrobust._src import presets as zoo
from jrobust._src.config import SCALAR_FIELDS
from jrobust._src.programs import merge_signature
from jrobust._src.space.distributions import (
    Categorical,
    Distribution,
    intrange,
    loguniform,
    uniform,
)
from jrobust._src.space.files import SpaceError, build_space, parse_space_text, to_toml
from jrobust._src.space.product import InfiniteSpaceError, SearchSpace

N_DRAWS = 4000


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------ distributions
def test_constructors_set_the_four_attributes_and_validate():
    assert (uniform(0, 2).low, uniform(0, 2).high, uniform(0, 2).log) == (0.0, 2.0, False)
    assert isinstance(uniform(0, 2).low, float) and isinstance(intrange(1, 5).low, int)
    assert (loguniform(1e-3, 1).log, loguniform(1e-3, 1).integer) == (True, False)
    assert (intrange(2, 9).integer, intrange(2, 9).log, intrange(2, 9, log=True).log) == (
        True,
        False,
        True,
    )
    assert all(isinstance(d, Distribution) for d in (uniform(0, 1), intrange(0, 1)))
    # equal by value, whichever constructor made them; hashable
    assert loguniform(1e-5, 1.0) == Distribution(1e-5, 1.0, log=True)
    assert uniform(0, 1) != loguniform(0.1, 1) and len({uniform(0, 1), uniform(0.0, 1.0)}) == 1
    with pytest.raises(ValueError, match="low must be below high"):
        uniform(1, 1)
    with pytest.raises(ValueError, match="low must be below high"):
        intrange(5, 2)
    with pytest.raises(ValueError, match="needs low > 0"):
        loguniform(0, 1)
    with pytest.raises(ValueError, match="needs low > 0"):
        intrange(0, 8, log=True)
    with pytest.raises(TypeError, match="low must be an integer"):
        intrange(1.5, 4)
    with pytest.raises(TypeError, match="high must be a number"):
        uniform(0, "1")
    with pytest.raises(TypeError, match="must be a number"):
        uniform(True, 2)
    with pytest.raises(ValueError, match="finite"):
        uniform(0, math.inf)
    with pytest.raises(dataclasses.FrozenInstanceError):
        uniform(0, 1).low = 0.5


def test_repr_and_table_forms():
    assert repr(loguniform(1e-5, 1)) == "loguniform(1e-05, 1)"
    assert repr(uniform(0.5, 2.25)) == "uniform(0.5, 2.25)"
    assert repr(intrange(16, 128)) == "intrange(16, 128)"
    assert repr(intrange(16, 128, log=True)) == "intrange(16, 128, log=True)"
    for dist in (loguniform(1e-5, 1), uniform(-1, 2.5), intrange(3, 7), intrange(2, 64, log=True)):
        assert Distribution.from_table(dist.to_table()) == dist
    assert loguniform(1e-5, 1).to_table() == {"loguniform": [1e-5, 1.0]}
    assert intrange(2, 64, log=True).to_table() == {"intrange": [2, 64], "log": True}


@pytest.mark.parametrize(
    "dist",
    [uniform(-2.0, 3.0), loguniform(1e-5, 1.0), intrange(3, 11), intrange(1, 200, log=True)],
    ids=repr,
)
def test_samples_stay_inside_their_ranges(dist):
    values = dist.sample(rng(), N_DRAWS)
    assert values.shape == (N_DRAWS,)
    assert values.min() >= dist.low and values.max() <= dist.high
    assert all(v in dist for v in values[:50])
    if dist.integer:
        assert values.dtype == np.int64
    assert dist.sample(rng(), (3, 5)).shape == (3, 5)


def test_loguniform_is_uniform_in_log_space():
    dist = loguniform(1e-5, 1.0)
    values = dist.sample(rng(1), N_DRAWS)
    # SciPy's log-uniform CDF, and the same statement in log space
    assert stats.kstest(values, stats.loguniform(1e-5, 1.0).cdf).pvalue > 0.01
    logs = np.log(values)
    assert stats.kstest(logs, stats.uniform(np.log(1e-5), -np.log(1e-5)).cdf).pvalue > 0.01
    # the test can fail: the same draws are far from uniform on the linear scale
    assert stats.kstest(values, stats.uniform(1e-5, 1.0 - 1e-5).cdf).pvalue < 1e-10
    # and a linear range is uniform on the linear scale, not in log space
    flat = uniform(1e-5, 1.0).sample(rng(2), N_DRAWS)
    assert stats.kstest(flat, stats.uniform(1e-5, 1.0 - 1e-5).cdf).pvalue > 0.01
    assert stats.kstest(flat, stats.loguniform(1e-5, 1.0).cdf).pvalue < 1e-10


def _chisquare(values, support, pmf):
    counts = np.array([(values == k).sum() for k in support])
    assert counts.sum() == len(values), "a draw fell outside the support"
    return stats.chisquare(counts, pmf * len(values)).pvalue


def test_intrange_is_inclusive_and_uniform_over_its_integers():
    dist = intrange(3, 9)
    values = dist.sample(rng(3), N_DRAWS)
    support = np.arange(3, 10)
    assert set(values.tolist()) == set(support.tolist())  # both ends drawn
    assert _chisquare(values, support, np.full(7, 1 / 7)) > 0.01


def test_log_intrange_is_uniform_over_log():
    dist = intrange(1, 64, log=True)
    values = dist.sample(rng(4), 20_000)
    support = np.arange(1, 65)
    # each integer k owns [k - 1/2, k + 1/2], uniform in log space over [1/2, 64 + 1/2]
    edges = np.log(np.append(support - 0.5, 64.5))
    pmf = np.diff(edges) / (edges[-1] - edges[0])
    assert _chisquare(values, support, pmf) > 0.01
    assert {1, 64} <= set(values.tolist())
    uniform_pmf = np.full(64, 1 / 64)
    assert _chisquare(values, support, uniform_pmf) < 1e-10  # it is not the linear intrange


@pytest.mark.parametrize(
    "dist", [uniform(-2.0, 3.0), loguniform(1e-5, 1.0), loguniform(0.5, 2.0)], ids=repr
)
def test_unit_map_round_trips_for_reals(dist):
    u = np.linspace(0, 1, 101)
    np.testing.assert_allclose(dist.to_unit(dist.from_unit(u)), u, atol=1e-12)
    x = dist.sample(rng(5), 200)
    np.testing.assert_allclose(dist.from_unit(dist.to_unit(x)), x, rtol=1e-12)
    assert dist.to_unit(dist.low) == 0.0 and dist.to_unit(dist.high) == pytest.approx(1.0)
    if dist.log:  # the middle of the unit interval is the geometric mean
        assert dist.from_unit(0.5) == pytest.approx(math.sqrt(dist.low * dist.high))
    else:
        assert dist.from_unit(0.5) == pytest.approx((dist.low + dist.high) / 2)


@pytest.mark.parametrize("dist", [intrange(3, 11), intrange(1, 200, log=True)], ids=repr)
def test_unit_map_round_trips_for_integers(dist):
    ks = np.arange(dist.low, dist.high + 1)
    assert (dist.from_unit(dist.to_unit(ks)) == ks).all()
    assert isinstance(dist.from_unit(0.3), int) and isinstance(dist.to_unit(dist.low), float)
    # from_unit is monotone and reaches every integer, each over a cell of equal width in the
    # coordinates (linear, or log for log=True)
    u = np.linspace(0, 1, 100_001)
    k = dist.from_unit(u)
    assert (np.diff(k) >= 0).all() and set(k.tolist()) == set(ks.tolist())
    share = np.array([(k == j).mean() for j in ks])
    if dist.log:
        expected = np.diff(np.log(np.append(ks - 0.5, dist.high + 0.5)))
        expected /= expected.sum()
    else:
        expected = np.full(len(ks), 1 / len(ks))
    np.testing.assert_allclose(share, expected, atol=2e-4)


def test_from_unit_clips_and_to_unit_refuses_values_outside():
    for dist in (uniform(0.5, 2.0), loguniform(1e-4, 1e-1), intrange(2, 6, log=True)):
        assert dist.from_unit(-0.5) == dist.low and dist.from_unit(1.5) == dist.high
        assert dist.from_unit(-np.inf) == dist.low and dist.from_unit(np.inf) == dist.high
        clipped = dist.from_unit(np.array([-3.0, 0.0, 1.0, 7.0]))
        assert clipped[0] == clipped[1] == dist.low and clipped[2] == clipped[3] == dist.high
        with pytest.raises(ValueError, match="NaN"):
            dist.from_unit(np.nan)
        with pytest.raises(ValueError, match="outside"):
            dist.to_unit(dist.high * 2)
        with pytest.raises(ValueError, match="outside"):
            dist.to_unit([dist.low, np.nan])
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        uniform(0, 1).sample(0, 3)


def test_categorical():
    c = Categorical([(16,), (32,), (64,)])
    assert len(c) == 3 and (32,) in c and [32] in c and (8,) not in c and c.index([64]) == 2
    draws = c.sample(rng(6), 3000)
    assert draws.dtype == object and set(draws) == set(c.choices)
    counts = np.array([sum(d == ch for d in draws) for ch in c.choices])
    assert stats.chisquare(counts).pvalue > 0.01
    assert True not in Categorical([1, 2]) and 1 in Categorical([1, 2])
    with pytest.raises(ValueError, match="at least one"):
        Categorical([])


# ------------------------------------------------------------------------------ spaces
def _conditioned(**ranges):
    return SearchSpace(
        zoo.mlp_config(hidden=(32, 32)),
        optimizer=["adam", "sgd"],
        momentum=ranges.get("momentum", uniform(0.5, 0.95)),
        learning_rate=loguniform(1e-5, 1.0),
        hidden=intrange(8, 64, log=True),
        when={"momentum": lambda c: c.optimizer == "sgd"},
    )


def test_parameters_in_the_order_given():
    space = _conditioned()
    assert not space.is_finite
    assert space.parameters == {
        "optimizer": Categorical(["adam", "sgd"]),
        "momentum": uniform(0.5, 0.95),
        "learning_rate": loguniform(1e-5, 1.0),
        "hidden": intrange(8, 64, log=True),
    }
    assert [space.role(p) for p in space.parameters] == ["static", "scalar", "scalar", "width"]
    finite = SearchSpace(zoo.paper_config(1), learning_rate=[1e-4, 1e-3], dense=[(9,), (16, 9)])
    assert finite.is_finite and finite.parameters == {
        "learning_rate": Categorical([1e-4, 1e-3]),
        "dense": Categorical([(9,), (16, 9)]),
    }
    same = SearchSpace(zoo.paper_config(1), **finite.parameters)  # Categorical works as a list
    assert same.models == finite.models and same.names() == finite.names()


def test_sample_is_deterministic_for_a_seed():
    space = _conditioned()
    first = space.sample(50, seed=7)
    assert len(first) == 50 and all(isinstance(m, jrobust.ModelConfig) for m in first)
    assert space.sample(50, seed=7) == first
    assert space.sample(50, seed=np.random.default_rng(7)) == first
    other = space.sample(50, seed=8)
    assert sum(a == b for a, b in zip(first, other, strict=True)) == 0
    values = space.sample_values(50, 7)
    assert [space.config_of(v) for v in values] == first
    assert all(type(v["learning_rate"]) is float and type(v["hidden"]) is int for v in values)
    generator = np.random.default_rng(1)  # a generator is advanced by the draws
    assert space.sample(5, generator) != space.sample(5, generator)
    assert space.sample(0, seed=1) == []
    with pytest.raises(ValueError, match="n must be an int"):
        space.sample(-1)
    with pytest.raises(TypeError, match="seed must be"):
        space.sample(2, seed="abc")


def test_sampled_values_stay_in_their_ranges_and_conditions_apply():
    space = _conditioned()
    base = space.base
    models = space.sample(400, seed=0)
    values = space.sample_values(400, 0)
    for model, drawn in zip(models, values, strict=True):
        assert model.optimizer == drawn["optimizer"]
        assert model.learning_rate == drawn["learning_rate"] and 1e-5 <= model.learning_rate <= 1
        assert model.architecture.hidden == (drawn["hidden"],) * 2  # every layer, one width
        if model.optimizer == "sgd":
            assert model.momentum == drawn["momentum"] and 0.5 <= model.momentum <= 0.95
        else:  # the condition fails: momentum keeps the base's value
            assert model.momentum == base.momentum == 0.9
    assert {m.optimizer for m in models} == {"adam", "sgd"}
    assert len({m.architecture.hidden for m in models}) > 20


def test_sampling_a_finite_space_gives_its_models():
    """Conditions apply to a sampled assignment exactly as in the finite product."""
    space = SearchSpace(
        zoo.paper_config(1),
        optimizer=["sgd", "nadam"],
        momentum=[0.0, 0.5],
        learning_rate=[1e-4, 1e-3],
        dense=[(9,), (16, 9)],
        when={"momentum": lambda c: c.optimizer == "sgd"},
    )
    drawn = space.sample(300, seed=0)
    assert set(drawn) == set(space.models)  # every model drawn, nothing else
    for combo in itertools.product(*(c.choices for c in space.parameters.values())):
        assert space.config_of(dict(zip(space.parameters, combo, strict=True))) in space.models
    paper = jrobust.paper_space("energy")
    assert list(paper.parameters) == ["model_id"]
    assert all(m in paper.models for m in paper.sample(20, seed=1))
    assert paper.config_of({"model_id": 5}) == paper[5]


def test_config_of_checks_its_values():
    space = _conditioned()
    good = {"optimizer": "sgd", "momentum": 0.6, "learning_rate": 1e-3, "hidden": 16}
    model = space.config_of(good)
    assert (model.momentum, model.learning_rate, model.architecture.hidden) == (0.6, 1e-3, (16, 16))
    assert space.config_of({**good, "hidden": np.int64(16)}) == model
    with pytest.raises(ValueError, match="missing: hidden"):
        space.config_of({k: v for k, v in good.items() if k != "hidden"})
    with pytest.raises(ValueError, match="unknown: colour"):
        space.config_of({**good, "colour": 1})
    with pytest.raises(ValueError, match=r"learning_rate=2.0 lies outside its range loguniform"):
        space.config_of({**good, "learning_rate": 2.0})
    with pytest.raises(ValueError, match="hidden=16.5 lies outside"):
        space.config_of({**good, "hidden": 16.5})
    with pytest.raises(ValueError, match="optimizer='adamw' is not one of its choices"):
        space.config_of({**good, "optimizer": "adamw"})


def test_bad_ranges_are_refused_before_anything_runs():
    base = zoo.cnn_config()
    cases = [
        ({"learning_rate": uniform(0, 1)}, r"low end\) give an invalid model: learning_rate"),
        ({"momentum": uniform(0.5, 1.0)}, r"high end\) give an invalid model: momentum"),
        ({"batch_size": uniform(16, 64)}, "batch_size=uniform.*needs a scalar.*or an intrange"),
        ({"warmup_fraction": uniform(0.1, 0.2)}, "warmup_fraction is static"),
        ({"optimizer": intrange(1, 3)}, "optimizer takes str values"),
        ({"pool": intrange(1, 3)}, "pool takes tuple"),
        ({"learning_rate": 0.01}, "must be a list of values or a range"),
    ]
    for choices, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            SearchSpace(base, **choices)
    with pytest.raises(ValueError, match="base model's dense is empty"):
        SearchSpace(zoo.cnn_config(dense=()), dense=intrange(4, 8))


def test_a_condition_can_drop_a_value_that_is_invalid_elsewhere():
    """Weight decay only for AdamW, with Adam among the optimizers: Adam with weight decay is
    not a model, but the condition drops the decay there, so the space is valid."""
    base = zoo.mlp_config(optimizer="adam")
    when = {"weight_decay": lambda c: c.optimizer == "adamw"}
    finite = SearchSpace(base, optimizer=["adam", "adamw"], weight_decay=[0.0, 0.1], when=when)
    assert [(m.optimizer, m.weight_decay) for m in finite] == [
        ("adam", 0.0),
        ("adamw", 0.0),
        ("adamw", 0.1),
    ]
    ranged = SearchSpace(
        base, optimizer=["adam", "adamw"], weight_decay=loguniform(1e-4, 1e-1), when=when
    )
    models = ranged.sample(200, seed=0)
    assert all((m.weight_decay > 0) == (m.optimizer == "adamw") for m in models)
    assert {m.optimizer for m in models} == {"adam", "adamw"}
    with pytest.raises(ValueError, match="has no decoupled weight decay"):  # no condition
        SearchSpace(base, optimizer=["adam", "adamw"], weight_decay=uniform(0.1, 1))


def test_a_space_with_ranges_gives_one_clear_error_for_its_list():
    space = _conditioned()
    for use in (
        len,
        list,
        iter,
        lambda s: s.models,
        lambda s: s[0],
        lambda s: s.names(),
        lambda s: s.n_cohorts,
        lambda s: s.cohort_ids(),
        lambda s: s.programs(),
        lambda s: s.to_frame(),
        lambda s: [m for m in s],
    ):
        with pytest.raises(InfiniteSpaceError) as caught:
            use(space)
        message = str(caught.value)
        assert "has ranges" in message and "momentum=uniform(0.5, 0.95)" in message
        assert "jrobust.search(" in message and "space.sample(n, seed=" in message
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    assert bool(space) and "with ranges" in repr(space)
    finite = SearchSpace(zoo.paper_config(1), learning_rate=[1e-4, 1e-3])
    for combined in (lambda: space + finite, lambda: finite + space, lambda: space + space):
        with pytest.raises(InfiniteSpaceError, match="do not add up"):
            combined()
    assert len(finite + finite) == 2  # finite spaces still add up


def test_finite_spaces_keep_their_models_names_and_ids():
    """Regression: a space of lists expands exactly as the plain product did."""
    base = zoo.paper_config(1)
    choices = {
        "optimizer": ["sgd", "nadam"],
        "momentum": [0.0, 0.9],
        "learning_rate": [1e-4, 1e-3],
        "dense": [(9,), (16, 9)],
    }
    space = SearchSpace(base, when={"momentum": lambda c: c.optimizer == "sgd"}, **choices)
    expected = []  # the reference: the product in the order given, conditions, repeats dropped
    for opt, mom, lr, dense in itertools.product(*choices.values()):
        arch = dataclasses.replace(base.architecture, dense=dense)
        mom = mom if opt == "sgd" else base.momentum
        model = dataclasses.replace(
            base, optimizer=opt, momentum=mom, learning_rate=lr, architecture=arch
        )
        if model not in expected:
            expected.append(model)
    assert space.models == expected and len(space) == 12
    assert [space[i] for i in range(12)] == expected and list(space) == expected
    assert space.names()[:4] == [
        "opt=sgd momentum=0 lr=0.0001 dense=9",
        "opt=sgd momentum=0 lr=0.0001 dense=16-9",
        "opt=sgd momentum=0 lr=0.001 dense=9",
        "opt=sgd momentum=0 lr=0.001 dense=16-9",
    ]
    assert space.names()[8] == "opt=nadam momentum=0.9 lr=0.0001 dense=9"
    assert space.cohort_ids() == [0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3]
    assert list(space.to_frame().model_id) == list(range(12))
    built = build_space(
        parse_space_text(
            '[base]\nmodel = "mlp"\n[choices]\nlearning_rate = [1e-3, 1e-2]\nhidden = [[8], [16]]\n'
        )["space"]
    )
    assert built.names() == [
        "mlp lr=0.001 hidden=8",
        "mlp lr=0.001 hidden=16",
        "mlp lr=0.01 hidden=8",
        "mlp lr=0.01 hidden=16",
    ]
    assert [m.architecture.hidden for m in built] == [(8,), (16,), (8,), (16,)]


# ------------------------------------------------------------------------------ the envelope
WIDTHS = {"conv", "dense", "hidden"}


def _covered(model, variant) -> bool:
    """``model`` trains as a lane of ``variant``: equal in every static field but the widths,
    which are at most the variant's, layer by layer, at the same depth."""
    static = lambda m: {k: v for k, v in m.static_key() if k != "architecture"}
    if static(model) != static(variant):
        return False
    a, b = model.architecture, variant.architecture
    if type(a) is not type(b):
        return False
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in WIDTHS:
            if len(x) != len(y) or any(i > j for i, j in zip(x, y, strict=True)):
                return False
        elif x != y:
            return False
    return True


def test_envelope_covers_every_sample_of_an_mlp_space():
    space = SearchSpace(
        zoo.mlp_config(hidden=(32, 32)),
        optimizer=["adam", "sgd"],
        momentum=uniform(0.5, 0.95),
        learning_rate=loguniform(1e-5, 1.0),
        hidden=intrange(8, 64, log=True),
        activation=["relu", "tanh"],
        epochs=intrange(1, 3),
        when={"momentum": lambda c: c.optimizer == "sgd"},
    )
    envelope = space.envelope()
    # 2 optimizers x 2 activations x 3 epochs, every one at the widest hidden layers
    expected = {
        (opt, act, epochs)
        for opt, act, epochs in itertools.product(["adam", "sgd"], ["relu", "tanh"], [1, 2, 3])
    }
    assert {(m.optimizer, m.architecture.activation, m.epochs) for m in envelope} == expected
    assert len(envelope) == 12 == len({m.static_key() for m in envelope})
    assert {m.architecture.hidden for m in envelope} == {(64, 64)}
    assert all(m.hyperparameters() == space.base.hyperparameters() for m in envelope)
    samples = space.sample(300, seed=0)
    for model in samples:
        covering = [v for v in envelope if _covered(model, v)]
        assert len(covering) == 1, model
        # and jrobust._src.programs can make the sample a lane of its variant's program
        assert merge_signature(model) == merge_signature(covering[0]) is not None
    # the widths vary among samples, so "covered" is not "equal"
    assert sum(m.static_key() in {v.static_key() for v in envelope} for m in samples) < 300


def test_envelope_covers_every_sample_of_a_cnn_space_with_conditional_widths():
    space = SearchSpace(
        zoo.cnn_config(conv=(8, 16), pool=(2, "global"), dense=(16,)),
        conv=intrange(4, 24),
        dense=intrange(4, 32, log=True),
        optimizer=["adamw", "nadam"],
        weight_decay=loguniform(1e-4, 1e-1),
        batch_size=[32, 64],
        when={
            "weight_decay": lambda c: c.optimizer == "adamw",
            "dense": lambda c: c.batch_size == 32,
        },
    )
    envelope = space.envelope()
    got = {(m.optimizer, m.batch_size): m.architecture for m in envelope}
    assert len(envelope) == 4 == len(got)
    for (opt, batch), arch in got.items():
        assert arch.conv == (24, 24)
        # where the condition fails, dense keeps the base's width
        assert arch.dense == ((32,) if batch == 32 else (16,)), (opt, batch)
    for model in space.sample(300, seed=1):
        (covering,) = [v for v in envelope if _covered(model, v)]
        assert merge_signature(model) == merge_signature(covering) is not None


def test_envelope_of_a_finite_space_is_its_cohorts():
    space = SearchSpace(
        zoo.paper_config(1),
        learning_rate=[1e-4, 1e-3],
        dense=[(9,), (16, 9)],
        l2=[0.0, 0.01],
        batch_size=[32, 64],
    )
    envelope = space.envelope()
    assert len(envelope) == space.n_cohorts == 4
    assert {m.static_key() for m in envelope} == {m.static_key() for m in space}
    paper = jrobust.paper_space("energy")
    assert len(paper.envelope()) == paper.n_cohorts == 768
    huge = SearchSpace(zoo.mlp_config(), train_size=intrange(100, 2000), epochs=intrange(1, 99))
    with pytest.raises(ValueError, match="envelope would enumerate 188199 combinations"):
        huge.envelope(max_combinations=1000)


def test_scalar_ranges_never_add_static_variants():
    space = SearchSpace(
        zoo.mlp_config(optimizer="adamw"),
        **{f: uniform(0.01, 0.5) for f in ("weight_decay", "l2", "momentum", "b1")},
        learning_rate=loguniform(1e-5, 1.0),
        eps=loguniform(1e-9, 1e-6),
        b2=uniform(0.9, 0.999),
    )
    assert set(space.parameters) == set(SCALAR_FIELDS)
    assert len(space.envelope()) == 1
    assert len({m.static_key() for m in space.sample(100, seed=0)}) == 1


# ------------------------------------------------------------------------------ space files
RANGED = """
[base]
model = "mlp"
hidden = [32, 32]
epochs = 2

[choices]
learning_rate = { loguniform = [1e-5, 1.0] }
momentum = { uniform = [0.5, 0.95] }
hidden = { intrange = [8, 64], log = true }
epochs = { intrange = [1, 3] }
optimizer = ["adam", "sgd"]

[when]
momentum = { optimizer = "sgd" }

[race]
warmup = 2
"""


def test_space_file_with_each_range_form_parses_and_round_trips():
    parsed = parse_space_text(RANGED, "ranged.toml")
    space = build_space(parsed["space"])
    assert space.parameters == {
        "learning_rate": loguniform(1e-5, 1.0),
        "momentum": uniform(0.5, 0.95),
        "hidden": intrange(8, 64, log=True),
        "epochs": intrange(1, 3),
        "optimizer": Categorical(["adam", "sgd"]),
    }
    for model in space.sample(100, seed=0):  # the [when] condition holds for samples
        assert model.optimizer == "sgd" or model.momentum == 0.9
    doc = {"space": parsed["space"], "race": parsed["race"]}
    text = to_toml(doc)
    assert "learning_rate = { loguniform = [1e-05, 1.0] }" in text
    assert "hidden = { intrange = [8, 64], log = true }" in text
    assert tomllib.loads(text) == doc
    again = build_space(parse_space_text(text, "again.toml")["space"])
    assert again.parameters == space.parameters
    assert again.sample(20, seed=3) == space.sample(20, seed=3)
    # Distribution objects in Python tables are written as the same inline tables
    python = {"choices": {"learning_rate": loguniform(1e-5, 1.0), "depth": intrange(1, 4)}}
    assert tomllib.loads(to_toml(python)) == {
        "choices": {"learning_rate": {"loguniform": [1e-5, 1.0]}, "depth": {"intrange": [1, 4]}}
    }
    assert build_space(
        {"base": {"model": "mlp"}, "choices": {"learning_rate": loguniform(1e-4, 1e-2)}}
    ).parameters == {"learning_rate": loguniform(1e-4, 1e-2)}


FORMS = r"\{ uniform = \[low, high\] \}.*\{ intrange = \[low, high\], log = true \}"


@pytest.mark.parametrize(
    "line, message",
    [
        ("learning_rate = { normal = [0, 1] }", rf"learning_rate: unknown key.*'normal'.*{FORMS}"),
        ("learning_rate = {}", rf"learning_rate: no kind of range.*{FORMS}"),
        ("learning_rate = { uniform = [0.1, 1], loguniform = [0.1, 1] }", "several kinds"),
        ("learning_rate = { uniform = [0.1, 1], step = 2 }", r"unknown key\(s\) \['step'\]"),
        ("learning_rate = { uniform = [1] }", r"learning_rate: uniform takes \[low, high\]"),
        ("learning_rate = { uniform = [2, 1] }", "learning_rate: uniform: low must be below"),
        ("learning_rate = { loguniform = [0, 1] }", "learning_rate: loguniform: .*needs low > 0"),
        ("learning_rate = { uniform = ['a', 1] }", "learning_rate: uniform: low must be a number"),
        ("learning_rate = { uniform = [0.1, 1], log = true }", "learning_rate: log = .*intrange"),
        ("hidden = { intrange = [1.5, 4] }", "hidden: intrange: low must be an integer"),
        ("hidden = { intrange = [1, 4], log = 'yes' }", "hidden: intrange: log must be True"),
        ("batch_size = { uniform = [16, 64] }", r"batch_size=uniform\(16, 64\): .*needs a scalar"),
        ("learning_rate = { uniform = [0, 1] }", "learning_rate must be positive"),
        ("learning_rate = 0.001", "learning_rate must be a non-empty list or a range"),
    ],
)
def test_bad_range_forms_name_the_key_and_line(line, message):
    text = f'[base]\nmodel = "mlp"\n\n[choices]\n{line}\n'
    with pytest.raises(SpaceError, match=message) as caught:
        parse_space_text(text, "bad.toml")
    assert str(caught.value).startswith("bad.toml:5: ")


def test_ranges_in_the_wrong_place():
    with pytest.raises(SpaceError, match=r"bad.toml:3: \[base\] learning_rate: .*belong in"):
        parse_space_text(
            '[base]\nmodel = "mlp"\nlearning_rate = { loguniform = [1e-5, 1.0] }\n', "bad.toml"
        )
    two = (
        '[[space]]\n[space.base]\nmodel = "mlp"\n[space.choices]\nlearning_rate = [1e-3]\n\n'
        '[[space]]\n[space.base]\nmodel = "cnn"\n[space.choices]\n'
        "learning_rate = { loguniform = [1e-5, 1.0] }\n"
    )
    with pytest.raises(SpaceError, match="bad.toml:11: space 2 of 2 has ranges.*do not add up"):
        parse_space_text(two, "bad.toml")
