"""``hypothesis`` strategies of hostile SMCP input: what a broken or malicious peer may send.

Payloads are malformed, missing, extra, mistyped, huge or deeply nested; event names are the
table's, Socket.IO's reserved ones, unknown ones and non-strings; binary attachments appear
where JSON is expected. Needs ``hypothesis`` (the workspace's ``test`` dependency group)::

    @given(hostile.requests(names=EVENTS))
    def test_x(request): ...
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from smcp.core.events import EVENTS

__all__ = [
    "EXTREMES",
    "HUGE",
    "UNKNOWN_NAMES",
    "event_names",
    "fuzz_settings",
    "json_values",
    "nested",
    "payloads",
    "replies",
    "requests",
]

#: The size of a "huge" string: large for a handler, well under the server's message limit.
HUGE = 64 * 1024

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "o1", "comp1", "agentA", "computer", "agent", "../x", "\x00", "a" * 300]),
)


def json_values(*, binary: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value (small); with ``binary``, ``bytes`` leaves too (Socket.IO attachments)."""
    leaves = st.one_of(_SCALARS, st.binary(max_size=32)) if binary else _SCALARS
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)
        ),
        max_leaves=8,
    )


def nested(depth: int) -> Any:
    """A list or object nested ``depth`` levels deep."""
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


#: Huge, deep and wide values (built once: drawing them costs nothing).
EXTREMES: tuple[Any, ...] = (
    "x" * HUGE,
    nested(60),
    nested(300),
    list(range(5000)),
    {f"k{i}": i for i in range(2000)},
)
_EXTREMES = st.sampled_from(EXTREMES)


def _weighted(
    common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int
) -> st.SearchStrategy[Any]:
    """``common`` about ``odds`` times as often as ``rare``."""
    return st.one_of(*([common] * odds), rare)


def payloads(event: str, *, binary: bool = True) -> st.SearchStrategy[Any]:
    """The data of one ``event``: its model's fields with some missing, mistyped or extra, or
    anything else (non-objects, huge or deeply nested values, ``bytes``)."""
    spec = EVENTS.get(event)
    model = spec.request if spec is not None else None
    fields = sorted(model.model_fields) if model is not None else ["agent", "req_id", "computer"]
    values = _weighted(json_values(binary=binary), _EXTREMES, 12)
    shaped = st.builds(
        lambda d, extra: {**extra, **d},
        st.fixed_dictionaries({}, optional={name: st.one_of(_SCALARS, values) for name in fields}),
        st.dictionaries(st.text(max_size=10), values, max_size=2),
    )
    other = st.one_of(json_values(binary=binary), _EXTREMES, st.binary(max_size=64))
    return _weighted(shaped, other, 3)


def event_names(names: Any = EVENTS) -> st.SearchStrategy[Any]:
    """An event name: the table's, reserved, ``notify:*``, unknown, or not a string."""
    return st.one_of(
        st.sampled_from(sorted(names)),
        st.sampled_from(sorted(names)),
        st.sampled_from(["connect", "disconnect", "connect_error", "message", "*", "newListener"]),
        st.sampled_from(["notify:enter_office", "notify:x", "client:nope", "server:nope", ""]),
        st.text(max_size=30),
        st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.booleans()),
    )


_OTHER_NAMES = st.one_of(
    st.sampled_from(["connect", "disconnect", "connect_error", "message", "*", "newListener"]),
    st.sampled_from(["notify:enter_office", "notify:x", "client:nope", "server:nope", ""]),
    st.text(max_size=30),
    st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.booleans()),
)


def _args(payload: st.SearchStrategy[Any], binary: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    one = payload.map(lambda p: (p,))
    return st.one_of(one, one, one, st.just(()), st.tuples(payload, json_values(binary=binary)))


#: Unknown event names that are strings (what a server may relay to a client).
UNKNOWN_NAMES = st.one_of(
    st.sampled_from(["notify:x", "client:nope", "server:nope", ""]), st.text(max_size=30)
)


def requests(
    names: Any = EVENTS, *, binary: bool = True, others: st.SearchStrategy[Any] = _OTHER_NAMES
) -> st.SearchStrategy[tuple[Any, tuple[Any, ...]]]:
    """``(event, args)``: an event name (one of ``names``, or of ``others``: reserved, ``notify:*``,
    unknown, not a string) and its arguments (none, one payload, or several)."""
    known = [st.tuples(st.just(name), _args(payloads(name, binary=binary), binary)) for name in sorted(names)]
    other = st.tuples(others, _args(payloads("", binary=binary), binary))
    return st.one_of(*known, *([other] * max(1, len(known) // 3)))


def replies(*, binary: bool = True) -> st.SearchStrategy[tuple[Any, ...]]:
    """What a broken Computer may acknowledge a relayed request with (ack arguments)."""
    ok = st.just({"content": [{"type": "text", "text": "ok"}], "isError": False})
    error = st.fixed_dictionaries({"code": st.integers(-5, 70000), "message": st.text(max_size=20)})
    one = st.one_of(ok, error, json_values(binary=binary), _EXTREMES)
    return st.one_of(one.map(lambda r: (r,)), st.just(()), st.tuples(one, one))


def batches(
    names: Any = EVENTS,
    *,
    binary: bool = True,
    others: st.SearchStrategy[Any] = _OTHER_NAMES,
    senders: int = 1,
    min_size: int = 20,
    max_size: int = 40,
) -> st.SearchStrategy[list[tuple[int, Any, tuple[Any, ...], bool]]]:
    """Batches of ``(sender, event, args, with_ack)``: a few payloads are drawn per batch (each shaped
    for one of ``names``) and combined with events, argument counts and senders, so that a case costs
    a few integer draws (tens of thousands of cases stay affordable)."""
    ordered = sorted(names)
    entry = st.one_of(*[st.tuples(st.just(n), payloads(n, binary=binary)) for n in ordered])
    pool = st.lists(entry, min_size=3, max_size=8)
    name = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(ordered), others)
    case = st.tuples(
        st.integers(0, senders - 1),
        st.integers(0, 63),
        name,
        st.sampled_from((1, 1, 1, 1, 0, 2)),
        st.booleans() | st.just(True),
    )

    def combine(drawn: list[tuple[str, Any]], cases: list[tuple[int, int, Any, int, bool]]) -> list[Any]:
        out = []
        for sender, index, chosen, nargs, ack in cases:
            own, payload = drawn[index % len(drawn)]
            args = ((), (payload,), (payload, drawn[(index + 1) % len(drawn)][1]))[nargs]
            out.append((sender, own if chosen is None else chosen, args, ack))
        return out

    return st.builds(combine, pool, st.lists(case, min_size=min_size, max_size=max_size))


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of a seeded fuzz run (decorate with ``@seed(...)`` too): ``examples``
    draws, no deadline, no example database, generation only (the seed reproduces a failure;
    shrinking one takes minutes)."""
    return settings(
        max_examples=max(1, examples),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
