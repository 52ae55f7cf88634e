"""The package's face: the public names of 0.1 keep working without a warning, the old module
paths warn and still work, and ``import jrobust`` loads no plotting and no command-line code."""

import json
import subprocess
import sys
import warnings

import pytest

import jrobust

# jrobust.__all__ of 0.1, every name of which must keep working silently.
PUBLIC_0_1 = [
    "ModelConfig", "Population", "SearchSpace", "SelectionResult", "count_params", "data",
    "exhaustive", "get_rule", "get_statistic", "load_run", "make_mesh", "make_trainer",
    "paper_space", "parallel", "race", "rules", "save_run", "stats", "train_instances",
    "train_stack", "zoo",
]  # fmt: skip
ZOO_0_1 = ["paper_config", "nas_config", "mlp_config", "cnn_config", "resnet18_config"]


def test_public_names_of_0_1_work_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in PUBLIC_0_1:
            assert getattr(jrobust, name) is not None
            assert name in jrobust.__all__
        for name in ZOO_0_1:
            assert callable(getattr(jrobust.zoo, name))
        assert jrobust.zoo.paper_config(1).optimizer == "nadam"
        assert callable(jrobust.data.calorimeter)
        import jrobust.zoo as zoo_module  # the module path works too, and is the same module

        assert zoo_module is jrobust.zoo
        from jrobust.zoo import paper_config

        assert paper_config is jrobust.zoo.paper_config


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("jrobust.spaces", "build_space", "jrobust.space"),
        ("jrobust.results", "save_run", "jrobust.runfolder"),
        ("jrobust.models.zoo", "CNN", "jrobust.models.architectures"),
    ],
)
def test_old_module_paths_warn_and_work(old, name, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*import {new}"):
        module = __import__(old, fromlist=[name])
    new_module = __import__(new, fromlist=[name])
    assert getattr(module, name) is getattr(new_module, name)


@pytest.mark.parametrize(("name", "new"), [("CNN", "jrobust.models"), ("count_params", "jrobust")])
def test_names_that_moved_off_zoo_warn_and_work(name, new):
    with pytest.warns(DeprecationWarning, match=f"jrobust.zoo.{name} is deprecated.*{new}.{name}"):
        value = getattr(jrobust.zoo, name)
    assert value is getattr(__import__(new, fromlist=[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        jrobust.zoo.nothing  # noqa: B018


def test_one_version_everywhere():
    import tomllib
    from pathlib import Path

    from jrobust._version import __version__

    assert jrobust.__version__ == __version__
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "version" in project.get("dynamic", []) and "version" not in project


def test_import_loads_no_plotting_and_no_command_line():
    code = (
        "import sys, json, jrobust; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'rich') or m.startswith('jrobust.cli') or m == 'jrobust.plots')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = json.loads(done.stdout)
    assert not [m for m in loaded if m.startswith(("matplotlib", "jrobust.cli", "jrobust.plots"))]
