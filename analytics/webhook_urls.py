"""Organisation-supplied webhook URLs may only reach the public internet.

A URL is checked when it is saved and again when we connect: the scheme is http(s); the host may
not be a private, loopback, link-local (cloud metadata), shared, multicast or reserved address in
any spelling (dotted, decimal, hex, octal or short IPv4; IPv6, IPv4-mapped or NAT64 IPv6), nor a
name that resolves to one. At connect time the address actually dialled is the checked one, so a
name cannot resolve to a public address for the check and to a private one for the connection.
Redirects are not followed, and no gateway credential is ever sent with the POST.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

import httpcore
import httpx

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeWebhookUrl(ValueError):
    """The URL would reach an address inside the platform's network."""


def parse_ip(host: str) -> IP | None:
    """The address a host literal means, however spelled; None for a name."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:  # what C resolvers accept too: 2130706433, 0x7f000001, 0177.0.0.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_public(ip: IP) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> str:
    """The URL's host, or UnsafeWebhookUrl for a URL that must not be called (no DNS here)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookUrl("The webhook URL must start with https:// or http://.")
    if parts.username or parts.password:
        raise UnsafeWebhookUrl("The webhook URL may not carry a user name or password.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeWebhookUrl("The webhook URL has no host.")
    ip = parse_ip(host)
    if ip is not None and not is_public(ip):
        raise UnsafeWebhookUrl("The webhook URL points at a private or reserved address.")
    if ip is None and (host == "localhost" or host.endswith(INTERNAL_SUFFIXES) or "." not in host):
        raise UnsafeWebhookUrl("The webhook URL names an internal host.")
    return host


def public_addresses(host: str, port: int) -> list[str]:
    """The host's addresses, all of which must be public; UnsafeWebhookUrl otherwise."""
    ip = parse_ip(host)
    if ip is not None:
        found = [ip]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        found = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not found or not all(is_public(address) for address in found):
        raise UnsafeWebhookUrl(f"{host} resolves to a private or reserved address.")
    return [str(address) for address in found]


def validate_on_save(url: str) -> None:
    """Literal checks, then DNS if it answers (an unresolvable name is checked at connect)."""
    host = check_url(url)
    port = urlsplit(url).port or 443
    with contextlib.suppress(httpcore.ConnectError):
        public_addresses(host, port)


class PublicOnlyBackend(httpcore.SyncBackend):
    """Dials only checked public addresses; TLS still verifies the original host name."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = public_addresses(host, port)
        except UnsafeWebhookUrl as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")


def public_transport() -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=transport._pool._ssl_context, network_backend=PublicOnlyBackend()
    )
    return transport
