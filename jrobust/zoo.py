"""``jrobust.zoo``: the ready model configurations; the module that holds them is
``jrobust/presets.py``, and ``import jrobust.zoo`` gives that very module."""

import sys

from jrobust import presets

sys.modules[__name__] = presets
