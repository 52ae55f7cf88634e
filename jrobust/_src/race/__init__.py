"""The race as data: its state, its ledger and the small steps that change them.

``Race`` (``race.py``) drives Algorithm 1 of Boldyrev, Ratnikov, Shevelev (IEEE Access 2025) by
ask and tell; each module holds one concern (the work of a round, the ledger, the state record,
the stage schedule, the one place that removes models, ranking and dominance, checkpoints). This
package imports nothing on purpose, so its modules import each other without a circle.
"""
