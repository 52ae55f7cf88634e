"""Deprecated: space files moved to ``jrobust.space`` (``jrobust.space.build_space``, ...)."""

from jrobust._deprecated import moved_module

moved_module(__name__, "jrobust.space", globals())
