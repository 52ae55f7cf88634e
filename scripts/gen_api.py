"""Write docs/api.md from the docstrings of jrobust's public names (run after changing the API).

python scripts/gen_api.py
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

MODULES = [
    ("jrobust", "The top-level API"),
    ("jrobust.zoo", "Ready model configurations"),
    ("jrobust.space", "Search spaces, space files and ready spaces"),
    ("jrobust.data", "Populations and data sources"),
    ("jrobust.stats", "Statistics and two-sample tests"),
    ("jrobust.rules", "Elimination rules"),
    ("jrobust.train", "The vectorised trainer (lower level)"),
    ("jrobust.parallel", "Devices, sharding and memory"),
    ("jrobust.distributed", "Multi-host start-up"),
    ("jrobust.runfolder", "Run folders"),
    ("jrobust.plots", "Figures"),
    ("jrobust.models", "Models and layers"),
    ("jrobust.cli", "The jrobust command"),
]


def _signature(obj) -> str:
    try:
        # object addresses (a default that is a function or a sentinel) differ in every run
        return re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(obj)))
    except (TypeError, ValueError):
        return ""


def render() -> str:
    out = [
        "# API reference",
        "",
        "Generated from the docstrings by `python scripts/gen_api.py`; "
        "the examples in them run as doctests in `tests/test_docs.py`.",
        "",
    ]
    for mod_name, title in MODULES:
        mod = importlib.import_module(mod_name)
        out += [f"## `{mod_name}`: {title}", ""]
        doc = inspect.getdoc(mod)
        if doc and mod_name != "jrobust":
            out += [doc.split("\n\n")[0], ""]
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.ismodule(obj):
                out += [
                    f"### `{mod_name}.{name}` (module)",
                    "",
                    (inspect.getdoc(obj) or "").split("\n\n")[0],
                    "",
                ]
                continue
            kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "constant"
            sig = _signature(obj) if kind != "constant" else ""
            out += [f"### `{mod_name}.{name}{sig}`", "", f"*{kind}*", ""]
            doc = inspect.getdoc(obj) if kind != "constant" else None
            if kind == "constant":
                out += [f"`{name} = {obj!r}`"[:300], ""]
            elif doc:
                out += [doc, ""]
    return "\n".join(out)


if __name__ == "__main__":
    path = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.md"
    path.write_text(render())
    print(f"wrote {path}")
