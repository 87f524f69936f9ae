"""The one wrapper every event handler of the server is built with, from the event's ``EventSpec``.

The wrapper parses the request with the table's model, checks the sender's role (``spec.senders``)
and that it is in an office, turns errors into the answer the event's ack shape needs and counts
metrics. A handler's business part receives a :class:`Call` that passed those checks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from smcp.core import wire
from smcp.core.errors import ErrorCode, ForbiddenError, InternalError, SMCPError
from smcp.core.roles import Role
from smcp.server.core import _tracing
from smcp.server.core._calls import FinishedCall, notify_listeners, now
from smcp.server.core._policy import PolicyRefused, check_request
from smcp.server.core._quotas import TOO_MANY
from smcp.server.core._registry import JoinRejected

if TYPE_CHECKING:
    from smcp.core.events import EventSpec
    from smcp.server.core._metrics import ServerMetrics
    from smcp.server.core._registry import Session
    from smcp.server.core._server import SMCPServer

__all__ = ["Call", "Handler", "internal_error", "object_handler", "pair_handler"]

log = logging.getLogger("smcp.server")

Handler = Callable[..., Awaitable[Any]]

_ARTICLE = {Role.AGENT: "an agent", Role.COMPUTER: "a computer"}

#: The outcome a relayed request is counted under when it is refused with this code.
_REFUSAL_OUTCOMES = {
    ErrorCode.BAD_REQUEST: "bad_request",
    ErrorCode.FORBIDDEN: "forbidden",
    ErrorCode.NOT_FOUND: "not_found",
    TOO_MANY: "quota",
    503: "shutdown",
}


class Call:
    """One request that passed the wrapper's checks.

    ``data`` is the request as received (a dict once parsed; the relay forwards it), ``req`` the
    parsed model, ``session`` the sender's session (set when the event is limited to some roles:
    then it is in an office). The business part of a relayed request sets ``outcome``.
    """

    __slots__ = ("data", "outcome", "req", "session", "sid", "span")

    def __init__(self, sid: str, data: Any) -> None:
        self.sid = sid
        self.data = data
        self.req: Any = None
        self.session: Session | None = None
        self.outcome = "internal"
        #: The OpenTelemetry span of a relayed request when tracing is on (``_tracing.py``).
        self.span: Any = None


def _count_labelled(metrics: ServerMetrics, event: str, call: Call) -> None:
    data = call.data if call.data.__class__ is dict else {}
    computer, tool = data.get("computer"), data.get("tool_name")
    metrics.count_labelled(
        event,
        call.session.office if call.session else None,
        computer if computer.__class__ is str else None,
        tool if tool.__class__ is str else None,
        call.outcome,
    )


def _request_fields(call: Call) -> dict[str, Any]:
    """The request fields of a log record about ``call`` (see ``smcp.core.logjson``)."""
    data = call.data if call.data.__class__ is dict else {}
    fields = {
        "sid": call.sid,
        "office": call.session.office if call.session else None,
        "computer": data.get("computer"),
        "tool": data.get("tool_name"),
        "req_id": data.get("req_id"),
        "outcome": call.outcome,
    }
    if call.span is not None:
        fields["trace_id"] = f"{call.span.get_span_context().trace_id:032x}"
    return {key: value for key, value in fields.items() if isinstance(value, str)}


def _role_refusal(spec: EventSpec) -> str:
    roles = sorted(spec.senders or ())
    who = " or ".join(_ARTICLE[Role(role)] for role in roles) or "nobody"
    # A client:* sender must be in an office as well: say so in the same sentence.
    suffix = " that joined an office" if spec.is_client_request else ""
    return f"{spec.name} may only be sent by {who}{suffix}"


def internal_error(event: str, sid: str, exc: BaseException) -> dict[str, Any]:
    """Log a handler's unexpected error with its traceback; the 500 payload that answers it."""
    log.error("error in %s", event, exc_info=exc, extra={"sid": sid})
    return InternalError(f"Internal server error while handling {event}; see the server log").to_payload()


def object_handler(
    server: SMCPServer,
    spec: EventSpec,
    business: Callable[[Call], Awaitable[Any]],
    *,
    closing_error: Callable[[], SMCPError] | None = None,
) -> Handler:
    """A handler for an event acknowledged with one object (or nothing): errors become ErrorPayloads.

    ``closing_error``: the refusal once the server shuts down (checked before anything else).
    A ``client:*`` request is counted in ``metrics.calls`` by outcome, any other refusal in
    ``metrics.rejections``. A ``client:*`` request without ``agent`` gets the sender's name.
    """
    event = spec.name
    restricted = spec.senders is not None
    relayed = spec.is_client_request
    role_refusal = _role_refusal(spec) if restricted else ""
    may_send = spec.may_send
    parse_request = wire.parse_request
    registry = server.registry
    metrics = server.metrics
    listeners = server.call_listeners
    quotas = server.quotas

    async def handler(sid: str, *args: Any) -> Any:
        call = Call(sid, args[0] if args else None)
        started = now() if relayed and listeners else None
        tracer = _tracing.get_tracer() if relayed else None
        if tracer is not None:
            call.span = _tracing.start(tracer, event, call.data)
        reply: Any = None
        counted: str | None = None
        try:
            if closing_error is not None and server.closing:
                raise closing_error()
            session = await registry.get(sid) if restricted else None
            data = call.data
            if relayed and data.__class__ is dict and "agent" not in data and session and session.name:
                # 0.4.2's sync client sends ``robot_id`` instead: the sender is known from its session.
                data = call.data = {**data, "agent": session.name}
            call.req = parse_request(event, data)
            if restricted:
                if session is None or not may_send(session.role):
                    raise ForbiddenError(role_refusal, details={"event": event, "reason": "role"})
                if session.office is None:
                    raise ForbiddenError(
                        f"{event}: join an office first", details={"event": event, "reason": "no_office"}
                    )
                call.session = session
                principal = session.principal
                if relayed and principal is not None:
                    # The sender's scope and the operator's policy, then the limits: before the relay.
                    if principal.tools is not None or server.policy is not None:
                        await check_request(principal, session.office, event, call.data, server.policy)
                    quotas.begin_call(sid, principal.id, event)
                    counted = principal.id
            reply = await business(call)
            return reply
        except SMCPError as exc:
            if relayed:
                if isinstance(exc, PolicyRefused):
                    call.outcome = "policy"
                else:
                    call.outcome = _REFUSAL_OUTCOMES.get(exc.error_code, "error")
            else:
                metrics.count_rejection(event)
            reply = exc.to_payload()
            return reply
        except Exception as exc:
            call.outcome = "internal"
            reply = internal_error(event, sid, exc)
            return reply
        finally:
            if counted is not None:
                quotas.end_call(sid, counted)
            if relayed:
                metrics.count_call(event, call.outcome)
                _count_labelled(metrics, event, call)
                if call.span is not None:
                    _tracing.finish(call.span, call.session, call.outcome, reply)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s answered: %s", event, call.outcome, extra=_request_fields(call))
                if started is not None:
                    wall, mono = started
                    finished = FinishedCall(
                        event,
                        sid,
                        call.session,
                        req=call.req,
                        data=call.data,
                        reply=reply,
                        outcome=call.outcome,
                        started=wall,
                        duration=time.perf_counter() - mono,
                    )
                    notify_listeners(listeners, finished)

    return handler


def pair_handler(
    server: SMCPServer,
    spec: EventSpec,
    business: Callable[[str, Any], Awaitable[None]],
    *,
    internal_reason: str,
    closing_reason: str | None = None,
    counted: bool = False,
) -> Handler:
    """A handler for an event acknowledged with ``[ok, reason]``.

    ``business(sid, req)`` returns on success and raises :class:`JoinRejected` (or an
    :class:`SMCPError`) to refuse; an unexpected error is logged and answered with
    ``internal_reason``. ``counted``: count ``joins_total`` / ``join_failures_total``.
    """
    event = spec.name
    parse_request = wire.parse_request
    metrics = server.metrics

    async def handler(sid: str, *args: Any) -> tuple[bool, str | None]:
        ok, reason = True, None
        try:
            if closing_reason is not None and server.closing:
                ok, reason = False, closing_reason
            else:
                await business(sid, parse_request(event, args[0] if args else None))
        except JoinRejected as exc:
            ok, reason = False, str(exc)
        except SMCPError as exc:
            ok, reason = False, exc.message
        except Exception:
            log.exception("error in %s", event, extra={"sid": sid})
            ok, reason = False, internal_reason
        if counted:
            if ok:
                metrics.joins_total += 1
            else:
                metrics.join_failures_total += 1
                log.debug("join refused: %s", reason, extra={"sid": sid})
        return ok, reason

    return handler
