"""``jrobust report``: rebuild the summary, report and figures of a run folder."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jrobust._src.cli.options import DEBUG, EXIT_OK, Help, UsageError

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  jrobust report runs/mine             the folder of a run (jrobust run --out runs/mine)
  jrobust report runs/mine --csv       also write ledger.csv, history.csv, path.csv, models.csv
A stopped run is reported from its last checkpoint.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report",
        help="rebuild the summary, report and figures of a run folder",
        formatter_class=Help,
        epilog=EPILOG,
        description="Rebuild summary.md, report.html and the PNG figures of a run folder.",
    )
    report.add_argument("folder", metavar="DIR", help="the run folder")
    report.add_argument("--csv", action="store_true", help="also write the tables as CSV")
    report.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but the report's path"
    )
    report.add_argument("--json", action="store_true", help="print a JSON summary")
    report.add_argument("--debug", **DEBUG)
    report.set_defaults(func=command)
    return report


def _info(folder: Path, result) -> dict[str, Any]:
    from jrobust._src.runfolder.files import read_result_json
    from jrobust._src.runfolder.layout import RESULT_FILE, read_config

    if (folder / RESULT_FILE).is_file():
        return dict(read_result_json(folder).get("info") or {})
    config = read_config(folder) or {}
    return {
        "data": ", ".join(f"{k} {v}" for k, v in config.get("data", {}).items()),
        "finished": result.finished,
    }


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    # the run folder's machinery (pandas, matplotlib) loads only once the options are parsed
    from jrobust._src.race.checkpoint import CheckpointMismatch
    from jrobust._src.runfolder.files import RunFolderMismatch, load_run
    from jrobust._src.runfolder.layout import TABLES, write_table
    from jrobust._src.runfolder.report import write_figures, write_report
    from jrobust._src.runfolder.summary import write_summary

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"no such run folder: {folder}")
    try:
        result = load_run(folder)
    except (FileNotFoundError, CheckpointMismatch, RunFolderMismatch) as err:
        raise UsageError(str(err)) from None
    info = _info(folder, result)
    if args.csv:
        for name in TABLES:
            write_table(getattr(result, name), folder, name, csv=True)
    written = write_figures(result, folder)
    write_summary(result, folder, info)
    report = write_report(result, folder, info, figures=written)
    finished = bool(info.get("finished", True))
    if args.json:
        payload = {
            "report": str(report),
            "summary": str(folder / "summary.md"),
            "figures": {k: str(v) for k, v in written.items()},
            "winner_id": result.winner_id,
            "finished": finished,
        }
        print(json.dumps(payload, indent=2))
    elif args.quiet:
        print(report)
    else:
        state = "" if finished else " (unfinished run: state after the last checkpoint)"
        print(
            f"report: {report}{state}\nsummary: {folder / 'summary.md'}\nfigures: "
            + ", ".join(str(p) for p in written.values())
        )
    return EXIT_OK
