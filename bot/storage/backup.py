"""``python -m bot backup PATH``: a consistent copy of the SQLite database through SQLite's online backup API,
safe while the bot runs (WAL: the copy reads one snapshot and writers are not blocked). Written next to PATH and
renamed into place, so PATH is either the old file or a complete new one; then checked with ``integrity_check``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path


class BackupError(Exception):
    pass


def backup(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target``; returns the number of jobs in the copy."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.resolve() == source.resolve():
        raise BackupError("the backup must not be the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        with contextlib.closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)  # all pages in one step: one consistent snapshot
            check = dst.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            jobs = int(dst.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return jobs
