"""REPLICA_ID and TRUSTED_PROXIES: defaults, what is accepted, and every bad value named."""

from __future__ import annotations

import ipaddress
import os
import re

import pytest

from sidecar.config import default_replica_id, load_settings
from sidecar.errors import ConfigError
from tests.test_cli import run


def _problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return [str(problem) for problem in caught.value.problems]


def test_the_default_replica_id_is_host_pid_and_a_random_tag(valid_env: dict[str, str]) -> None:
    first = load_settings(valid_env).settings.replica_id
    second = load_settings(valid_env).settings.replica_id
    pattern = rf"[A-Za-z0-9._:-]+:{os.getpid()}:[0-9a-f]{{8}}"
    assert re.fullmatch(pattern, first), first
    assert first != second  # a random tag each time: two processes never share one
    assert len(default_replica_id()) <= 64


def test_a_long_or_odd_host_name_still_makes_a_valid_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "h_st with spaces." + "x" * 200)
    made = default_replica_id()
    assert len(made) == 64
    assert re.fullmatch(r"[A-Za-z0-9._:-]{64}", made)
    assert made.startswith("h_st-with-spaces.xxx")


@pytest.mark.parametrize("value", ["web-1", "a", "eu.west_2:node-7", "x" * 64])
def test_replica_id_accepted(valid_env: dict[str, str], value: str) -> None:
    assert load_settings(valid_env | {"REPLICA_ID": value}).settings.replica_id == value


@pytest.mark.parametrize("value", ["web 1", "web/1", "é", "x" * 65, "a;b", "a%b"])
def test_replica_id_refused_and_named(valid_env: dict[str, str], value: str) -> None:
    [problem] = _problems(valid_env | {"REPLICA_ID": value})
    assert problem.startswith("REPLICA_ID: must be 1 to 64 characters among A-Z a-z 0-9 . _ : -")


def test_trusted_proxies_default_to_none(valid_env: dict[str, str]) -> None:
    assert load_settings(valid_env).settings.trusted_proxies == ()


def test_trusted_proxies_ipv4_ipv6_ranges_and_single_addresses(valid_env: dict[str, str]) -> None:
    env = valid_env | {"TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::1,, "}
    assert load_settings(env).settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_every_bad_trusted_proxy_is_named(valid_env: dict[str, str]) -> None:
    env = valid_env | {"TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/33,proxy.local,2001:db8::/129"}
    problems = _problems(env)
    assert [p.split("'")[1] for p in problems] == ["10.0.0.0/33", "proxy.local", "2001:db8::/129"]
    assert all(p.startswith("TRUSTED_PROXIES: ") for p in problems)
    assert all("is not an IP address or a CIDR range" in p for p in problems)


def test_check_exits_2_with_one_line_per_problem(valid_env: dict[str, str]) -> None:
    env = valid_env | {"REPLICA_ID": "no spaces please", "TRUSTED_PROXIES": "nope,10.1.2.3/40"}
    result = run(env, "check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "REPLICA_ID",
        "TRUSTED_PROXIES",
        "TRUSTED_PROXIES",
    ]
