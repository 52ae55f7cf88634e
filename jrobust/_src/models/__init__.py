"""Models: the pure init/apply contract, vmap-friendly layers and the architectures.

Public names live here once: ``jrobust.models.CNN`` (not the modules that define them).

Public through ``jrobust.models``; this package init is empty on purpose (each name
is imported from the module that defines it).
"""
