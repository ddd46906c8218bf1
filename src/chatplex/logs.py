"""Logging set-up: one logger per component, `[WORKER]`-style prefixes, a rotating file.
Nothing goes to the terminal, which belongs to the TUI (or to a command's output)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Iterable
from pathlib import Path

from chatplex.redact import redact

_FORMAT = "%(asctime)s %(levelname)-7s [%(component)s] %(message)s"


class _ComponentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.component = record.name.rpartition(".")[2].upper() if "." in record.name else "CHATPLEX"
        return True


class RedactFilter(logging.Filter):
    """Masks `secrets` (API keys) in every record: its message with its arguments, its
    traceback and its stack. A last line of defence: keys should never be logged at all,
    but an exception from a library may quote one (httpx quotes a bad header whole)."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def setup(log_dir: Path, level: str | None = None, secrets: Iterable[str] = ()) -> Path | None:
    """Log to `log_dir/chatplex.log` (rotated at 5 MB, 3 kept), masking `secrets` (pass
    `Config.secrets()`). Returns the file, or None when the folder cannot be written
    (logging is then off rather than fatal)."""
    root = logging.getLogger("chatplex")
    root.propagate = False
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    level_name = (level or os.environ.get("CHATPLEX_LOG") or "INFO").upper()
    root.setLevel(getattr(logging, level_name, logging.INFO))
    path = log_dir / "chatplex.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError:
        root.addHandler(logging.NullHandler())
        return None
    handler.addFilter(_ComponentFilter())
    handler.addFilter(RedactFilter(secrets))
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    return path
