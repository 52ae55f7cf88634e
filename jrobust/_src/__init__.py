"""jrobust's internals. Nothing here is public: the public names are re-exported once by
``jrobust`` and its public modules (``jrobust._src.data``, ``jrobust._src.presets``, ``jrobust._src.space``, ...),
and may move within ``_src`` from one release to the next."""
