"""Old module paths kept for one release: importing one warns and names the new path."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__all__ = ["moved_module", "moved_names"]


def moved_module(old: str, new: str, namespace: dict[str, Any]) -> None:
    """Fill ``namespace`` (an old module's globals) with the public names of ``new`` and warn."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; import {new} instead",
        DeprecationWarning,
        stacklevel=3,
    )
    module = importlib.import_module(new)
    names = list(getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]))
    namespace.update({name: getattr(module, name) for name in names})
    namespace["__all__"] = names


def moved_names(module: str, names: dict[str, str]):
    """A module ``__getattr__`` serving names that moved (``{name: "new.module"}``) with a warning."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed in the next release; "
            f"use {names[name]}.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__
