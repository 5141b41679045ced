"""Structured logs: JSON lines (or text), metadata redacted, fields bound per part."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sidecar.logs import configure_logging, get_logger


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_with_bound_installation_and_redacted_metadata(stream: io.StringIO) -> None:
    configure_logging(level="info", fmt="json", stream=stream)
    log = get_logger("lifecycle").bind(installation_id="inst_9")
    log.info(
        "webhook received",
        event="integration.installed",
        payload={"access_token": "int_secret", "configs": {"password": "p", "shop": "s"}},
        msg="a metadata key may not shadow the message",
    )
    (line,) = lines(stream)
    assert line["msg"] == "webhook received"
    assert line["level"] == "info"
    assert line["logger"] == "sidecar.lifecycle"
    assert line["installation_id"] == "inst_9"
    assert line["payload"] == {
        "access_token": "[redacted]",
        "configs": {"password": "[redacted]", "shop": "s"},
    }
    assert line["meta_msg"] == "a metadata key may not shadow the message"
    assert str(line["ts"]).endswith("Z")
    assert "int_secret" not in stream.getvalue()


def test_level_filters_and_exceptions_are_logged(stream: io.StringIO) -> None:
    configure_logging(level="warning", fmt="json", stream=stream)
    log = get_logger("store")
    log.info("hidden")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed", token="t0k")
    (line,) = lines(stream)
    assert line["msg"] == "failed"
    assert line["token"] == "[redacted]"
    assert "RuntimeError: boom" in str(line["exc"])


def test_text_format(stream: io.StringIO) -> None:
    configure_logging(level="debug", fmt="text", stream=stream)
    get_logger("sync").bind(installation_id="inst_1").debug("step done", items=3, api_key="k")
    text = stream.getvalue()
    assert " DEBUG   sidecar.sync step done " in text
    assert 'installation_id="inst_1"' in text
    assert "items=3" in text
    assert 'api_key="[redacted]"' in text


def test_library_records_go_through_the_same_formatter(stream: io.StringIO) -> None:
    configure_logging(level="info", fmt="json", stream=stream)
    logging.getLogger("hypercorn.error").warning("Running on %s", "http://127.0.0.1:1")
    (line,) = lines(stream)
    assert line == {
        "ts": line["ts"],
        "level": "warning",
        "logger": "hypercorn.error",
        "msg": "Running on http://127.0.0.1:1",
    }


@pytest.mark.parametrize("level", ["info", "debug"])
def test_routine_library_lines_are_debug(stream: io.StringIO, level: str) -> None:
    configure_logging(level=level, fmt="json", stream=stream)
    logging.getLogger("httpx").info('HTTP Request: GET http://127.0.0.1:1/health "200 OK"')
    logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:1 (CTRL + C to quit)")
    logging.getLogger("hypercorn.error").warning("a real problem")
    logging.getLogger("sidecar.sync").info("ours stays info")
    shown = [(line["logger"], line["level"]) for line in lines(stream)]
    routine = [("httpx", "debug"), ("hypercorn.error", "debug")] if level == "debug" else []
    assert shown == [
        *routine,
        ("hypercorn.error", "warning"),
        ("sidecar.sync", "info"),
    ]
