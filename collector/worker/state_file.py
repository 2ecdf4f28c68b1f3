"""The alert book on disk, so a restarted worker neither forgets nor re-sends alerts.

JSON, written atomically (temporary file, fsync, rename; mode 0600): a power cut
leaves either the old or the new state, never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collector.worker.alerts import STATE_VERSION, Alert, AlertBook

STATE_FILE = "alerts.json"


def save_state(state: Mapping[str, Any], path: Path) -> None:
    """Write :meth:`AlertBook.to_dict` output to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state, indent=1, sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_state(book: AlertBook, path: Path) -> bool:
    """Restore ``book`` from ``path``; False when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    try:
        book.load_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a worker alert state (version {STATE_VERSION}): "
                         f"{exc}") from exc
    return True


def read_alerts(path: Path) -> list[Alert]:
    """The alerts saved in ``path`` (read-only; for ``gridguard alerts list``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Alert.from_dict(a) for a in data.get("alerts", [])]
