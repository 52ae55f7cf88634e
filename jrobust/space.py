"""Search spaces: the product space, space files (TOML) and ready spaces.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.space.builtin import BUILTIN_RACE, default_spec, paper_space
from jrobust._src.space.distributions import (
    Categorical,
    Distribution,
    intrange,
    loguniform,
    uniform,
)
from jrobust._src.space.files import (
    DATA_KEYS,
    RACE_KEYS,
    ZOO_MODELS,
    SpaceError,
    build_model,
    build_space,
    load_space_file,
    parse_space_text,
    to_toml,
    with_overrides,
)
from jrobust._src.space.product import InfiniteSpaceError, SearchSpace

__all__ = [
    "BUILTIN_RACE",
    "DATA_KEYS",
    "RACE_KEYS",
    "ZOO_MODELS",
    "Categorical",
    "Distribution",
    "InfiniteSpaceError",
    "SearchSpace",
    "SpaceError",
    "build_model",
    "build_space",
    "default_spec",
    "intrange",
    "load_space_file",
    "loguniform",
    "paper_space",
    "parse_space_text",
    "to_toml",
    "uniform",
    "with_overrides",
]
