"""Listening sockets whose connections send small packets at once (``TCP_NODELAY``).

asyncio disables Nagle's algorithm on a TCP transport only when the socket's ``proto`` is
``IPPROTO_TCP``; a socket made with ``socket.socket(family, SOCK_STREAM)`` has ``proto`` 0, and
so do the connections it accepts. With Nagle on, a packet that follows another to the same peer
within the peer's delayed-ACK window (~40 ms on Linux) waits for that ACK: a notification right
after an ack, the second of two relayed calls. Linux and the BSDs copy ``TCP_NODELAY`` from a
listening socket to the sockets it accepts, and asyncio then sets it again on each of them.
"""

from __future__ import annotations

import socket

__all__ = ["listen_socket", "set_nodelay"]


def set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off on a TCP socket (listening or connected); other sockets are left alone."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def listen_socket(host: str = "127.0.0.1", port: int = 0, *, backlog: int = 2048) -> socket.socket:
    """A bound, listening, inheritable TCP socket with ``TCP_NODELAY``, for any ASGI server.

    uvicorn: ``uvicorn.Server(config).serve(sockets=[sock])``; Hypercorn:
    ``config.bind = [f"fd://{sock.fileno()}"]``. ``port`` 0 picks a free port
    (``sock.getsockname()[1]``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_nodelay(sock)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock
