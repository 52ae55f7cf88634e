"""The package's face: the public names of 0.1 keep working without a warning, one public path
per public name (everything else under ``jrobust._src``), the compatibility paths of 0.2 gone,
and ``import jrobust`` loads no plotting and no command-line code."""

import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

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


#: The public modules of 0.3: each public name has exactly one of these as its path.
PUBLIC_MODULES = {
    "jrobust", "jrobust.cli", "jrobust.data", "jrobust.distributed", "jrobust.integrations",
    "jrobust.integrations.optuna", "jrobust.models", "jrobust.parallel", "jrobust.plots",
    "jrobust.rules", "jrobust.runfolder", "jrobust.space", "jrobust.stats", "jrobust.train",
    "jrobust.zoo",
}  # fmt: skip
#: Public packages that name nothing themselves: their public modules are their submodules.
PUBLIC_GROUPS = {"jrobust.integrations"}
#: Public modules of an optional extra: module -> the package it needs.
EXTRAS = {"jrobust.integrations.optuna": "optuna"}


def test_everything_else_is_private():
    """Below ``jrobust`` there are the public modules, ``_src`` and three private modules; every
    module under ``_src`` is private by its path."""
    import pkgutil

    names = {m.name for m in pkgutil.walk_packages(jrobust.__path__, "jrobust.")}
    top = {n for n in names if n.count(".") == 1}
    assert top - PUBLIC_MODULES == {
        "jrobust.__main__", "jrobust._src", "jrobust._startup", "jrobust._version",
    }  # fmt: skip
    assert {n for n in names if n.count(".") > 1} - PUBLIC_MODULES == {
        n for n in names if n.startswith("jrobust._src.")
    }


@pytest.mark.parametrize("module", sorted(PUBLIC_MODULES - {"jrobust"} - PUBLIC_GROUPS))
def test_a_public_module_is_a_face_that_defines_nothing(module):
    """A public module re-exports: every name in its ``__all__`` is defined under ``_src``
    (one implementation, one public path)."""
    if module in EXTRAS:
        pytest.importorskip(EXTRAS[module])
    face = importlib.import_module(module)
    assert face.__all__
    for name in face.__all__:
        value = getattr(face, name)
        origin = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if isinstance(value, int | float | str | tuple | dict | frozenset):
            continue  # constants carry no module
        if origin in ("types", "typing"):
            continue  # a type alias (e.g. Architecture, a union of the zoo's architectures)
        assert origin.startswith("jrobust._src."), (module, name, origin)


def test_a_public_group_imports_nothing_and_its_modules_are_public():
    """``import jrobust.integrations`` loads none of its optional extras (nor JAX), and each of
    its modules is a public module."""
    import pkgutil

    import jrobust.integrations as group

    assert group.__doc__ and not hasattr(group, "__all__")
    children = {m.name for m in pkgutil.iter_modules(group.__path__, "jrobust.integrations.")}
    assert children and children <= PUBLIC_MODULES
    code = (
        "import sys, json, jrobust.integrations; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('optuna', 'jax') or m.startswith('jrobust.integrations.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    "old", ["jrobust.results", "jrobust.spaces", "jrobust.models.zoo", "jrobust.state"]
)
def test_the_compatibility_paths_of_0_2_are_gone(old):
    """Removed at 0.3 (CHANGELOG.md says what moved where)."""
    sys.modules.pop(old, None)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)
    changelog = (Path(__file__).parents[1] / "CHANGELOG.md").read_text()
    assert f"`{old}`" in changelog


def test_names_that_moved_off_zoo_are_gone():
    import jrobust.models

    for name in ("CNN", "MLP", "ResNet18", "count_params"):
        assert not hasattr(jrobust.zoo, name)
    assert jrobust.models.CNN is not None and jrobust.count_params is not None


def test_one_version_everywhere():
    import tomllib

    from jrobust._version import __version__

    assert jrobust.__version__ == __version__
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "version" in project.get("dynamic", []) and "version" not in project


def test_import_loads_no_plotting_and_no_command_line():
    code = (
        "import sys, json, jrobust; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'rich') or m.startswith('jrobust._src.cli') or m == 'jrobust._src.plots')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = json.loads(done.stdout)
    assert not [
        m for m in loaded if m.startswith(("matplotlib", "jrobust._src.cli", "jrobust._src.plots"))
    ]
