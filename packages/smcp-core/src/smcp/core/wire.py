"""Turning models into wire JSON and wire JSON into models.

One rule for every role: :func:`to_wire` dumps a model the way 0.4.2 peers expect it, and
:func:`parse_request` / :func:`parse_reply` validate incoming data against the event table,
raising :class:`~smcp.core.errors.BadRequestError` (carrying a ready-to-send 400 payload)
or the typed error of a flat ErrorPayload.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError

from smcp.core.errors import (
    BadRequestError,
    MalformedReplyError,
    SMCPError,
    error_from_payload,
    is_error_payload,
)
from smcp.core.events import EVENTS

__all__ = [
    "dumps",
    "invalid_payload",
    "loads",
    "parse",
    "parse_reply",
    "parse_request",
    "to_wire",
    "warm_up",
]

M = TypeVar("M", bound=BaseModel)


def to_wire(model: BaseModel) -> dict[str, Any]:
    """A model as plain JSON data (aliases, optional ``None`` fields omitted)."""
    return model.model_dump(mode="json", by_alias=True)


def dumps(data: Any) -> str:
    """Compact JSON text of plain data or a model."""
    if isinstance(data, BaseModel):
        data = to_wire(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


def _field_of(error: Any) -> str:
    loc = error.get("loc") or ()
    return ".".join(str(part) for part in loc) or "<payload>"


def invalid_payload(
    event: str, field: str, reason: str, error: type[SMCPError] = BadRequestError
) -> SMCPError:
    """The error for a malformed payload (400 unless ``error`` says otherwise): names the event,
    the field and the reason."""
    return error(
        f"{event}: field '{field}': {reason}",
        details={"event": event, "field": field, "reason": reason},
    )


def parse(event: str, model: type[M], data: object, error: type[SMCPError] = BadRequestError) -> M:
    """Validate ``data`` as ``model``; on failure raise ``error`` (a 400) naming the first bad field."""
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        raise invalid_payload(event, "<payload>", f"expected a JSON object, got {kind}", error)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise invalid_payload(event, _field_of(first), first["msg"], error) from None


def parse_request(event: str, data: object, *, at_computer: bool = False) -> BaseModel:
    """Validate the request of ``event`` with the model the event table names.

    The error is a 400; with ``at_computer`` it is the event's :attr:`~EventSpec.malformed`
    code, the one official peers expect from a Computer (4016 for ``get_skill``, ...).
    """
    spec = EVENTS.get(event)
    if spec is None or spec.request is None:
        raise invalid_payload(event, "<event>", f"unknown event {event!r}")
    return parse(event, spec.request, data, spec.malformed_error if at_computer else BadRequestError)


@overload
def parse_reply(event: str, data: object) -> BaseModel: ...
@overload
def parse_reply(event: str, data: object, model: type[M]) -> M: ...
def parse_reply(event: str, data: object, model: type[BaseModel] | None = None) -> BaseModel:
    """Validate a reply with ``model`` (default: the reply model the event table names).

    A flat ErrorPayload raises its typed :class:`SMCPError`; anything else that does not
    validate raises :class:`~smcp.core.errors.MalformedReplyError`.
    """
    if is_error_payload(data):
        assert isinstance(data, dict)
        raise error_from_payload(data)
    if model is None:
        spec = EVENTS.get(event)
        found = spec.reply if spec is not None else None
        if found is None:
            raise ValueError(f"{event!r} has no reply model in the event table")
        model = found
    try:
        return parse(event, model, data)
    except BadRequestError as exc:
        raise MalformedReplyError(f"malformed reply to {event}: {exc.message}", details=exc.details) from None


def warm_up() -> None:
    """Build every event model's validator and serializer now instead of on first use."""
    for spec in EVENTS.values():
        for model in (spec.request, spec.reply):  # resolving imports smcp.core.models
            if model is not None:
                model.model_rebuild()
