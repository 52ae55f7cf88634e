"""Run folders: a race saved as tables, figures, a summary and an HTML report.

- ``layout``: the files of a folder (see its docstring) and how each is written;
- ``files``: ``save_run`` and ``load_run``;
- ``summary``: the best models as a table and ``summary.md``;
- ``report``: the figures and the self-contained ``report.html``.

Public through ``jrobust.runfolder``; this package init is empty on purpose (each name
is imported from the module that defines it).
"""
