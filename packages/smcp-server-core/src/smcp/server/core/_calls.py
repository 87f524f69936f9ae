"""Finished relayed requests, handed to listeners (audit trail, console, metrics by label).

A listener is a plain callable that must return quickly and never block: it runs on the event
loop after every ``client:*`` request the server answered (relayed or refused). Nothing is
built when there are no listeners, so the hook costs nothing when unused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smcp.server.core._auth import Principal
    from smcp.server.core._registry import Session

__all__ = ["CallListener", "FinishedCall", "notify_listeners"]

log = logging.getLogger("smcp.server")


class FinishedCall:
    """One ``client:*`` request after its answer was decided.

    ``data`` is the request as received and ``reply`` the answer sent back (an ErrorPayload or a
    result); both are references, not copies: a listener must not change them and must not keep
    them beyond its own call (compute sizes or digests there). ``outcome`` is ``"ok"``, ``"error"``
    (the Computer answered with an error), ``"timeout"``, ``"disconnected"``, ``"shutdown"``,
    ``"too_large"``, ``"bad_reply"``, or a refusal: ``"bad_request"``, ``"forbidden"``,
    ``"not_found"``, ``"internal"``.
    """

    __slots__ = (
        "agent",
        "data",
        "duration",
        "event",
        "office",
        "outcome",
        "principal",
        "reply",
        "req",
        "sid",
        "started",
    )

    def __init__(
        self,
        event: str,
        sid: str,
        session: Session | None,
        *,
        req: Any,
        data: Any,
        reply: Any,
        outcome: str,
        started: float,
        duration: float,
    ) -> None:
        self.event = event
        self.sid = sid
        #: The sender as it was when the answer was decided (``None``: it was in no office or unknown).
        self.principal: Principal | None = None if session is None else session.principal
        self.office: str | None = None if session is None else session.office
        self.agent: str | None = None if session is None else session.name
        self.req = req
        self.data = data
        self.reply = reply
        self.outcome = outcome
        #: Wall-clock start (``time.time()``) and duration in seconds.
        self.started = started
        self.duration = duration

    def _field(self, name: str) -> Any:
        if self.req is not None:
            return getattr(self.req, name, None)
        return self.data.get(name) if isinstance(self.data, dict) else None

    @property
    def computer(self) -> str | None:
        value = self._field("computer")
        return value if isinstance(value, str) else None

    @property
    def tool(self) -> str | None:
        """The tool name of a ``client:tool_call``; ``None`` for other events."""
        value = self._field("tool_name")
        return value if isinstance(value, str) else None

    @property
    def req_id(self) -> str | None:
        value = self._field("req_id")
        return value if isinstance(value, str) else None

    @property
    def code(self) -> int | None:
        """The error code of a flat ErrorPayload answer, else ``None``."""
        reply = self.reply
        if isinstance(reply, dict) and "isError" not in reply:
            code = reply.get("code")
            if isinstance(code, int) and not isinstance(code, bool):
                return code
        return None


CallListener = Callable[[FinishedCall], None]


def notify_listeners(listeners: list[CallListener], call: FinishedCall) -> None:
    """Run every listener; one that raises is logged and does not stop the others."""
    for listener in listeners:
        try:
            listener(call)
        except Exception:
            log.exception("call listener %r raised", listener)


def now() -> tuple[float, float]:
    """``(time.time(), time.perf_counter())`` at the start of a request."""
    return time.time(), time.perf_counter()
