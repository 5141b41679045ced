"""Reading environment variables while collecting every problem (used by `sidecar.config`).

Each reader returns a usable value (the default when the variable is wrong) and records
a `ConfigProblem` naming the variable and what is expected, so one run reports all of
them. An empty variable counts as unset, as in systemd `EnvironmentFile=` lines such as
`ADMIN_PORT=`. Values of secrets never appear in a problem.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sidecar.errors import ConfigProblem

__all__ = ["EnvReader", "is_loopback_host"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*"
)


def _shown(value: str) -> str:
    """A non-secret value as it appears in a message: quoted and cut short."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EnvReader:
    """Typed access to an environment mapping that collects problems instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[ConfigProblem] = []
        self.warnings: list[str] = []
        self._unreadable: set[str] = set()

    def problem(self, variable: str, message: str) -> None:
        """Record one problem with `variable`."""
        self.problems.append(ConfigProblem(variable, message))

    def unreadable(self, name: str) -> bool:
        """True when secret `name` was configured but could not be read (already reported)."""
        return name in self._unreadable

    def raw(self, name: str) -> str | None:
        """The variable's value with surrounding blanks removed, or None when unset or empty."""
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        """A free-form value."""
        return self.raw(name) or default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """A whole number within [minimum, maximum]."""
        raw = self.raw(name)
        if raw is None:
            return default
        if re.fullmatch(r"[+-]?[0-9]+", raw) is None or not minimum <= int(raw) <= maximum:
            self.problem(
                name, f"must be a whole number from {minimum} to {maximum}; got {_shown(raw)}"
            )
            return default
        return int(raw)

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        """A decimal number within [minimum, maximum]."""
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not minimum <= value <= maximum:  # also refuses nan and inf
            self.problem(
                name, f"must be a number from {minimum:g} to {maximum:g}; got {_shown(raw)}"
            )
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """true/false, yes/no, on/off or 1/0."""
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.casefold() in _TRUE:
            return True
        if raw.casefold() in _FALSE:
            return False
        self.problem(name, f"must be true or false; got {_shown(raw)}")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, compared case-insensitively; returned lower-case."""
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.casefold() not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}; got {_shown(raw)}")
            return default
        return raw.casefold()

    def host(self, name: str, default: str) -> str:
        """An IP address or a host name to bind to."""
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            ipaddress.ip_address(raw.strip("[]"))
        except ValueError:
            if _HOSTNAME.fullmatch(raw) is None:
                self.problem(name, f"must be an IP address or a host name; got {_shown(raw)}")
                return default
        return raw.strip("[]")

    def url(self, name: str, default: str | None, *, https_unless_loopback: bool) -> str | None:
        """An absolute http(s) base URL without credentials, query or fragment.

        With `https_unless_loopback`, plain http is refused for any host but loopback,
        because what travels on that connection must not cross a network in clear.
        """
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            parts = urlsplit(raw)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            host = None
        if parts.scheme not in ("http", "https") or not host:
            self.problem(name, f"must be an absolute http:// or https:// URL; got {_shown(raw)}")
            return default
        if parts.username or parts.password:
            self.problem(name, "must not embed credentials (user:password@); use the secrets")
            return default
        if parts.query or parts.fragment:
            self.problem(name, f"must not have a query or fragment; got {_shown(raw)}")
            return default
        if parts.scheme == "http" and not is_loopback_host(host):
            if https_unless_loopback:
                self.problem(
                    name, f"must use https:// for a host other than loopback; got {_shown(raw)}"
                )
                return default
            self.warnings.append(
                f"{name} uses plain http:// to {host}: calls are signed but travel unencrypted"
            )
        return raw.rstrip("/")

    def secret(self, name: str, credentials_directory: Path | None) -> str | None:
        """A secret from `NAME`, `NAME_FILE`, or `$CREDENTIALS_DIRECTORY/<name>`, in that order.

        Setting both `NAME` and `NAME_FILE` is refused: which one wins would be a guess.
        Surrounding blanks (a file's trailing newline) are dropped. The value itself never
        reaches a message.
        """
        file_variable = f"{name}_FILE"
        direct = self._environ.get(name)
        file_path = self.raw(file_variable)
        if direct is not None and direct != "" and file_path is not None:
            self.problem(name, f"set either {name} or {file_variable}, not both")
            self._unreadable.add(name)
            return None
        if direct:
            return direct.strip()
        if file_path is not None:
            return self._read_secret_file(name, file_variable, Path(file_path))
        if credentials_directory is not None:
            credential = credentials_directory / name.lower()
            if credential.is_file():
                return self._read_secret_file(name, f"{name} (credential {credential})", credential)
        return None

    def _read_secret_file(self, name: str, variable: str, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            reason = f"no such file: {path}"
        except UnicodeDecodeError:
            # Never quote the decoder's message: it shows bytes of the secret.
            reason = f"{path} is not UTF-8 text"
        except OSError as exc:
            reason = f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        self.problem(variable, reason)
        self._unreadable.add(name)
        return None
