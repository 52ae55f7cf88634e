"""Scale-out, by concern: ``placement`` (the ``"models"`` mesh and where a stack's arrays
live), ``hosts`` (agreement between the processes of a multi-host run), ``memory`` (how many
lanes fit on a device) and ``oom`` (splitting a stack that ran out of memory). Public through
``jrobust.parallel``. Empty on purpose: the trainer imports ``placement`` alone."""
