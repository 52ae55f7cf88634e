"""Run folders: a race saved as tables, figures, a summary and an HTML report.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.lock import LOCK_FILE, FolderInUse
from jrobust._src.runfolder.files import RunFolderError, RunFolderMismatch, load_run, save_run
from jrobust._src.runfolder.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FIGURES,
    RESULT_FILE,
    TABLES,
    is_run_folder,
    read_config,
    write_config,
    write_table,
)
from jrobust._src.runfolder.report import write_figures, write_report
from jrobust._src.runfolder.summary import summary_table, write_summary

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
