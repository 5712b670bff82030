"""The client address of a request behind reverse proxies: the one rule used by the rate limits,
the console and board lockouts, the audit log, the access log and the console IP allow-list.

`trusted_proxies` (POLICYBOT_TRUSTED_PROXIES) lists addresses or networks (``"127.0.0.1"``,
``"172.16.0.0/12"``). When the direct peer is not inside one of them, the peer is the client and
X-Forwarded-For is ignored (anybody can write it). When it is, X-Forwarded-For (all its header lines
joined in order) is walked from the right past trusted addresses; the first untrusted address is the
client, because every hop to its right was appended by a proxy we trust and everything to its left
was written by the client. A hop that is not an address (garbage, ``unknown``) stops the walk: the
last trusted hop passed is returned. If every hop is trusted, the leftmost one (a client inside the
trusted network) is. Ports (``1.2.3.4:5``, ``[::1]:5``) are dropped, IPv4-mapped IPv6 addresses
(a dual-stack socket) are read as IPv4, and addresses come back in canonical form so that one
client always gets one lockout and rate-limit key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import HTTPConnection

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_LENGTH = 64  # the width of every ip column


@lru_cache(maxsize=64)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse the trusted proxies once; a bad entry raises ValueError naming it."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"trusted proxy {entry!r} is neither an address nor a network") from exc
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address from a peer or X-Forwarded-For hop (port and brackets dropped), or None."""
    value = text.strip().strip('"')
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, networks: tuple[Network, ...]) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)


def client_ip(request: HTTPConnection, trusted_proxies: Iterable[str]) -> str:
    """The client address of `request` (see the module docstring), at most 64 characters."""
    networks = trusted_networks(tuple(trusted_proxies))
    peer_text = request.client.host if request.client else ""
    peer = parse_address(peer_text)
    if peer is None:
        return peer_text[:MAX_LENGTH]  # a unix socket or a test client: nothing to resolve
    nearest = peer
    if networks and _trusted(peer, networks):
        forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
        for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
            addr = parse_address(hop)
            if addr is None:
                break
            nearest = addr
            if not _trusted(addr, networks):
                break
    return str(nearest)[:MAX_LENGTH]


__all__ = ["client_ip", "parse_address", "trusted_networks"]
