"""The one place outbound webhooks touch the network.

Safe by construction: the destination is resolved once and every address is checked
at send time (private, loopback, link-local and other special ranges are refused unless
allow-listed), the connection goes to the checked address (no second lookup a DNS
rebinding could change), redirects are never followed, and the whole request has a
timeout. Tests inject a fake ``Transport``; production uses ``SafeHttpTransport``.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit


class DestinationRefused(Exception):
    """The URL's host resolves to an address we do not send to."""


class TransportError(Exception):
    """No HTTP response: timeout, refused connection, TLS failure."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    latency_ms: int = 0


class Transport(Protocol):
    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Response: ...


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
            or address.is_multicast or address.is_unspecified or not address.is_global)


def check_destination(host: str, port: int, allowed: Iterable[str]) -> list[str]:
    """Resolve ``host`` and return its addresses, or raise if any is off limits."""
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransportError(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if _refused(address) and not any(address in n for n in networks):
            raise DestinationRefused(f"{host} resolves to {address}, a private or reserved address")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


class SafeHttpTransport:
    def __init__(self, *, allowed_networks: Iterable[str] = ()) -> None:
        self.allowed = list(allowed_networks)

    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        return self.request("POST", url, body=body, headers={"Content-Type": "application/json", **headers},
                            timeout=timeout)

    def get(self, url: str, *, headers: dict[str, str], timeout: float) -> Response:
        return self.request("GET", url, body=None, headers=headers, timeout=timeout)

    def request(self, method: str, url: str, *, body: bytes | None, headers: dict[str, str], timeout: float,
                max_bytes: int = 4096) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused(f"{url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = check_destination(parts.hostname, port, self.allowed)[0]
        cls = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        connection = cls(parts.hostname, port, address, timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        deadline = started + timeout
        try:
            connection.request(method, path, body=body, headers={"User-Agent": "Lastmile/1.0", **headers})
            response = connection.getresponse()
            # Bounded read: a partner's error page is logged, not stored whole.
            content = response.read(max_bytes)
            if time.monotonic() > deadline:
                raise TransportError(f"timed out after {timeout:g} s")
            return Response(status=response.status, headers={k.lower(): v for k, v in response.getheaders()},
                            body=content, latency_ms=int((time.monotonic() - started) * 1000))
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
