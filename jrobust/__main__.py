"""``python -m jrobust``: the ``jrobust`` command (see ``jrobust.cli``)."""

import sys

from jrobust.cli import main

sys.exit(main())
