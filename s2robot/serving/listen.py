"""Where the server may listen: the address checks made before anything is loaded, so a wrong
host or port costs one line and no model load."""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

from s2robot.errors import UserError


class ServingError(UserError, RuntimeError):
    """A server configuration the user must change (unsafe bind, bad limits)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to a public interface


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ServingError(
            f"refusing to serve on {host}, which is reachable from other machines, without a token: "
            f"set token=<secret> (or S2ROBOT_SERVE_TOKEN) and give the robot the same token, "
            f"or bind host=127.0.0.1"
        )


def check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ServingError(f"port={port!r} is not a TCP port: use 1-65535, or 0 for a free one")
    return port


def check_listen(host: str, port: int) -> None:
    """Fail now, before a model is loaded, if ``host:port`` cannot be listened on (the real bind
    happens later and reports the same way should the port be taken in between). An address that
    cannot be assigned (EADDRNOTAVAIL) is refused only when no other address of the host could be
    bound: ``localhost`` may resolve to ::1 as well where IPv6 is off."""
    check_port(port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ServingError(
            f"cannot listen on {host}:{port}: the host name does not resolve ({e}); "
            f"use an address of this machine, e.g. host=127.0.0.1"
        ) from None
    bound, last = 0, None
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio's server does
            try:
                sock.bind(addr)
                bound += 1
            except OSError as e:
                last = e
                if e.errno != errno.EADDRNOTAVAIL:
                    break
    if last is not None and (not bound or last.errno != errno.EADDRNOTAVAIL):
        raise ServingError(
            f"cannot listen on {host}:{port}: {last.strerror or last}; pick another port= or a "
            f"host= that is an address of this machine"
        )
