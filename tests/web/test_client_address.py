"""TRUSTED_PROXIES: which address is the client's (sidecar.client_address), and that every
door uses it: the quart routes and the raw-ASGI inbound route (access log, per-IP rate
limit), the admin API's audit entries, and the per-client connection cap."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.testing

from sidecar.client_address import Network, client_address, parse_trusted_proxies
from sidecar.inbound import InboundService
from sidecar.web.lean_inbound import LeanInbound
from sidecar.web.limits import ConnectionLimits
from sidecar.web.rate_limit import RateLimiter
from tests.harness import LogWatch, sidecar_stack
from tests.web.test_lean_inbound import Exchange, scope
from tests.web.test_limits import closed_by_server, serving


def _nets(*cidrs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


LB = _nets("10.0.0.0/8", "2001:db8:ffff::/48")


def _client(peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network] = LB) -> str:
    return client_address(peer, forwarded, trusted)


def test_without_a_trusted_peer_the_header_is_ignored() -> None:
    assert _client("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"  # spoofed: ignored
    assert _client("10.0.0.5", ["198.51.100.1"], trusted=()) == "10.0.0.5"  # nothing trusted
    assert _client("203.0.113.9", []) == "203.0.113.9"
    assert _client(None, ["198.51.100.1"]) == "unknown"


def test_the_right_most_untrusted_address_is_the_client() -> None:
    # client → proxy 10.0.0.7 → balancer 10.0.0.5 → us; the client forged a first entry
    chain = ["6.6.6.6, 198.51.100.1", "10.0.0.7"]
    assert _client("10.0.0.5", chain) == "198.51.100.1"
    assert _client("10.0.0.5", ["198.51.100.1, 10.0.0.7"]) == "198.51.100.1"  # one header
    assert _client("10.0.0.5", ["198.51.100.1"]) == "198.51.100.1"  # one trusted hop
    assert _client("10.0.0.5", []) == "10.0.0.5"  # a trusted peer that forwarded nothing
    assert _client("10.0.0.5", ["10.0.0.9, 10.0.0.7"]) == "10.0.0.9"  # all trusted: left-most


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (["not-an-address"], "10.0.0.5"),
        (["198.51.100.1, garbage, 10.0.0.7"], "10.0.0.7"),  # the last hop vouched for
        ([""], "10.0.0.5"),
        ([" , "], "10.0.0.5"),
        (["198.51.100.1,"], "10.0.0.5"),
        (["1.2.3.4:notaport"], "10.0.0.5"),
        (["[2001:db8::1"], "10.0.0.5"),
        (["999.1.1.1"], "10.0.0.5"),
        (["198.51.100.1:4711"], "198.51.100.1"),  # with a port, as some proxies write it
        (["\x00\xff"], "10.0.0.5"),
        (["x" * 10_000], "10.0.0.5"),
    ],
)
def test_garbage_never_picks_the_client(forwarded: list[str], expected: str) -> None:
    assert _client("10.0.0.5", forwarded) == expected


def test_ipv6_peers_and_entries() -> None:
    assert _client("2001:db8:ffff::2", ["2001:db8:1::7"]) == "2001:db8:1::7"
    assert _client("2001:db8:ffff::2", ["[2001:db8:1::7]:443"]) == "2001:db8:1::7"
    assert _client("2001:db8:ffff::2", ["2001:DB8:1:0::7"]) == "2001:db8:1::7"  # normalised
    assert _client("2001:db8:1::7", ["198.51.100.1"]) == "2001:db8:1::7"  # untrusted peer
    assert _client("::ffff:10.0.0.5", ["198.51.100.1"]) == "198.51.100.1"  # v4 on a v6 socket
    assert _client("2001:db8:ffff::2", ["198.51.100.1, 2001:db8:ffff::3"]) == "198.51.100.1"


def test_parsing_names_the_bad_entries() -> None:
    networks, bad = parse_trusted_proxies("10.0.0.0/8, fd00::/8, nope, 1.2.3.4/99,,")
    assert networks == _nets("10.0.0.0/8", "fd00::/8")
    assert bad == ["nope", "1.2.3.4/99"]


SALE = {"amount": 12.5, "store": "Paris"}


async def test_behind_a_trusted_proxy_both_doors_see_the_forwarded_client(
    tmp_path: Path,
) -> None:
    env = {"TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8"}
    async with sidecar_stack(tmp_path, env=env) as stack:
        with LogWatch("sidecar.access") as access:
            forwarded = {"x-forwarded-for": "6.6.6.6, 198.51.100.1, 10.1.2.3"}
            await stack.post("/webhook/receive", b"{}", forwarded)  # quart
            await stack.post("/inbound/sale", b"{}", forwarded)  # raw ASGI
            await stack.post("/inbound/sale", b"{}", {"x-forwarded-for": "2001:db8::5"})
            await stack.post("/webhook/receive", b"{}", {})
        assert [line["client"] for line in access.meta("request")] == [
            "198.51.100.1",
            "198.51.100.1",
            "2001:db8::5",
            "127.0.0.1",
        ]


async def test_without_trust_a_spoofed_header_changes_nothing(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path) as stack:
        with LogWatch("sidecar.access") as access:
            await stack.post("/webhook/receive", b"{}", {"x-forwarded-for": "198.51.100.1"})
            await stack.post("/inbound/sale", b"{}", {"x-forwarded-for": "198.51.100.1"})
        assert [line["client"] for line in access.meta("request")] == ["127.0.0.1"] * 2


async def test_the_per_ip_bucket_is_the_forwarded_clients(
    mock_clock: trio.testing.MockClock,
) -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not for quart")

    app = LeanInbound(
        inner,
        inbound=cast(InboundService, None),  # refused before the inbound rules run
        per_ip=RateLimiter(burst=1, per_second=0.001),
        limit_bytes=1024,
        trusted_proxies=_nets("192.0.2.0/24"),
    )

    async def status(forwarded: str | None) -> int:
        request = scope()  # from the trusted balancer 192.0.2.7
        if forwarded is not None:
            request["headers"] = [*request["headers"], (b"x-forwarded-for", forwarded.encode())]
        request["headers"] = [(b"content-type", b"text/plain"), *request["headers"][1:]]
        exchange = Exchange([b"{}"])
        await app(request, exchange.receive, exchange.send)
        return exchange.status

    # 415 (after the bucket) means admitted; each forwarded client has its own bucket.
    assert [await status("198.51.100.1"), await status("198.51.100.1")] == [415, 429]
    assert await status("198.51.100.2") == 415
    assert [await status(None), await status(None)] == [415, 429]  # the balancer's own


async def test_audit_entries_carry_the_forwarded_client(tmp_path: Path) -> None:
    env = {
        "TRUSTED_PROXIES": "127.0.0.1",
        "ADMIN_TOKEN": "a" * 40,
        "ADMIN_READONLY_TOKEN": "r" * 40,
    }
    async with sidecar_stack(tmp_path, env=env) as stack:
        refused = await stack.post(
            "/admin/installations/inst_1/sync",
            b"{}",
            {
                "content-type": "application/json",
                "x-admin-token": "r" * 40,
                "x-forwarded-for": "198.51.100.77",
            },
        )
        assert refused.status_code == 403
        rows = stack.query("SELECT action, client_ip, detail_json FROM audit_log")
        assert [(r[0], r[1], json.loads(str(r[2]))["outcome"]) for r in rows] == [
            ("admin.refused", "198.51.100.77", "read_only")
        ]


async def test_a_trusted_proxy_is_not_held_to_the_per_client_cap() -> None:
    limits = ConnectionLimits(
        max_connections=100,
        max_per_client=1,
        header_timeout_seconds=10,
        body_timeout_seconds=30,
        trusted_proxies=_nets("127.0.0.2/32"),
    )
    async with serving(limits) as server:
        proxied = [await server.connect("127.0.0.2") for _ in range(3)]
        direct = [await server.connect("127.0.0.1") for _ in range(2)]
        accepted = [await server.listener.accept() for _ in range(4)]
        assert sorted(stream.peer for stream in accepted) == ["127.0.0.1", *["127.0.0.2"] * 3]
        with trio.move_on_after(1) as waiting:  # the untrusted client's second: refused
            await server.listener.accept()
        assert waiting.cancelled_caught
        assert await closed_by_server(direct[1]) == b""
        for stream in (*accepted, *proxied, *direct):
            await stream.aclose()
