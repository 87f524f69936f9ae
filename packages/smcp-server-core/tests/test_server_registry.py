"""The Registry contract, run against MemoryRegistry (a Redis registry should pass the same tests)."""

from __future__ import annotations

import pytest

from smcp.server.core import JoinRejected, MemoryRegistry, Registry, Session

pytestmark = pytest.mark.anyio


async def make(*sids: str) -> Registry:
    reg = MemoryRegistry()
    for sid in sids:
        await reg.add(Session(sid, "0.4.0"))
    return reg


async def test_join_lookup_members_leave() -> None:
    reg = await make("a", "c1", "c2")
    assert (await reg.join("a", "agent", "agent", "o1", max_agents=1)).entered
    await reg.join("c1", "computer", "one", "o1", max_agents=1)
    await reg.join("c2", "computer", "two", "o1", max_agents=1)
    assert [m.name for m in await reg.members("o1")] == ["agent", "one", "two"]
    found = await reg.lookup("o1", "two")
    assert found is not None and found.sid == "c2"
    assert await reg.lookup("o2", "two") is None
    before = await reg.leave("c2", "o1")
    assert (before.office, before.name) == ("o1", "two")
    assert await reg.lookup("o1", "two") is None
    assert await reg.office_count() == 1
    assert await reg.offices() == ["o1"]


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([("a", "agent", "x", "o1"), ("b", "agent", "y", "o1")], "already has an agent"),
        # 0.4.2's wording for a Computer's name, which clients match on
        (
            [("a", "computer", "x", "o1"), ("b", "computer", "x", "o1")],
            "^Computer with name 'x' already exists in room 'o1'$",
        ),
        ([("a", "agent", "x", "o1"), ("b", "computer", "x", "o1")], "already taken"),
        ([("a", "agent", "x", "o1"), ("a", "agent", "x", "o2")], "leave_office first"),
        ([("a", "agent", "x", "o1"), ("a", "computer", "x", "o1")], "Role mismatch"),
        ([("zz", "agent", "x", "o1")], "not registered"),
    ],
)
async def test_rejections_change_nothing(steps: list[tuple[str, str, str, str]], reason: str) -> None:
    reg = await make("a", "b")
    *ok, bad = steps
    for sid, role, name, office in ok:
        await reg.join(sid, role, name, office, max_agents=1)
    snapshot = [(m.sid, m.name, m.role) for m in await reg.members("o1")]
    with pytest.raises(JoinRejected, match=reason):
        await reg.join(*bad, max_agents=1)
    assert [(m.sid, m.name, m.role) for m in await reg.members("o1")] == snapshot


async def test_computer_move_reports_the_old_office_and_rename() -> None:
    reg = await make("c")
    await reg.join("c", "computer", "n", "o1", max_agents=1)
    moved = await reg.join("c", "computer", "n", "o2", max_agents=1)
    assert moved.left == ("o1", "n") and moved.entered
    assert await reg.members("o1") == []
    same = await reg.join("c", "computer", "n", "o2", max_agents=1)
    assert same.left is None and not same.entered
    renamed = await reg.join("c", "computer", "m", "o2", max_agents=1)
    assert renamed.left == ("o2", "n")
    assert await reg.lookup("o2", "n") is None
    assert (await reg.lookup("o2", "m")) is not None


async def test_remove_and_leave_free_the_agent_slot() -> None:
    reg = await make("a", "b")
    await reg.join("a", "agent", "x", "o1", max_agents=1)
    removed = await reg.remove("a")
    assert removed is not None and removed.office == "o1"
    await reg.join("b", "agent", "y", "o1", max_agents=1)
    await reg.leave("b", "o1")
    assert await reg.office_count() == 0
    assert await reg.offices() == []
    with pytest.raises(JoinRejected):
        await reg.leave("b", "o1")
    assert await reg.remove("nobody") is None
