"""The client rules of connecting and joining, shared by the Agent and the Computer.

Socket.IO-free on purpose: the two clients own their sockets, but the handshake URL, the
credential, the version rejection (4008), the join request and its ack, and the re-join backoff
are decided here once (docs/protocol.md §2 and §5.2).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from smcp.core.errors import (
    AuthenticationError,
    ConfigError,
    ErrorCode,
    JoinRefusedError,
    ProtocolVersionError,
    error_from_payload,
    is_error_payload,
)
from smcp.core.roles import Role
from smcp.core.versioning import PROTOCOL_VERSION, VERSION_QUERY_PARAM

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "Credential",
    "JoinBackoff",
    "auth_object",
    "bounded_handshakes",
    "check_join_ack",
    "check_url",
    "engineio_path",
    "final_refusal",
    "handshake_url",
    "join_request",
    "parse_join_ack",
    "probe_version_gate",
    "refusal_reason",
    "version_error_from_body",
    "version_error_from_exception",
]

logger = logging.getLogger("smcp.core")

#: A credential sent as ``auth["token"]``: a string, or a callable (sync or async) asked again on
#: every (re)connect so that short-lived tokens can be refreshed.
Credential = str | Callable[[], str | Awaitable[str | None] | None] | None

_VERSION_FIELDS = ("server_version", "client_version", "min_supported", "max_supported")


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s)/ws(s) URL with a host; else :class:`ConfigError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ConfigError(
            f"invalid server URL {url!r}: expected http://HOST:PORT or https://HOST:PORT (with the scheme)"
        )
    return url


def engineio_path(url: str, socketio_path: str = "socket.io") -> str:
    """The Engine.IO path for ``url``: its own path (a server mounted under a sub-path) then
    ``socketio_path``. python-socketio ignores a URL's path, so a client passes this as its path."""
    prefix = urlsplit(url).path.strip("/")
    rest = socketio_path.strip("/")
    return f"{prefix}/{rest}" if prefix else rest


def handshake_url(url: str, version: str = PROTOCOL_VERSION) -> str:
    """``url`` with ``a2c_version=<version>`` first in the query; a caller's own value is dropped."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != VERSION_QUERY_PARAM]
    query.insert(0, (VERSION_QUERY_PARAM, version))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


async def auth_object(token: Credential, extra: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The Socket.IO ``auth`` object: ``extra`` plus ``token`` (a callable is asked now)."""
    data = dict(extra or {})
    value: Any = token
    if callable(value):
        value = value()
        if inspect.isawaitable(value):
            value = await value
    if value:
        data["token"] = value
    return data or None


def join_request(role: Role, name: str, office: str) -> dict[str, str]:
    """The ``server:join_office`` payload (``EnterOfficeReq`` on the wire)."""
    return {"role": role.value, "name": name, "office_id": office}


def parse_join_ack(reply: Any) -> tuple[bool, str | None]:
    """Read a join/leave ack: ``(True, None)``, ``(False, reason)``, or an ErrorPayload's message."""
    if is_error_payload(reply):
        return False, error_from_payload(reply).message
    if isinstance(reply, list | tuple):
        ok = reply[0] is True if reply else False
        reason = reply[1] if len(reply) > 1 and isinstance(reply[1], str) else None
        return ok, reason
    if isinstance(reply, bool):
        return reply, None
    return False, f"unexpected answer {reply!r}"


def check_join_ack(reply: Any, office: str, name: str | None = None) -> None:
    """Raise :class:`JoinRefusedError` unless ``reply`` accepts the join."""
    ok, reason = parse_join_ack(reply)
    if not ok:
        raise JoinRefusedError(office, reason or "no reason given", name=name)


def refusal_reason(data: Any) -> str:
    """The text of a ``connect_error`` refusal (the server's message when it gave one)."""
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return str(data)


#: The ``code`` of a refusal's ``data`` when the credential itself was refused (not a busy server).
_CREDENTIAL_REFUSED = 401


def final_refusal(data: Any, credential: object) -> AuthenticationError | None:
    """The error to stop reconnecting with, when retrying cannot succeed; else ``None``.

    That is when the server's refusal says the credential was refused (``data.code`` 401: bad,
    expired or out of scope) and the credential is fixed. A callable credential is asked again
    on the next attempt, so its refusals are retried; so are refusals without that code (a full
    server, a shutdown, an unavailable registry).
    """
    if callable(credential) or not isinstance(data, dict):
        return None
    # python-socketio hands over the CONNECT_ERROR payload: {"message": ..., "data": {...}}
    detail = data.get("data")
    code = detail.get("code") if isinstance(detail, dict) else data.get("code")
    if code != _CREDENTIAL_REFUSED:
        return None
    return AuthenticationError(
        f"the server refused the credential on reconnect ({refusal_reason(data)}); "
        "not retrying with the same token: pass a callable token provider for short-lived tokens"
    )


def version_error_from_body(body: Any) -> ProtocolVersionError | None:
    """The 4008 error described by a gate body (dict or JSON text), else ``None``."""
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, dict) or body.get("code") != ErrorCode.PROTOCOL_VERSION_MISMATCH:
        return None
    error = error_from_payload({**body, **{k: str(body[k]) for k in _VERSION_FIELDS if k in body}})
    assert isinstance(error, ProtocolVersionError)
    return error


def version_error_from_exception(exc: BaseException) -> ProtocolVersionError | None:
    """Recover a 4008 body from a connection error's arguments or its cause/context chain."""
    seen: BaseException | None = exc
    while seen is not None:
        for arg in seen.args[:2]:
            if isinstance(arg, str | bytes | dict):
                found = version_error_from_body(arg)
                if found is not None:
                    return found
        seen = seen.__cause__ or seen.__context__
    return None


def _probe_url(url: str, socketio_path: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/" + socketio_path.strip("/") + "/"
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("EIO", "4"), ("transport", "polling")]
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _probe(url: str, headers: Mapping[str, str], timeout: float) -> str | None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resp.read(0)
            return None
    except urllib.error.HTTPError as exc:
        if exc.code != 400:
            return None
        body: bytes = exc.read(64 * 1024)
        return body.decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        logger.debug("version probe of %s failed: %s", url, exc)
        return None


async def probe_version_gate(
    url: str,
    socketio_path: str,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109
) -> ProtocolVersionError | None:
    """Ask the version gate over plain HTTP (one polling handshake) whether it rejects us.

    A WebSocket handshake that the gate refuses carries no readable body (or ends with close
    code 4900), so after a failed WebSocket connect a client asks once over polling. ``url`` is
    the :func:`handshake_url`.
    """
    text = await asyncio.to_thread(_probe, _probe_url(url, socketio_path), headers, timeout)
    return None if text is None else version_error_from_body(text)


class JoinBackoff:
    """Delays between re-join attempts after a reconnect.

    A server may still hold the old session of a client that reconnected (a half-open socket)
    until its ping interval + ping timeout have passed, refusing the name meanwhile; so a client
    keeps trying for at least ``for_at_least`` seconds (default 60 s, above python-socketio's
    25 s + 20 s), starting at ``first`` and doubling up to ``cap``.
    """

    def __init__(self, first: float = 0.2, cap: float = 3.0, for_at_least: float = 60.0) -> None:
        self.first = first
        self.cap = cap
        self.for_at_least = for_at_least

    def delays(self) -> Iterator[float]:
        """The sleeps between attempts; exhausted once ``for_at_least`` seconds are used up."""
        spent, delay = 0.0, self.first
        while spent < self.for_at_least:
            yield delay
            spent += delay
            delay = min(delay * 2, self.cap)


#: Seconds one connection attempt's handshake may take before the attempt is retried.
HANDSHAKE_TIMEOUT = 4.0


def bounded_handshakes(timeout: float = HANDSHAKE_TIMEOUT) -> dict[str, Any]:
    """Keyword arguments for python-socketio's ``AsyncClient`` that bound each connection attempt's
    HTTP handshake (and WebSocket upgrade) to ``timeout`` seconds.

    aiohttp's default session waits up to 5 minutes; a reconnect attempt made while the network
    was dead would then keep the client away that long after the network is back. An empty
    mapping when the installed python-engineio does not take a session factory.
    """

    def session() -> Any:
        import aiohttp

        # per socket operation, not total: aiohttp reports these as connection errors, which
        # python-socketio retries (a total timeout would end its reconnect loop)
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        )

    return {"http_session": session} if _engineio_takes_session_factory() else {}


@functools.cache
def _engineio_takes_session_factory() -> bool:
    try:
        import engineio

        def factory() -> None:
            return None

        probe = engineio.AsyncClient(http_session=factory, handle_sigint=False)
    except Exception:
        return False
    return getattr(probe, "http_factory", None) is factory
