"""Space files: TOML tables to models, errors naming file and line, the TOML writer."""

import tomllib

import pytest

from jrobust._src.space.builtin import default_spec
from jrobust._src.space.files import (
    SpaceError,
    build_space,
    parse_space_text,
    to_toml,
    with_overrides,
)

GOOD = """
[base]
model = "mlp"
hidden = [8]
epochs = 2
early_stopping = "none"

[choices]
learning_rate = [1e-3, 1e-2]
optimizer = ["adam", "sgd"]
momentum = [0.0, 0.9]

[when]
momentum = { optimizer = "sgd" }

[race]
rule = "welch"
alpha = 0.1
"""


def test_parse_space_text():
    parsed = parse_space_text(GOOD, "good.toml")
    assert parsed["race"] == {"rule": "welch", "alpha": 0.1}
    space = build_space(parsed["space"])
    # adam models keep the base momentum (0.9), so momentum only varies for sgd: 2 + 4 models
    assert len(space) == 6
    assert all(m.early_stopping is None for m in space)
    assert space[0].architecture.hidden == (8,)
    assert len(set(space.names())) == 6


@pytest.mark.parametrize(
    "text, message",
    [
        ('[base]\nmodel = "mlp"\nepochs = \n', r"bad.toml:3: malformed TOML"),
        (
            '[base]\nmodel = "mlp"\n\n[choices]\nlerning_rate = [1, 2]\n',
            r"bad.toml:5: unknown field 'lerning_rate'",
        ),
        ('[base]\nmodel = "mlpx"\n', r"bad.toml:2: unknown model 'mlpx'"),
        (
            '[base]\nmodel = "mlp"\nepochs = -1\n',
            r"bad.toml:3: .*epochs must be a positive integer",
        ),
        ("[choices]\nepochs = 3\n", r"bad.toml:2: .*must be a non-empty list"),
        ('[race]\nstatistik = "std"\n', r"bad.toml:2: \[race\] unknown setting 'statistik'"),
        ("[bogus]\nx = 1\n", r"bad.toml:1: unknown table or key 'bogus'"),
    ],
)
def test_space_errors_name_file_and_line(text, message):
    with pytest.raises(SpaceError, match=message):
        parse_space_text(text, "bad.toml")


def test_several_spaces_and_overrides():
    spec = default_spec()
    space = build_space(spec)
    assert (len(space), space.n_cohorts) == (16, 2)
    assert space.names()[0].startswith("paper1 lr=")
    fixed = with_overrides(spec, epochs=1, learning_rate=1e-3)
    assert fixed[0]["base"]["epochs"] == 1 and "learning_rate" not in fixed[0]["choices"]
    assert spec[0]["choices"]["learning_rate"], "with_overrides must not change its input"
    assert len(build_space(fixed)) == 4
    position = build_space(default_spec(target="x"))
    assert {m.target for m in position} == {"x"} and {m.name for m in position} == {
        "paper3",
        "paper4",
    }


def test_toml_writer_round_trips():
    doc = {
        "jrobust": {"version": "0.1.0"},
        "race": {"rule": "halving", "alpha": 0.05, "flag": True},
        "space": default_spec()
        + [
            {
                "base": {"model": "cnn", "pool": [2, "global"], "name": 'a "q"'},
                "choices": {"conv": [[16], [16, 32]]},
            }
        ],
    }
    text = to_toml(doc, header="resolved\nconfiguration")
    assert text.startswith("# resolved\n# configuration\n")
    assert tomllib.loads(text) == doc
    assert tomllib.loads(to_toml({"x": {"none": None}})) == {"x": {"none": "none"}}
