"""Authentication of connections and authorisation of office joins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AllowAll", "AuthProvider", "OfficeAuthorizer", "Principal", "TokenAuth"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection authenticated as; ``claims`` is free-form data for the office hook."""

    id: str
    claims: Mapping[str, Any] = field(default_factory=dict)


class AuthProvider(Protocol):
    """Decides whether a Socket.IO connection to ``/smcp`` is accepted.

    ``auth`` is the CONNECT auth object (``None`` when the client sent none); ``headers``
    are the HTTP handshake headers with lower-case names. Return ``None`` to refuse.
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
