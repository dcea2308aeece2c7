"""Which network addresses the bot may connect to when it downloads something: public ones only (loopback too
when a local set-up allows it). ``PublicAddressResolver`` applies the rule to the very addresses a connector is
about to use, so DNS rebinding cannot slip through."""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddressError(OSError):
    """A host name resolved to an address the fetcher may not connect to."""


def is_loopback_address(address: str | IPAddress) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address: what ``allow_loopback`` lets through."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def address_allowed(address: str | IPAddress, *, allow_loopback: bool = False) -> bool:
    return is_public_address(address) or (allow_loopback and is_loopback_address(address))


def is_public_address(address: str | IPAddress) -> bool:
    """Whether connecting to ``address`` is allowed. Unparseable addresses are not."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if any(inner is not None and not is_public_address(inner) for inner in embedded):
            return False
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


class PublicAddressResolver(AbstractResolver):
    """Wraps a resolver and refuses any name that resolves to a non-public address (loopback allowed only with
    ``allow_loopback``).

    The connector connects only to addresses this returns, so the check holds at connection time.
    """

    def __init__(self, base: AbstractResolver, *, allow_loopback: bool = False) -> None:
        self._base = base
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._base.resolve(host, port, family)
        for result in results:
            if not address_allowed(result["host"], allow_loopback=self._allow_loopback):
                log.warning("refused to connect to %s: it resolves to non-public %s", host, result["host"])
                raise BlockedAddressError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        await self._base.close()
