"""Run folders: a race saved as tables, figures, a summary and an HTML report.

- ``layout``: the files of a folder (see its docstring) and how each is written;
- ``files``: ``save_run`` and ``load_run``;
- ``summary``: the best models as a table and ``summary.md``;
- ``report``: the figures and the self-contained ``report.html``.
"""

from jrobust._src.runfolder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FIGURES,
    LOCK_FILE,
    RESULT_FILE,
    TABLES,
    FolderInUse,
    RunFolderError,
    RunFolderMismatch,
    is_run_folder,
    load_run,
    read_config,
    save_run,
    summary_table,
    write_config,
    write_figures,
    write_report,
    write_summary,
    write_table,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "FIGURES",
    "FolderInUse",
    "LOCK_FILE",
    "RESULT_FILE",
    "TABLES",
    "RunFolderError",
    "RunFolderMismatch",
    "is_run_folder",
    "load_run",
    "read_config",
    "save_run",
    "summary_table",
    "write_config",
    "write_figures",
    "write_report",
    "write_summary",
    "write_table",
]
