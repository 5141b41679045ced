"""The client's address behind reverse proxies we trust (TRUSTED_PROXIES): one rule for
every door (rate limits, connection caps, audit entries, access logs).

A load balancer in front of several replicas connects to each of them itself, so the TCP
peer is the balancer, and the client is named in `X-Forwarded-For`, to which every proxy
on the way appends the address it received the request from. Anyone can send that
header, so it is read only when the peer is a trusted proxy, and only from the right:
walking leftwards over the addresses appended by trusted proxies, the first address that
is not one of them is the client's (the right-most untrusted address). An entry that is
not an address stops the walk: the address last vouched for (a trusted hop) is used, so
garbage never lets a client pick its own rate-limit bucket. Without a trusted peer the
header is ignored and the peer is the client.

Standard library only: `sidecar.config` parses the setting with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "FORWARDED_FOR",
    "UNKNOWN_CLIENT",
    "Network",
    "client_address",
    "parse_trusted_proxies",
    "trusts",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR: Final = "x-forwarded-for"
UNKNOWN_CLIENT: Final = "unknown"
"""The client of a request without a peer address (a test client, a Unix socket)."""
_MAX_HOPS: Final = 32
"""Entries read from the right at most: a longer chain of trusted proxies is not real."""


def parse_trusted_proxies(raw: str) -> tuple[tuple[Network, ...], list[str]]:
    """The networks of a comma-separated list of addresses and CIDR ranges (IPv4 and
    IPv6), and the entries that are neither, as written."""
    networks: list[Network] = []
    bad: list[str] = []
    for part in raw.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
    return tuple(networks), bad


def _address(text: str) -> Address | None:
    """An address as proxies write it (bare, `[v6]`, `[v6]:port`, `v4:port`), or None."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def trusts(networks: Sequence[Network], address: str | None) -> bool:
    """True when `address` is in one of the trusted networks."""
    if not networks or address is None:
        return False
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """The client's address: the right-most untrusted address of `X-Forwarded-For` (every
    value of the header, in order) when `peer` is trusted; otherwise `peer` itself."""
    if not peer:
        return UNKNOWN_CLIENT
    if not trusted or not trusts(trusted, peer):
        return peer
    entries = ",".join(forwarded_for).split(",")
    client = peer
    for entry in reversed(entries[-_MAX_HOPS:]):
        address = _address(entry)
        if address is None:
            return client  # garbage: keep the last address a trusted hop vouched for
        client = str(address)
        if not any(address in network for network in trusted):
            return client
    return client  # every hop is trusted: the left-most one is the client
