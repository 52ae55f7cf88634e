"""RaceSettings: one set of defaults, validated once, with a TOML form that round-trips."""

import dataclasses
import tomllib

import numpy as np
import pytest

import jrobust
from jrobust._src.rules import Quantile, TwoSampleTest, get_rule
from jrobust._src.settings import EXECUTION_FIELDS, RaceSettings, parse_rule
from jrobust._src.space.files import to_toml


def test_defaults_are_documented_and_resolved():
    s = RaceSettings()
    assert (s.statistic, s.rule, s.max_instances, s.n_winners, s.seed) == (
        "max",
        "halving",
        50,
        1,
        0,
    )
    assert s.warmup is None and s.instances_per_round is None
    jax_side, evaluator_side = s.resolved(), s.resolved(evaluator=True)
    assert (jax_side.warmup, jax_side.instances_per_round) == (3, "auto")
    assert (evaluator_side.warmup, evaluator_side.instances_per_round) == (3, 1)
    for field in dataclasses.fields(RaceSettings):  # every field is documented in the class
        assert f"{field.name}:" in RaceSettings.__doc__ or f"{field.name}," in RaceSettings.__doc__


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(warmup=0), ValueError, "warmup must be a positive integer, got 0"),
        (dict(warmup=True), ValueError, "warmup must be a positive integer"),
        (dict(warmup=2.5), ValueError, "warmup must be a positive integer"),
        (dict(max_instances=2), ValueError, "max_instances=2 is smaller than warmup=3"),
        (dict(rule="welch", warmup=1), ValueError, "too small for rule 'welch'"),
        (dict(alpha=0.1), ValueError, "alpha applies to the test rules"),
        (dict(correction="holm"), ValueError, "correction applies to the test rules"),
        (dict(rule="welch", correction="sidak"), ValueError, "correction"),
        (dict(rule="wilcoxon", warmup=2), ValueError, "too small for rule 'wilcoxon'"),
        (dict(rule="welch", alpha=1.5), ValueError, r"alpha must be a number in \(0, 1\)"),
        (dict(instances_per_round="fast"), ValueError, "a positive integer or 'auto'"),
        (dict(budget=0), ValueError, "budget must be a positive integer"),
        (dict(n_winners=0), ValueError, "n_winners must be a positive integer"),
        (dict(seed=-1), ValueError, r"seed must be an integer in \[0, 2147483647\], got -1"),
        (dict(min_bucket=0), ValueError, "min_bucket must be a positive integer"),
        (dict(conv_impl="gpu"), ValueError, "conv_impl must be"),
        (dict(statistic="average"), ValueError, "unknown statistic 'average'"),
        (dict(rule="thirds"), ValueError, "unknown rule 'thirds'"),
        (dict(rule="threshold"), ValueError, "'threshold' needs its value"),
        (dict(rule="halving:2"), ValueError, "takes no value"),
        (dict(speed=3), TypeError, "unknown race setting"),
        (dict(elites=-1), ValueError, "elites must be an integer >= 0"),
        (dict(elites=1.5), ValueError, "elites must be an integer >= 0"),
        (dict(final_instances=-2), ValueError, "final_instances must be an integer >= 0"),
        (dict(fidelity=[2000, 500]), ValueError, r"must increase strictly.*\(500 after 2000\)"),
        (dict(fidelity=[]), ValueError, "at least one training size"),
        (dict(fidelity=[100, -5]), ValueError, "fidelity size must be a positive integer"),
        (dict(fidelity=[100.5]), ValueError, "fidelity size must be a positive integer"),
        (dict(fidelity="many"), ValueError, "increasing training sizes"),
    ],
)
def test_every_bad_setting_is_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        RaceSettings.of(None, **kwargs)


def test_a_rule_needing_a_longer_warmup_raises_the_default():
    assert RaceSettings(rule="welch").warmup_for() == 3
    assert RaceSettings(rule=TwoSampleTest("levene")).resolved().warmup == 3


@pytest.mark.parametrize(
    "settings",
    [
        RaceSettings(),
        RaceSettings(statistic="q3+iqr", rank_by="mean", rule="quantile:0.25", warmup=4),
        RaceSettings(rule="welch", alpha=0.1, patience=2, budget=100, n_winners=2, seed=7),
        RaceSettings(rule="wilcoxon", warmup=5, correction="holm"),
        RaceSettings(rule="friedman", alpha=0.1, correction="bonferroni"),
        RaceSettings(rule="threshold:0.03", instances_per_round=2, max_bucket=64),
        RaceSettings(statistic="q90", instances_per_round="auto", compilation_cache=False),
        RaceSettings(elites=2, n_winners=3, final_instances=10),
        RaceSettings(fidelity=(500, 2000, 8000, 32000), elites=1),
        RaceSettings(fidelity=(1000,), final_instances=0),
    ],
)
def test_toml_round_trip(settings):
    text = to_toml({"race": settings.to_table()})
    back = RaceSettings.from_table(tomllib.loads(text)["race"])
    assert back == settings


def test_the_new_settings_in_toml_and_their_identity():
    s = RaceSettings(fidelity=[500, 2000], elites=1, final_instances=5, n_winners=2)
    assert s.fidelity == (500, 2000)  # a list is kept as a tuple: settings stay hashable
    table = s.to_table()
    assert (table["fidelity"], table["elites"], table["final_instances"]) == ([500, 2000], 1, 5)
    assert "fidelity = [500, 2000]" in to_toml({"race": table})
    assert RaceSettings.from_table({"fidelity": "500,2000"}).fidelity == (500, 2000)
    assert RaceSettings(fidelity=[500]).identity() != RaceSettings().identity()
    assert RaceSettings(elites=1).identity() != RaceSettings().identity()
    # at their defaults, the new fields leave the identity of an earlier race as it was
    assert not {"elites", "final_instances", "fidelity"} & set(RaceSettings().identity())
    assert RaceSettings().describe()["fidelity"] is None
    assert RaceSettings(fidelity=(5, 9)).describe()["fidelity"] == [5, 9]


def test_built_rules_write_their_name_and_options():
    table = RaceSettings(rule=get_rule("levene", alpha=0.1, patience=3)).to_table()
    assert (table["rule"], table["alpha"], table["patience"]) == ("levene", 0.1, 3)
    assert RaceSettings(rule=Quantile(0.25)).to_table()["rule"] == "quantile:0.25"
    assert parse_rule(table["rule"], alpha=0.1).alpha == 0.1
    with pytest.raises(TypeError, match="no TOML form"):
        RaceSettings(rule=lambda losses, mask, alive, r: alive).to_table()
    with pytest.raises(TypeError, match="no TOML form"):
        RaceSettings(statistic=np.ptp).to_table()


def test_none_in_toml_and_unknown_keys():
    assert RaceSettings.from_table({"budget": "none", "warmup": 2}).budget is None
    with pytest.raises(TypeError, match="unknown race setting.*'speed'"):
        RaceSettings.from_table({"speed": 1})


def test_execution_fields_do_not_change_the_identity():
    a, b = RaceSettings(max_bucket=4, min_bucket=2), RaceSettings(max_bucket=64)
    assert a.identity() == b.identity()
    assert set(EXECUTION_FIELDS) <= set(RaceSettings.field_names())
    assert RaceSettings(seed=1).identity() != RaceSettings(seed=2).identity()


def test_race_takes_settings_or_keywords_alike():
    spread = np.linspace(0.1, 1.0, 8)
    ev = lambda m, i: 1.0 + spread[m] * np.sin(13.0 * i + m)  # noqa: E731
    settings = RaceSettings(statistic="std", warmup=4, rule="quantile:0.5")
    by_object = jrobust.race(8, evaluator=ev, settings=settings)
    by_keywords = jrobust.race(8, evaluator=ev, statistic="std", warmup=4, rule="quantile:0.5")
    by_mapping = jrobust.race(8, evaluator=ev, settings={"statistic": "std", "warmup": 4,
                                                        "rule": "quantile:0.5"})  # fmt: skip
    assert by_object.ledger.drop(columns="seconds").equals(
        by_keywords.ledger.drop(columns="seconds")
    )
    assert by_mapping.winner_id == by_object.winner_id
    overridden = jrobust.race(8, evaluator=ev, settings=settings, warmup=6)
    assert overridden.settings["warmup"] == 6 and by_object.settings["warmup"] == 4
    with pytest.raises(TypeError, match="unknown race setting"):
        jrobust.race(8, evaluator=ev, settings=settings, spead=1)
