"""Which network addresses the adapter's outgoing HTTP (webhooks, callbacks) may reach.

TwiML, redirects and REST requests decide where the adapter sends requests, so a hostile app
or caller could point them at the cloud metadata service (169.254.169.254), at the PBX's own
loopback services, or anywhere on the private network (SSRF). Every address a request would
connect to is checked, after DNS resolution (all of the addresses a name resolves to, not just
the first) and on every redirect hop:

1. refused if it is in `ALWAYS_DENIED` (link-local, including every cloud metadata address,
   multicast, ``0.0.0.0/8``, broadcast) or in the configured extra `deny` networks;
2. allowed if it is in one of the `allow` networks (default: loopback and the private ranges,
   because the usual deployment is an on-premises app beside the PBX);
3. allowed if it is a public (globally routable) unicast address;
4. refused otherwise (carrier-grade NAT, documentation, benchmarking, reserved ranges...).

IPv4 carried inside IPv6 is judged as IPv4: ``::ffff:169.254.169.254`` is link-local, and
NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and IPv4-compatible (``::a.b.c.d``) addresses
must pass for both the IPv6 address and the IPv4 one inside it.

`GuardedResolver` enforces this inside aiohttp: it wraps the real resolver, so the addresses
checked are the very addresses connected to (no second lookup a DNS rebinding could change).
aiohttp never resolves an IP literal, so `check_host` covers URLs with one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "ALWAYS_DENIED",
    "PRIVATE_AND_LOOPBACK",
    "EgressPolicy",
    "GuardedResolver",
    "IPAddress",
    "IPNetwork",
    "TargetRefused",
    "networks",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def networks(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ip_network(cidr) for cidr in cidrs)


ALWAYS_DENIED = networks(
    "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
    "169.254.0.0/16",  # IPv4 link-local: 169.254.169.254 is AWS/GCP/Azure/OCI metadata
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "224.0.0.0/4",  # multicast
    "255.255.255.255/32",  # broadcast
    "::/128",  # unspecified
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6 (inside fc00::/7, which may be allowed)
    "ff00::/8",  # IPv6 multicast
)
PRIVATE_AND_LOOPBACK = networks(
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7",
)
_NAT64 = ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ip_network("::/96")


class TargetRefused(OSError):
    """The policy refuses an address a request would connect to.

    An OSError so that aiohttp reports it like a failed DNS lookup (ClientConnectorDNSError).
    """


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """`allow`: networks allowed besides public addresses; `deny`: refused on top of
    `ALWAYS_DENIED` (which nothing can allow)."""

    allow: tuple[IPNetwork, ...] = PRIVATE_AND_LOOPBACK
    deny: tuple[IPNetwork, ...] = ()

    def refusal(self, address: IPAddress) -> str | None:
        """None if `address` may be contacted, else why not (one sentence)."""
        for candidate in _judged_addresses(address):
            reason = self._refusal_one(candidate)
            if reason is not None:
                return reason
        return None

    def _refusal_one(self, address: IPAddress) -> str | None:
        for network in (*ALWAYS_DENIED, *self.deny):
            if address in network:
                return f"{address} is in the denied network {network}"
        if any(address in network for network in self.allow):
            return None
        if address.is_global and not address.is_multicast and not address.is_reserved:
            return None
        return (f"{address} is not a public address and not in an allowed network "
                "(webhooks.allow_networks)")

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise TargetRefused unless every address `host` resolved to may be contacted."""
        for text in addresses:
            try:
                address = ip_address(text)
            except ValueError:
                raise TargetRefused(f"refused to contact {host}: {text!r} is not an IP address"
                                    ) from None
            reason = self.refusal(address)
            if reason is not None:
                via = "" if text == host else f" (it resolves to {text})"
                raise TargetRefused(f"refused to contact {host}{via}: {reason}")

    def check_host(self, host: str) -> None:
        """For a URL's host: an IP literal is checked here (aiohttp does not resolve those);
        anything aiohttp would take for one but is not a plain address is refused; a name is
        left to `GuardedResolver`."""
        bare = host.strip("[]")
        if ":" not in bare and not bare.replace(".", "").isdigit():
            return
        try:
            ip_address(bare)
        except ValueError:
            raise TargetRefused(f"refused to contact {host}: not a plain IP address") from None
        self.check(host, [bare])


def _judged_addresses(address: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses a connection to `address` may really reach (see the module docstring)."""
    if isinstance(address, IPv4Address):
        return (address,)
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    embedded: IPv4Address | None = None
    if address.sixtofour is not None:
        embedded = address.sixtofour
    elif address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        embedded = IPv4Address(int(address) & 0xFFFFFFFF)
    return (address,) if embedded is None else (address, embedded)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that returns the addresses of `inner` only if `policy` allows all."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._inner.close()
