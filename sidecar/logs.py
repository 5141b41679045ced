"""Structured logs on stderr: JSON lines by default, readable text with `LOG_FORMAT=text`.

Every part of the sidecar takes its own logger, `get_logger("store")` → `sidecar.store`,
and binds what it knows (`logger.bind(installation_id=...)`). Metadata is passed as
keyword arguments and goes through redaction in the formatter: the one place every
record passes, including those of libraries such as hypercorn.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from sidecar.clock import format_timestamp
from sidecar.security.redaction import redact

__all__ = ["BoundLogger", "JsonFormatter", "TextFormatter", "configure_logging", "get_logger"]

_META: Final = "sidecar_meta"
_NO_SOURCE: Final = "(sidecar)"
_RESERVED: Final = frozenset({"ts", "level", "logger", "msg", "exc"})
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _metadata(record: logging.LogRecord) -> dict[str, object]:
    meta = getattr(record, _META, None)
    if not isinstance(meta, Mapping):
        return {}
    cleaned = redact(dict(meta))
    if not isinstance(cleaned, dict):
        return {}
    # A metadata key never shadows the fixed fields of a line.
    return {(f"meta_{k}" if k in _RESERVED else str(k)): v for k, v in cleaned.items()}


def _timestamp(record: logging.LogRecord) -> str:
    return format_timestamp(datetime.fromtimestamp(record.created, UTC))


class _Timestamps:
    """`format_timestamp` of a record's time, the date and time formatted once a second
    (a busy sidecar writes hundreds of lines a second; strftime was a tenth of each)."""

    __slots__ = ("_head", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._head = ""

    def __call__(self, record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        if second != self._second:
            whole = format_timestamp(datetime.fromtimestamp(second, UTC))
            self._second, self._head = second, whole[: -len("000Z")]
        return f"{self._head}{int(created * 1000) % 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the process's fields (`replica`),
    then the (redacted) metadata."""

    def __init__(self, fields: Mapping[str, object] | None = None) -> None:
        super().__init__()
        self._timestamp = _Timestamps()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self._fields,
        }
        line.update(_metadata(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`<ts> <LEVEL> <logger> <msg> key=value …` for people reading a terminal."""

    def __init__(self, fields: Mapping[str, object] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(
            f"{key}={json.dumps(value, default=str, ensure_ascii=False)}"
            for key, value in {**self._fields, **_metadata(record)}.items()
        )
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name} {record.getMessage()}"
        if pairs:
            text = f"{text} {pairs}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


# Libraries whose `info` lines are routine for us: httpx logs every request it makes
# (health probes included) and hypercorn says "Running on … (CTRL + C to quit)". Ours
# already say what matters, so theirs are shown at `debug`.
_CHATTY_LIBRARIES: Final = frozenset({"httpx", "hypercorn.error"})


class _DemoteChatty(logging.Filter):
    """Relabel the chatty libraries' `info` records as `debug`, then apply the level."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name in _CHATTY_LIBRARIES:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self._level


def configure_logging(
    *,
    level: str = "info",
    fmt: str = "json",
    stream: TextIO | None = None,
    fields: Mapping[str, object] | None = None,
) -> None:
    """Send every log record (ours and the libraries') to `stream` (stderr) in `fmt`, each
    line carrying `fields` (the process's own, e.g. `replica`: which of several replicas
    wrote it)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(TextFormatter(fields) if fmt == "text" else JsonFormatter(fields))
    handler.addFilter(_DemoteChatty(_LEVELS.get(level, logging.INFO)))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))


class BoundLogger:
    """A logger of one part of the sidecar, with fields bound to every line it writes."""

    __slots__ = ("_bound", "_logger")

    def __init__(self, logger: logging.Logger, bound: Mapping[str, object] | None = None) -> None:
        self._logger = logger
        self._bound: Mapping[str, object] = dict(bound or {})

    @property
    def name(self) -> str:
        """The logger's name, e.g. `sidecar.store`."""
        return self._logger.name

    def bind(self, **fields: object) -> BoundLogger:
        """A logger that adds `fields` to every line (e.g. `installation_id`)."""
        return BoundLogger(self._logger, {**self._bound, **fields})

    def _log(self, level: int, msg: str, meta: Mapping[str, Any], exc_info: bool) -> None:
        logger = self._logger
        if logger.isEnabledFor(level):
            # The record is made here rather than by `Logger.log`, which would walk the
            # stack for the caller's file and line: no line of ours shows them.
            record = logger.makeRecord(
                logger.name,
                level,
                _NO_SOURCE,
                0,
                msg,
                (),
                sys.exc_info() if exc_info else None,
                extra={_META: {**self._bound, **meta}},
            )
            logger.handle(record)

    def debug(self, msg: str, /, **meta: Any) -> None:
        """Log at debug level."""
        self._log(logging.DEBUG, msg, meta, exc_info=False)

    def info(self, msg: str, /, **meta: Any) -> None:
        """Log at info level."""
        self._log(logging.INFO, msg, meta, exc_info=False)

    def warning(self, msg: str, /, **meta: Any) -> None:
        """Log at warning level."""
        self._log(logging.WARNING, msg, meta, exc_info=False)

    def error(self, msg: str, /, **meta: Any) -> None:
        """Log at error level."""
        self._log(logging.ERROR, msg, meta, exc_info=False)

    def exception(self, msg: str, /, **meta: Any) -> None:
        """Log at error level with the traceback of the exception being handled."""
        self._log(logging.ERROR, msg, meta, exc_info=True)


def get_logger(part: str) -> BoundLogger:
    """The logger of one part of the sidecar: `get_logger("store")` → `sidecar.store`."""
    return BoundLogger(logging.getLogger(f"sidecar.{part}"))
