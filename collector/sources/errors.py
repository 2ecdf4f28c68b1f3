"""The one error type for unreadable recordings (COMTRADE, WAV and their sidecars).

Parsers translate every low-level failure (``ValueError``, ``IndexError``,
``UnicodeDecodeError``, ``OSError``...) into :class:`RecordingError` at their public
boundary, so a user sees ``xtz.cfg:14: analog channel 5: expected 13
comma-separated fields, got 9`` instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class RecordingError(Exception):
    """A recording that cannot be read, with the file and the line or record at fault.

    Attributes
    ----------
    path : Path
        The file at fault (the cfg, dat, cff, wav or sidecar), as the caller named it.
    line : int | None
        1-based line in a text file (cfg, ASCII dat, YAML sidecar) or 1-based record
        number in a binary dat; None when the problem is the file as a whole.
    message : str
        What is wrong and what was expected.
    """

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.message}"

    def __reduce__(self) -> tuple[type[RecordingError], tuple[Path, str, int | None]]:
        # keeps the exception picklable (multiprocessing, pytest-xdist) despite the
        # keyword-shaped constructor
        return (type(self), (self.path, self.message, self.line))
