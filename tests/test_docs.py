"""Docstring examples run, and the API reference covers every public name."""

import doctest
import importlib
import pathlib
import pkgutil

import pytest

import jrobust

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(jrobust.__path__, "jrobust.")
    if not m.name.endswith("__main__")
)


#: Modules of an optional extra: module -> the package it needs (their tests skip without it).
EXTRAS = {
    "jrobust.integrations.optuna": "optuna",
    "jrobust._src.integrations.optuna": "optuna",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name in EXTRAS:
        pytest.importorskip(EXTRAS[name])
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_api_reference_lists_every_public_name():
    text = (ROOT / "docs" / "api.md").read_text()
    public = {
        "jrobust": jrobust,
        "jrobust.data": jrobust.data,
        "jrobust.zoo": jrobust.zoo,
        "jrobust.space": jrobust.space,
        "jrobust.stats": jrobust.stats,
        "jrobust.rules": jrobust.rules,
    }
    for path, module in public.items():
        for name in module.__all__:
            assert f"{path}.{name}" in text, f"docs/api.md misses {path}.{name}"


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert block[0].startswith("pip install -e . && jrobust run")
    assert "pytest" in block[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test]"' in ci and "pytest" in ci
