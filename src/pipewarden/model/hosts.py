"""Host identity: when two `host:port` strings name the same endpoint.

DNS names are case-insensitive (RFC 4343) and a trailing dot only marks a name as fully
qualified, so `Cell-1.Shop.Internal.:8080` and `cell-1.shop.internal:8080` are one host. IP
addresses have one canonical text each (`[0:0::1]` is `[::1]`), and a port is a number (`0080`
is `80`). Every comparison of hosts (the fleet rule `single-release-process`, its pre-filter,
and the release engine's host bookkeeping) goes through `host_key`, so that they all agree.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65_536)
def host_key(host: str) -> str:
    """The canonical form of `host` (`name:port` or `[ipv6]:port`, as the pipeline schema
    allows): lower case, no trailing dot on a name, IP addresses in their canonical text, the
    port without leading zeros. Text that is not in that form is returned lower-cased."""
    name, sep, port = host.rpartition(":")
    if not sep or not port.isdigit():
        return host.lower()
    canonical_port = str(int(port))
    if name.startswith("[") and name.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]:{canonical_port}"
        except ValueError:
            return f"{name.lower()}:{canonical_port}"
    try:
        return f"{ipaddress.IPv4Address(name)}:{canonical_port}"
    except ValueError:
        pass
    return f"{name.lower().rstrip('.') or name}:{canonical_port}"
