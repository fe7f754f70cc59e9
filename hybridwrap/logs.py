"""Run logging: the ``hybridwrap`` logger, kept in ``RUN/train.log`` and shown on the main process's console.

Handlers exist on the main process only, so each line appears once however many processes run. The library
itself attaches only the ``train.log`` file handler of a run; the console handler belongs to the command line
(``--quiet`` / ``--verbose``), so that a program calling ``hybridwrap.train`` decides for itself what reaches
its console.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from .errors import ConfigError

ROOT = "hybridwrap"
LEVELS = {"quiet": logging.WARNING, "info": logging.INFO, "verbose": logging.DEBUG}
LOG_FILE = "train.log"


def get_logger(name: str) -> logging.Logger:
    """A logger under ``hybridwrap.``; its handlers (console, train.log) exist on the main process only."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


class _ConsoleHandler(logging.Handler):
    """Writes through tqdm, so that a log line does not tear a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never stop training
            self.handleError(record)


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(LEVELS)}, got {level!r} (--quiet / --verbose set it).")


def attach_console(level: str = "info") -> logging.Handler:
    """Show the ``hybridwrap`` logger on stderr at ``level`` (the command line calls this once)."""
    check_level(level)
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # one line per record even if the root logger is configured too
    for old in [h for h in logger.handlers if isinstance(h, _ConsoleHandler)]:
        logger.removeHandler(old)
    handler = _ConsoleHandler(level=LEVELS[level])
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return handler


def console_level() -> str | None:
    """The level name of the console attached by :func:`attach_console`, or None when nothing prints."""
    names = {value: name for name, value in LEVELS.items()}
    for handler in logging.getLogger(ROOT).handlers:
        if isinstance(handler, _ConsoleHandler):
            return names.get(handler.level)
    return None


def prefix_console(prefix: str) -> None:
    """Begin every console line with ``prefix`` (runs side by side in several processes say whose line it is)."""
    for handler in logging.getLogger(ROOT).handlers:
        if isinstance(handler, _ConsoleHandler):
            handler.setFormatter(logging.Formatter(prefix.replace("%", "%%") + "%(message)s"))


def attach_file(run_dir: Path) -> logging.Handler:
    """Append everything (losses included) to ``run_dir/train.log``; detach with :func:`detach`."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG)
    handler = logging.FileHandler(Path(run_dir) / LOG_FILE, mode="a", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return handler


def detach(handler: logging.Handler | None) -> None:
    if handler is not None:
        logging.getLogger(ROOT).removeHandler(handler)
        handler.close()
