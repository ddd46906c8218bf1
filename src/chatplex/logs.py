"""Logging set-up: one logger per component, `[WORKER]`-style prefixes, a rotating file.
Nothing goes to the terminal, which belongs to the TUI (or to a command's output)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s [%(component)s] %(message)s"


class _ComponentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.component = record.name.rpartition(".")[2].upper() if "." in record.name else "CHATPLEX"
        return True


def setup(log_dir: Path, level: str | None = None) -> Path | None:
    """Log to `log_dir/chatplex.log` (rotated at 5 MB, 3 kept). Returns the file, or None
    when the folder cannot be written (logging is then off rather than fatal)."""
    root = logging.getLogger("chatplex")
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    level_name = (level or os.environ.get("CHATPLEX_LOG") or "INFO").upper()
    root.setLevel(getattr(logging, level_name, logging.INFO))
    path = log_dir / "chatplex.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        root.addHandler(logging.NullHandler())
        return None
    handler.addFilter(_ComponentFilter())
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    return path
