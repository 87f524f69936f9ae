"""Authentication of connections and authorisation of office joins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AllowAll", "AuthProvider", "AuthRefused", "OfficeAuthorizer", "Principal", "TokenAuth"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection authenticated as; ``claims`` is free-form data for the office hook.

    The scope fields are enforced by the server (``None``: unrestricted): ``role`` the only role it
    may join as, ``offices`` the office ids it may join, ``name`` the only name it may use, ``tools``
    the ``fnmatch`` patterns of tool names it may call. ``personal``: the id names one holder (a
    signed token's ``sub``), so a new connection of it may take over its own name in an office.
    """

    id: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    role: str | None = None
    offices: frozenset[str] | None = None
    name: str | None = None
    tools: tuple[str, ...] | None = None
    personal: bool = False


class AuthRefused(Exception):
    """Raised by an :class:`AuthProvider` to refuse a connection with a reason the client is shown.

    ``reason`` is a short code counted in the metrics (``expired``, ``bad_signature``, ...);
    ``str()`` is the message. Neither may contain the credential.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthProvider(Protocol):
    """Decides whether a Socket.IO connection to ``/smcp`` is accepted.

    ``auth`` is the CONNECT auth object (``None`` when the client sent none); ``headers``
    are the HTTP handshake headers with lower-case names. Return ``None`` to refuse, or raise
    :class:`AuthRefused` to refuse with a reason.
    """

    async def authenticate(self, auth: Any, headers: Mapping[str, str]) -> Principal | None: ...


#: ``(principal, office_id) -> allowed``; may be sync or async.
OfficeAuthorizer = Callable[[Principal, str], "bool | Awaitable[bool]"]


class TokenAuth:
    """One shared secret in ``auth[field]`` (default ``"token"``), compared in constant time."""

    def __init__(self, token: str, *, field: str = "token", principal_id: str = "token") -> None:
        if not token:
            raise ValueError("TokenAuth needs a non-empty token")
        import hmac

        self._compare = hmac.compare_digest
        self._token = token.encode()
        self._field = field
        self._principal = Principal(principal_id)

    async def authenticate(self, auth: Any, headers: Mapping[str, str]) -> Principal | None:
        if not isinstance(auth, dict):
            return None
        given = auth.get(self._field)
        if not isinstance(given, str) or not given:
            return None
        if self._compare(given.encode(), self._token):
            return self._principal
        return None


class AllowAll:
    """Accepts every connection. Only for local development and tests."""

    _principal = Principal("anonymous")

    async def authenticate(self, auth: Any, headers: Mapping[str, str]) -> Principal | None:
        return self._principal
