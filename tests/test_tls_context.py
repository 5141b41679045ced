"""The peers' TLS context: certificates verified exactly as httpx's own context verifies
them, its CA bundle loaded only when the first TLS connection is made."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.config import Config
from hypercorn.trio import serve

from sidecar.outbound import new_http_client, tls_context


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sidecar test peer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "peer.pem", folder / "peer.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def _hello(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]


@asynccontextmanager
async def _tls_peer(cert_file: Path, key_file: Path) -> AsyncIterator[str]:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.certfile, config.keyfile = str(cert_file), str(key_file)
    config.accesslog = config.errorlog = None
    config.graceful_timeout = 0.5
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        bound: list[str] = await nursery.start(
            lambda task_status: serve(
                _hello,  # type: ignore[arg-type]
                config,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        try:
            yield bound[0]
        finally:
            stop.set()


def test_made_without_loading_the_bundle_then_like_httpx_s_own() -> None:
    context = tls_context()
    assert context.cert_store_stats()["x509_ca"] == 0
    reference = httpx.create_ssl_context()
    for setting in ("protocol", "verify_mode", "check_hostname", "options", "verify_flags"):
        assert getattr(context, setting) == getattr(reference, setting), setting
    context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="shopimind.test")
    assert context.cert_store_stats() == reference.cert_store_stats()
    assert context.cert_store_stats()["x509_ca"] > 0


async def test_a_peer_outside_the_bundle_is_refused_and_one_inside_it_is_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    async with _tls_peer(cert_file, key_file) as url:
        assert url.startswith("https://")
        async with new_http_client(tls=tls_context()) as http:  # certifi's bundle
            with pytest.raises(httpx.ConnectError) as refused:
                await http.get(url)
        assert any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(refused.value))
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        trusting = tls_context()
        assert trusting.cert_store_stats()["x509_ca"] == 0
        async with new_http_client(tls=trusting) as http:
            answer = await http.get(url)
        assert (answer.status_code, answer.text) == (200, "hello")
        assert trusting.cert_store_stats()["x509_ca"] == 1


def _chain(error: BaseException | None) -> list[BaseException]:
    """`error` and its causes (trio and httpx each wrap the TLS error)."""
    found: list[BaseException] = []
    while error is not None and len(found) < 10:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found
