"""Deprecated: the architectures moved to ``jrobust.models.architectures`` (``jrobust.models.CNN``)."""

from jrobust._deprecated import moved_module

moved_module(__name__, "jrobust.models.architectures", globals())
