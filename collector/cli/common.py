"""Helpers shared by the CLI commands: consoles, output files, error exits."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

# Progress and summaries go to stderr so JSON Lines on stdout stay clean.
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an actionable error (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[IO[str] | None]:
    """Open an output file for writing; ``-`` is stdout, None is no output."""
    if path is None:
        yield None
    elif str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = path.open("w", encoding="utf-8")
        except OSError as exc:
            fail(f"{path}: cannot write: {exc.strerror or exc}")
        with stream:
            yield stream


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (handlers restored after)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
