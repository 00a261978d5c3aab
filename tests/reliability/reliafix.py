"""Helpers of the reliability tests (imported by name, like ``tests/data/datafix.py``:
``from conftest import ...`` would find whichever folder's conftest was imported first)."""

from __future__ import annotations

import socket


def quiet(*args, **kwargs):
    pass


class NetworkGuard:
    """Refuses every outgoing connection and name lookup, recording the attempts."""

    def __init__(self):
        self.attempts: list[str] = []
        self._saved = {}

    def _refuse(self, what):
        def fn(*args, **kwargs):
            self.attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(101, "network is unreachable (blocked by the reliability suite)")

        return fn

    def __enter__(self):
        targets = {
            (socket.socket, "connect"): "socket.connect",
            (socket.socket, "connect_ex"): "socket.connect_ex",
            (socket, "create_connection"): "create_connection",
            (socket, "getaddrinfo"): "getaddrinfo",
        }
        for (owner, name), what in targets.items():
            self._saved[(owner, name)] = getattr(owner, name)
            setattr(owner, name, self._refuse(what))
        return self

    def __exit__(self, *exc):
        for (owner, name), fn in self._saved.items():
            setattr(owner, name, fn)
