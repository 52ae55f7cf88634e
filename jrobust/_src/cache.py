"""jrobust's cache folder, and JAX's persistent compilation cache inside it.

One folder holds everything jrobust caches: ``$JROBUST_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/jrobust``, else ``~/.cache/jrobust``. Generated calorimeter populations live
in its ``data`` subfolder and compiled programs in ``jax``. A space with many architectures
compiles one program per stack shape; the persistent cache makes a second run of the same space
compile nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["cache_dir", "enable_compilation_cache"]

_enabled: str | None = None


def cache_dir(kind: str | None = None) -> Path:
    """jrobust's cache folder, or its subfolder ``kind`` (``"data"``, ``"jax"``).

    Example:
      >>> cache_dir("data").name
      'data'
    """
    env = os.environ.get("JROBUST_CACHE_DIR")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "jrobust"
    return root / kind if kind else root


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str:
    """Turn on JAX's persistent compilation cache in ``path`` (default: ``cache_dir("jax")``).

    A cache folder the user configured in JAX beforehand is kept.
    """
    global _enabled
    target = str(Path(path) if path is not None else cache_dir("jax"))
    if _enabled == target:
        return target
    if _enabled is None and jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir  # the user configured one: keep it
    os.makedirs(target, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", target)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _enabled = target
    return target
