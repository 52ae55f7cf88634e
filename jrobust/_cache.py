"""JAX's persistent compilation cache, on by default for races.

A space with many architectures compiles one program per cohort and stack size; the persistent
cache makes a second run of the same space compile nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["enable_compilation_cache", "default_cache_dir"]

_enabled: str | None = None


def default_cache_dir() -> Path:
    """``$JROBUST_CACHE_DIR`` or ``~/.cache/jrobust`` (``$XDG_CACHE_HOME`` respected)."""
    env = os.environ.get("JROBUST_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jrobust"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str:
    """Turn on JAX's persistent compilation cache in ``path`` (default: the user cache dir /jax)."""
    global _enabled
    target = str(Path(path) if path is not None else default_cache_dir() / "jax")
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
