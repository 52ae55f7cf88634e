"""SearchSpace: products, conditions, cohorts, names; the paper's 6,912-model space."""

import pytest

import jrobust
from jrobust._src import presets as zoo


def test_bad_spaces():
    with pytest.raises(ValueError, match="empty"):
        jrobust.race([], evaluator=lambda m, i: m * 1.0)
    with pytest.raises(ValueError, match="unknown search-space field 'colour'"):
        jrobust.SearchSpace(zoo.paper_config(1), colour=["red"])
    with pytest.raises(ValueError, match="choices for 'learning_rate' are empty"):
        jrobust.SearchSpace(zoo.paper_config(1), learning_rate=[])
    with pytest.raises(ValueError, match="invalid model"):
        jrobust.SearchSpace(zoo.paper_config(1), optimizer=["adam", "bogus"])
    with pytest.raises(ValueError, match="use optimizer='adamw'"):  # conflicting fields
        jrobust.SearchSpace(zoo.paper_config(1), optimizer=["adam"], weight_decay=[0.1])


def test_search_space_product_conditions_and_cohorts():
    base = zoo.paper_config(1)
    space = jrobust.SearchSpace(
        base,
        optimizer=["sgd", "nadam"],
        momentum=[0.0, 0.9],
        learning_rate=[1e-4, 1e-3],
        dense=[(9,), (16, 9)],
        when={"momentum": lambda c: c.optimizer == "sgd"},
    )
    # sgd: 2 momenta x 2 lr x 2 dense = 8; nadam: 1 x 2 x 2 = 4
    assert len(space) == 12
    frame = space.to_frame()
    assert list(frame.model_id) == list(range(12)) and frame.name.is_unique
    # cohorts: optimizer x dense (momentum and lr are scalars)
    assert space.n_cohorts == 4
    assert (
        jrobust.SearchSpace(
            base,
            optimizer=["sgd", "nadam"],
            momentum=[0.0, 0.9],
            learning_rate=[1e-4, 1e-3],
            dense=[(9,), (16, 9)],
            when={"momentum": lambda c: c.optimizer == "sgd"},
        ).names()
        == space.names()
    )
    combined = space + jrobust.SearchSpace(zoo.paper_config(2))
    assert len(combined) == 13


def test_paper_space_spans_6912_models_under_30k_parameters():
    space = jrobust.paper_space("energy")
    assert len(space) == 6912 == 2**8 * 3**3
    assert space.n_cohorts == 768
    archs = {(m.architecture, m.side_features): m for m in space}
    counts = [jrobust.count_params(m) for m in archs.values()]
    assert max(counts) <= 30_000 and len(archs) == 64
    assert all(
        len(m.architecture.conv) <= 2 and len(m.architecture.dense) + 1 <= 4 for m in archs.values()
    )
