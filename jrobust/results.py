"""Deprecated: run folders moved to ``jrobust.runfolder`` (``jrobust.save_run``, ``jrobust.load_run``)."""

from jrobust._deprecated import moved_module

moved_module(__name__, "jrobust.runfolder", globals())
