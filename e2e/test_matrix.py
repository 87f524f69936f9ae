"""The eight-way matrix: Server x Agent x Computer, each ours or the official a2c-smcp 0.4.2.

Every scenario below runs in all eight cells (ids ``srv-ours/agent-official/comp-ours``); the
all-official cell is the control. Where 0.4.2 has a defect we fixed (docs/protocol.md, "Deliberate
differences"), the scenario asserts our behaviour whenever one of ours is on the path that decides
it, and records the official behaviour in the cells where only official code decides, so both stay
visible.

Processes: a lab (module scope) keeps one server per kind and one Computer per (server kind,
Computer kind), each Computer in its own office. Every test starts its own Agent driver process(es)
and, for scenarios that break or reconfigure a Computer, its own Computer in a unique office.
Logs: ``target/e2e/<test id>/`` (the shared processes' logs are linked in there, so a failure
report shows them too). A role of ours that is not installed yet turns its cells into expected
failures naming the issue.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from .harness import ProcessManager, write_mcp_json
from .harness.lab import Lab, open_lab, unique
from .harness.matrix import (
    COMBOS,
    AgentUnderTest,
    Combo,
    ComputerUnderTest,
    Kind,
    ServerUnderTest,
    matrix_servers,
    start_computer,
    start_server,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

SKILL_MD_BODY = "# Demo\nUse it well.\n"
BIG_SKILL_FILE = ("0123456789abcdef" * 4096).encode()  # 64 KiB: over the 32 KiB inline budget
TOOL_FAILED = "工具调用失败 / Tool call failed"  # the official Agent's text for every local failure

EXPECTED_TOOLS = {
    "toolbox__echo", "toolbox__slow_echo", "toolbox__fail", "toolbox__big_text", "toolbox__image",
    "toolbox__plus", "toolbox__grow", "toolbox__open_window", "toolbox__whoami", "toolbox__tagged",
}  # fmt: skip


def make_skill_home(root: Path) -> Path:
    skill = root / "user" / "demo-skill"
    if not skill.exists():
        skill.mkdir(parents=True)
        (skill / "SKILL.md").write_text(
            "---\nname: demo-skill\ndescription: A demo skill\n---\n" + SKILL_MD_BODY, encoding="utf-8"
        )
        (skill / "big.txt").write_bytes(BIG_SKILL_FILE)
    return root


# -- the lab: shared servers and Computers ------------------------------------------------------


class MatrixLab(Lab):
    """One server per kind (``where``) and one Computer per (``where``, Computer kind), each
    Computer in its own office; ``test_hosting.HostingLab`` swaps the servers."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.config = write_mcp_json(root / "mcp.json", matrix_servers())

    async def start_server(self, where: Any, name: str) -> ServerUnderTest:
        return await start_server(self.procs, where, name=name)

    def landing_root(self, where: str, kind: Kind) -> Path | None:
        return self.root / f"landing-{where}-{kind}"

    async def server(self, where: Any) -> ServerUnderTest:
        return await self.kept(
            ("server", where), lambda: self.start_server(where, f"{where}-server-{self.next_id()}")
        )

    async def computer(self, where: Any, kind: Kind) -> ComputerUnderTest:
        """The shared Computer of ``kind`` on the ``where`` server, in its own office."""

        async def start() -> ComputerUnderTest:
            server = await self.server(where)
            name = f"comp-{where}-{kind}-{self.next_id()}"
            return await start_computer(
                self.procs, kind, url=server.url, office=f"office-{where}-{kind}", name=name,
                config=self.config, landing_root=self.landing_root(where, kind),
                skill_home=make_skill_home(self.root / f"skills-{name}"), socketio_path=server.socketio_path,
                proc_name=f"{kind}-computer-{name}",
            )  # fmt: skip

        return await self.kept(("computer", where, kind), start)


@pytest.fixture(scope="module")
def lab() -> Iterator[MatrixLab]:
    with open_lab(MatrixLab, __file__) as current:
        yield current


# -- per-test stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    """What one scenario works with: the cell, its server, its Computer and Agent factory."""

    combo: Combo
    procs: ProcessManager
    server: ServerUnderTest
    computer: ComputerUnderTest | None
    office: str
    tmp: Path
    lab: MatrixLab | None = None
    cell: Cell | None = None
    agents: list[AgentUnderTest] = field(default_factory=list)

    @property
    def comp(self) -> ComputerUnderTest:
        assert self.computer is not None, "this scenario needs a Computer"
        return self.computer

    async def agent(
        self,
        *,
        name: str | None = None,
        token: str | None = None,
        office: str | None = None,
        connect: bool = True,
        join: bool = True,
    ) -> AgentUnderTest:
        agent = await AgentUnderTest.launch(
            self.procs,
            self.combo.agent,
            url=self.server.url,
            office=office or self.office,
            name=name or unique("agent"),
            token=self.server.token if token is None else token,
            socketio_path=self.server.socketio_path,
        )
        self.agents.append(agent)
        if connect:
            assert (await agent.call("connect"))["connected"] is True
            if join:
                await join_office(agent)
        return agent

    async def shared_agent(self) -> AgentUnderTest:
        """The cell's Agent, joined to the shared Computer's office (started on first use); a
        fresh Agent when there is no cell (hosting tests)."""
        if self.cell is None or self.lab is None or self.computer is None:
            return await self.agent()
        agent = self.cell.agent
        if agent is not None and not agent.proc.alive():
            self.lab.record_death(("cell-agent", self.combo.id), agent.proc)
            agent = None
        if agent is None:
            agent = await AgentUnderTest.launch(
                self.lab.procs, self.combo.agent, url=self.server.url, office=self.office,
                name=unique("cell-agent"), token=self.server.token, socketio_path=self.server.socketio_path,
            )  # fmt: skip
            self.cell.agent = agent
            assert (await agent.call("connect"))["connected"] is True
            await join_office(agent)
            self.lab.procs.share_logs_with(self.procs)
        return agent

    async def own_computer(self, *, office: str | None = None, name: str | None = None) -> ComputerUnderTest:
        """A Computer only this test uses (for scenarios that break or change it)."""
        office = office or unique("office")
        config = write_mcp_json(self.tmp / "mcp.json", matrix_servers())
        self.computer = await start_computer(
            self.procs, self.combo.computer, url=self.server.url, office=office,
            name=name or unique("comp"), config=config, socketio_path=self.server.socketio_path,
        )  # fmt: skip
        self.office = office
        return self.computer

    async def close(self) -> None:
        for agent in self.agents:
            with anyio.move_on_after(8):
                await agent.quit(timeout=5)


async def join_office(agent: AgentUnderTest, office: str | None = None, within: float = 10.0) -> None:
    """Join, retrying while the previous test's Agent is still being dropped by the server."""
    deadline = time.monotonic() + within
    args = {"office": office} if office else {}
    while True:
        ack = (await agent.call("join", **args))["ack"]
        if ack == [True, None]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"join refused: {ack}")
        await anyio.sleep(0.3)


class Cell:
    """What the tests of one cell share: its Agent (one per office at a time, so it is stopped
    before the next cell starts; pytest runs the tests of a module-scoped param together)."""

    def __init__(self, combo: Combo) -> None:
        self.combo = combo
        self.agent: AgentUnderTest | None = None

    def close(self) -> None:
        agent, self.agent = self.agent, None
        if agent is None or not agent.proc.alive():
            return
        try:
            agent.proc.write_line(json.dumps({"id": 0, "cmd": "quit", "args": {}}))
            agent.proc.wait_exit(10)
        except Exception:
            pass
        agent.proc.stop()


@pytest.fixture(scope="module", params=COMBOS, ids=str)
def combo(request: pytest.FixtureRequest) -> Combo:
    value: Combo = request.param
    return value


@pytest.fixture(scope="module")
def cell(lab: MatrixLab, combo: Combo) -> Iterator[Cell]:
    current = Cell(combo)
    try:
        yield current
    finally:
        current.close()


class Stacks:
    """The Stacks one test builds on a lab; :meth:`close` stops their Agents."""

    def __init__(self, lab: MatrixLab, procs: ProcessManager, tmp: Path, cell: Cell | None = None) -> None:
        self.lab, self.procs, self.tmp, self.cell = lab, procs, tmp, cell
        self.made: list[Stack] = []

    async def make(self, where: Any, combo: Combo, *, computer: bool) -> Stack:
        """A Stack on the lab's ``where`` server with, if ``computer``, the lab's Computer of the
        combo's kind; an expected failure when a role of ours is missing."""
        try:
            server = await self.lab.server(where)
            comp = await self.lab.computer(where, combo.computer) if computer else None
        finally:
            self.lab.procs.share_logs_with(self.procs)
        office = comp.office if comp is not None else unique("office")
        stack = Stack(combo, self.procs, server, comp, office, self.tmp, self.lab, self.cell)
        self.made.append(stack)
        return stack

    async def close(self) -> None:
        for stack in self.made:
            await stack.close()


@pytest.fixture
async def stack_factory(
    lab: MatrixLab, cell: Cell, procs: ProcessManager, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    stacks = Stacks(lab, procs, tmp_path, cell)

    async def make(combo: Combo, *, computer: str = "shared") -> Stack:
        """``computer``: ``"shared"`` (the lab's), ``"none"`` or ``"own"`` (call ``own_computer``)."""
        return await stacks.make(combo.server, combo, computer=computer == "shared")

    try:
        yield make
    finally:
        await stacks.close()


# -- answer helpers -------------------------------------------------------------------------------


def error_of(answer: dict[str, Any]) -> dict[str, Any] | None:
    err = answer.get("error")
    return err if isinstance(err, dict) else None


def protocol_code(answer: dict[str, Any]) -> int | None:
    """The ErrorPayload code of an answer: a raised protocol error, or a raw ack that is one."""
    err = error_of(answer)
    if err is not None:
        code = err.get("code")
        return code if isinstance(code, int) else None
    result = answer.get("result")
    if isinstance(result, dict) and isinstance(result.get("code"), int) and "message" in result:
        return int(result["code"])
    return None


def result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of an answer; fails the test with the error otherwise."""
    assert "result" in answer, f"expected a result, got {answer}"
    result: dict[str, Any] = answer["result"]
    return result


def text_of(result: dict[str, Any]) -> str:
    return "\n".join(str(c.get("text", "")) for c in result.get("content") or () if isinstance(c, dict))


def meta_of(result: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in ("meta", "_meta"):
        if isinstance(result.get(key), dict):
            merged.update(result[key])
    return merged


def is_local_timeout(answer: dict[str, Any]) -> bool:
    err = error_of(answer)
    return err is not None and ("Timeout" in str(err.get("type")) or "no answer" in str(err.get("message")))


def assert_not_found(answer: dict[str, Any], agent: Kind) -> None:
    """A 404 from the server: our Agent raises it typed; the official one folds it into a result."""
    if agent == "ours":
        assert protocol_code(answer) == 404, answer
    else:
        result = result_of(answer)
        assert result["isError"] is True
        assert "404" in text_of(result), result


async def collect_notifications(
    agent: AgentUnderTest, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += await agent.call("notifications")
        if done(seen):
            return seen
        await anyio.sleep(0.2)
    raise AssertionError(f"expected notifications did not arrive in {timeout} s; got {seen}")


# -- scenarios ----------------------------------------------------------------------------------
# Each takes a Stack; test_hosting.py reuses them.


async def scenario_version_gate(stack: Stack) -> None:
    base = f"{stack.server.socketio_url}?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.get(base)
        old = await http.get(base + "&a2c_version=0.3.9")
        good = await http.get(base + "&a2c_version=0.4.7")
    assert missing.status_code == 400
    assert missing.json() == {"code": 400, "message": "Missing a2c_version query parameter"}
    assert old.status_code == 400
    assert old.headers["x-a2c-error-code"] == "4008"
    assert old.json() == {
        "code": 4008, "message": "Protocol version mismatch", "server_version": "0.4.0",
        "client_version": "0.3.9", "min_supported": "0.4.0", "max_supported": "0.4.999",
    }  # fmt: skip
    assert good.status_code == 200 and good.text.startswith("0{")

    agent = await stack.agent(connect=False)
    refused = await agent.try_call("connect", version="0.3.9", timeout=20)
    err = error_of(refused)
    assert err is not None, refused
    if stack.combo.agent == "ours" or err["type"] == "ProtocolVersionError":
        assert err["type"] == "ProtocolVersionError" and protocol_code(refused) == 4008, refused
    else:
        # 0.4.2 Agent: aiohttp sometimes loses the 400 body, and the rejection surfaces as a bare
        # transport error instead of a ProtocolVersionError (ours re-probes the gate for the body)
        assert err["type"] == "RuntimeError" and err["code"] is None, refused
    assert (await agent.call("connect", version="0.4.0"))["connected"] is True


async def scenario_auth(stack: Stack) -> None:
    good = await stack.agent(join=False)  # connects (asserted inside)
    for label, token in (("wrong", "not-the-token"), ("missing", "")):
        agent = await stack.agent(name=unique(f"agent-{label}"), token=token, connect=False)
        answer = await agent.try_call("connect", timeout=20)
        err = error_of(answer)
        assert err is not None, f"{label} token was accepted: {answer}"
        assert err.get("code") != 4008, err
        if stack.combo.agent == "ours":
            assert err["type"] == "AuthenticationError", err
        else:
            assert err["type"] == "ConnectionError", err
    # the good one is connected and can join
    await join_office(good)


async def scenario_join_rules(stack: Stack) -> None:
    first = await stack.agent()
    second = await stack.agent(join=False)
    refused = (await second.call("join"))["ack"]
    assert refused[0] is False and isinstance(refused[1], str) and refused[1], refused
    if stack.combo.server == "official":
        assert refused == [False, "Internal server error: Agent already in room"]
    # same office again: accepted, nothing changes
    assert (await first.call("join"))["ack"] == [True, None]
    # an agent may not be in two offices
    moved = (await first.call("join", office=unique("other-office")))["ack"]
    assert moved[0] is False, moved
    # the role of a connection never changes
    mismatch = (await first.call("join", role="computer", name=unique("as-computer")))["ack"]
    assert mismatch[0] is False and "role" in str(mismatch[1]).lower(), mismatch
    # leave, then the second agent gets in
    assert (await first.call("leave"))["ack"] == [True, None]
    await join_office(second)


async def scenario_leave_rules(stack: Stack) -> None:
    """Leaving an office you are not in (B5): ours refuses and keeps you where you are; 0.4.2
    says yes and silently clears your real office binding."""
    agent = await stack.agent()
    ack = (await agent.call("leave", office=unique("not-mine")))["ack"]
    still_there = await agent.try_call("list_room", timeout=4)
    if stack.combo.server == "ours":
        assert ack[0] is False and ack[1], ack
        names = {s["name"] for s in result_of(still_there)["sessions"]}
        assert agent.name in names
    else:
        assert ack == [True, None]
        assert is_local_timeout(still_there), still_there  # no longer in its own office


async def scenario_names_per_office(stack: Stack) -> None:
    """A name taken in one office is free in another (B3); 0.4.2 names are namespace-wide."""
    agent = await stack.agent(name=stack.comp.name, office=unique("twin-office"), join=False)
    ack = (await agent.call("join"))["ack"]
    if stack.combo.server == "ours":
        assert ack == [True, None], ack
    else:
        assert ack[0] is False and "already registered" in str(ack[1]), ack


async def scenario_list_room(stack: Stack) -> None:
    agent = await stack.shared_agent()
    room = await agent.call("list_room")
    sessions = {(s["name"], s["role"], s["office_id"]) for s in room["sessions"]}
    assert sessions == {(agent.name, "agent", stack.office), (stack.comp.name, "computer", stack.office)}
    computers = await agent.call("list_computers")
    assert [(c["name"], c["role"]) for c in computers] == [(stack.comp.name, "computer")]

    # another office's members are not listable (B1/B6): ours answers, 0.4.2 stays silent
    other = await agent.try_call("list_room", office=unique("elsewhere"), timeout=4)
    if stack.combo.server == "ours":
        assert protocol_code(other) in (403, 404), other
    else:
        assert is_local_timeout(other), other


async def scenario_get_tools(stack: Stack) -> None:
    agent = await stack.shared_agent()
    tools = (await agent.call("get_tools", computer=stack.comp.name))["tools"]
    by_name = {t["name"]: t for t in tools}
    assert EXPECTED_TOOLS <= set(by_name) <= EXPECTED_TOOLS | {"toolbox__extra"}
    assert "toolbox__add" not in by_name and "toolbox__crash" not in by_name  # aliased, forbidden
    assert {t["bundle_id"] for t in tools} == {"toolbox"}
    assert by_name["toolbox__echo"]["params_schema"]["required"] == ["text"]
    plus_meta = json.loads(by_name["toolbox__plus"]["meta"]["a2c_tool_meta"])
    assert plus_meta["alias"] == "plus" and plus_meta["auto_apply"] is True
    tagged_meta = json.loads(by_name["toolbox__tagged"]["meta"]["a2c_tool_meta"])
    assert tagged_meta["tags"] == ["declared"]


async def scenario_get_config(stack: Stack) -> None:
    agent = await stack.shared_agent()
    config = await agent.call("get_config", computer=stack.comp.name)
    assert list(config["servers"]) == ["toolbox"]
    server = config["servers"]["toolbox"]
    assert server["type"] == "stdio"
    assert server["forbidden_tools"] == ["crash"]
    assert server["tool_meta"]["add"]["alias"] == "plus"
    assert server["server_parameters"]["env"] == {"SMCP_TOOLBOX_TAG": "matrix"}
    assert server["server_parameters"]["args"][-1] == "stdio"


async def scenario_tool_call(stack: Stack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    echo = result_of(await agent.tool_call(comp, "toolbox__echo", {"text": "hi"}, 20))
    assert echo["isError"] is False
    assert text_of(echo) == "hi"
    assert echo["structuredContent"] == {"result": "hi"}
    plus = result_of(await agent.tool_call(comp, "toolbox__plus", {"a": 2, "b": 40}))
    assert plus["isError"] is False and text_of(plus) == "42"
    assert meta_of(plus)["a2c_tool_meta"]["alias"] == "plus"
    whoami = result_of(await agent.tool_call(comp, "toolbox__whoami", {}))
    assert text_of(whoami) == "matrix"
    failed = result_of(await agent.tool_call(comp, "toolbox__fail", {"message": "boom"}))
    assert failed["isError"] is True and "boom" in text_of(failed)


async def scenario_unknown_tool(stack: Stack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    for name in ("toolbox__nope", "toolbox__crash", "toolbox__add"):  # unknown, forbidden, aliased away
        result = result_of(await agent.tool_call(comp, name, {}, 20))
        assert result["isError"] is True, (name, result)
        if stack.combo.computer == "ours":  # one text item naming the tool and the available ones
            assert f"No tool named '{name}'" in text_of(result), (name, result)
            assert "Available tools: " in text_of(result) and "toolbox__echo" in text_of(result)
        else:  # 0.4.2 sends no content item
            assert result["content"] == [], (name, result)
        structured = result["structuredContent"]
        assert isinstance(structured, dict) and name in structured["error"], (name, result)
    # the forbidden crash never ran: the MCP server still answers
    echo = result_of(await agent.tool_call(comp, "toolbox__echo", {"text": "alive"}))
    assert text_of(echo) == "alive"


async def scenario_unknown_computer(stack: Stack) -> None:
    agent = await stack.shared_agent()
    answer = await agent.tool_call("no-such-computer", "x__y", {}, 10)
    assert_not_found(answer, stack.combo.agent)
    tools = await agent.try_call("get_tools", computer="no-such-computer", timeout=15)
    if stack.combo.agent == "ours":
        assert protocol_code(tools) == 404, tools
    else:  # 0.4.2 Agent: the 404 surfaces as a req_id mismatch error
        assert error_of(tools) is not None, tools


async def scenario_cross_office(stack: Stack) -> None:
    """The Agent calls a Computer of another office."""
    assert stack.lab is not None
    other_kind: Kind = "ours" if stack.combo.computer == "official" else "official"
    other = await stack.lab.computer(stack.combo.server, other_kind)
    stack.lab.procs.share_logs_with(stack.procs)
    agent = await stack.shared_agent()
    started = time.monotonic()
    answer = await agent.tool_call(other.name, "toolbox__echo", {"text": "x"}, 2)
    elapsed = time.monotonic() - started
    if stack.combo.server == "ours":
        # B1: answered at once with 404; the other office's members stay invisible
        assert elapsed < 2.0, elapsed
        assert_not_found(answer, stack.combo.agent)
    elif stack.combo.agent == "ours":
        # 0.4.2 server stays silent; our Agent times out, sends a cancel and says so (B8)
        result = result_of(answer)
        assert result["isError"] is True and meta_of(result).get("a2c_timeout") is True, result
    else:
        # control: silence, then the official Agent's broken timeout branch (B8): a generic
        # failure text, no a2c_timeout meta (and no cancel is sent)
        result = result_of(answer)
        assert result["isError"] is True
        assert text_of(result).startswith(TOOL_FAILED), result
        assert not meta_of(result).get("a2c_timeout"), result


async def scenario_timeout(stack: Stack) -> None:
    agent = await stack.shared_agent()
    started = time.monotonic()
    answer = await agent.tool_call(stack.comp.name, "toolbox__slow_echo", {"text": "late", "seconds": 8}, 2)
    elapsed = time.monotonic() - started
    result = result_of(answer)
    assert result["isError"] is True, result
    assert elapsed < 8.0 + 2, elapsed
    if stack.combo.agent == "ours":
        assert meta_of(result).get("a2c_timeout") is True, result
    elif meta_of(result).get("a2c_timeout") is not True:
        # the official Agent gives up at exactly ``timeout`` (B2/B8): generic failure text
        assert text_of(result).startswith(TOOL_FAILED), result
    # the Computer is still usable afterwards
    echo = result_of(await agent.tool_call(stack.comp.name, "toolbox__echo", {"text": "ok"}))
    assert text_of(echo) == "ok"


async def scenario_cancel(stack: Stack) -> None:
    agent = await stack.shared_agent()
    command = agent.send_tool_call(
        stack.comp.name, "toolbox__slow_echo", {"text": "never", "seconds": 15}, 30
    )
    req_id = None
    deadline = time.monotonic() + 10
    while req_id is None and time.monotonic() < deadline:
        req_id = (await agent.call("req_id", of=command))["req_id"]
        await anyio.sleep(0.1)
    assert req_id, "the driver never reported the tool call's req_id"
    await anyio.sleep(1.0)  # let the call reach the MCP server
    started = time.monotonic()
    assert (await agent.call("cancel", req_id=req_id))["sent"] is True
    answer = await agent.wait(command, timeout=20)
    assert time.monotonic() - started < 8, "the cancel did not stop the call"
    result = result_of(answer)
    assert result["isError"] is True, result
    assert meta_of(result).get("a2c_cancelled") is True, result


async def scenario_computer_disconnect(stack: Stack) -> None:
    comp = await stack.own_computer()
    agent = await stack.agent()
    command = agent.send_tool_call(comp.name, "toolbox__slow_echo", {"text": "never", "seconds": 20}, 25)
    await anyio.sleep(1.5)
    started = time.monotonic()
    comp.kill()
    answer = await agent.wait(command, timeout=40)
    assert time.monotonic() - started < 10, "the call was not failed when its Computer went away"
    assert_not_found(answer, stack.combo.agent)
    notes = await collect_notifications(
        agent, lambda seen: any(n["event"] == "notify:leave_office" for n in seen), timeout=15
    )
    leave = next(n for n in notes if n["event"] == "notify:leave_office")
    assert leave["data"] == {"office_id": stack.office, "computer": comp.name}


async def scenario_update_notifications(stack: Stack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    await agent.call("notifications")  # start from a clean slate
    grown = result_of(await agent.tool_call(comp, "toolbox__grow", {}))
    assert text_of(grown) == "grown"

    def refreshed(seen: list[dict[str, Any]]) -> bool:
        return any(
            n["event"] == "tools_received" and n["computer"] == comp and "toolbox__extra" in n["tools"]
            for n in seen
        )

    # The lab's Computer is shared by the two cells of a (server, Computer) pair, so the second
    # ``grow`` may leave tools/list unchanged: the Computer still forwards every MCP
    # tools/list_changed (docs/protocol.md §6.2; ours used to drop an unchanged one: issue 6).
    notes = await collect_notifications(agent, refreshed)
    assert {"event": "notify:update_tool_list", "data": {"computer": comp}} in notes, notes
    tools = {t["name"] for t in (await agent.call("get_tools", computer=comp))["tools"]}
    assert "toolbox__extra" in tools

    window = unique("w")
    opened = result_of(await agent.tool_call(comp, "toolbox__open_window", {"name": window}))
    assert text_of(opened) == f"window://toolbox/{window}"
    await collect_notifications(
        agent, lambda seen: {"event": "notify:update_desktop", "data": {"computer": comp}} in seen
    )
    desktop = (await agent.call("get_desktop", computer=comp, window=f"window://toolbox/{window}"))[
        "desktops"
    ]
    assert desktop == [f"window://toolbox/{window}\n\ncontent of window://toolbox/{window}"]


async def scenario_desktop(stack: Stack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    desktop = (await agent.call("get_desktop", computer=comp))["desktops"]
    assert desktop[0] == "window://toolbox/main\n\ncontent of window://toolbox/main"
    assert "window://toolbox/side\n\ncontent of window://toolbox/side" in desktop
    assert len((await agent.call("get_desktop", computer=comp, size=1))["desktops"]) == 1
    only = (await agent.call("get_desktop", computer=comp, window="window://toolbox/side"))["desktops"]
    assert only == ["window://toolbox/side\n\ncontent of window://toolbox/side"]


async def scenario_resources(stack: Stack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    page = await agent.call("get_resources", computer=comp, mcp_server="toolbox")
    uris = [r["uri"] for r in page["resources"]]
    assert "window://toolbox/main" in uris and "mem://toolbox/item/29" in uris
    assert "next_cursor" not in page or not page["next_cursor"]
    main = next(r for r in page["resources"] if r["uri"] == "window://toolbox/main")
    assert main["annotations"]["priority"] == 0.9
    missing = await agent.try_call("get_resources", computer=comp, mcp_server="nope")
    assert protocol_code(missing) == 4014, missing


async def scenario_skills(stack: Stack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    skills: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not skills and time.monotonic() < deadline:  # discovery runs in the background at start
        skills = (await agent.call("get_skills", computer=comp))["skills"]
        if not skills:
            await anyio.sleep(0.3)
    assert [(s["name"], s["source"]) for s in skills] == [("demo-skill", "user")]
    assert skills[0]["description"] == "A demo skill"
    skill_md = await agent.call("get_skill", computer=comp, name="demo-skill")
    assert skill_md["body"] == SKILL_MD_BODY
    assert skill_md["mime_type"] == "text/markdown"
    big = await agent.call("get_skill", computer=comp, name="demo-skill", rel_path="big.txt")
    assert big["sha256"] == hashlib.sha256(BIG_SKILL_FILE).hexdigest()
    if "body" in big:
        assert big["body"].encode() == BIG_SKILL_FILE
    else:  # the official Agent hands back the handle of a non-inline file
        assert big.get("blob_handle"), big
    invalid = await agent.try_call("get_skill", computer=comp, name="Bad Name")
    assert protocol_code(invalid) == 4016, invalid


async def scenario_blob_sideband(stack: Stack) -> None:
    agent = await stack.shared_agent()
    expected = png_bytes(100_000)
    result = result_of(await agent.tool_call(stack.comp.name, "toolbox__image", {"n_bytes": 100_000}, 30))
    assert result["isError"] is False
    item = result["content"][0]
    assert item["type"] == "image" and item["mimeType"] == "image/png"
    assert base64.b64decode(item["data"]) == expected
    assert not any(k.startswith("a2c_") for k in (item.get("_meta") or {}))


async def scenario_upload(stack: Stack) -> None:
    agent = await stack.shared_agent()
    payload = bytes(range(256)) * 1200  # 300 KiB: two chunks
    uploaded = await agent.call(
        "put_blob", computer=stack.comp.name, data_b64=base64.b64encode(payload).decode(),
        name_hint="matrix.bin", timeout=60,
    )  # fmt: skip
    assert uploaded["sha256"] == hashlib.sha256(payload).hexdigest()
    assert uploaded["total_size"] == len(payload)
    assert Path(uploaded["landing_path"]).read_bytes() == payload


async def scenario_large_result(stack: Stack) -> None:
    """A 2 MB tool result: over 0.4.2's 1 MB Engine.IO limit, under ours (B9)."""
    comp = await stack.own_computer()
    agent = await stack.agent()
    size = 2_000_000
    answer = await agent.tool_call(comp.name, "toolbox__big_text", {"n_bytes": size}, 15)
    if stack.combo.server == "ours":
        result = result_of(answer)
        assert result["isError"] is False, {k: str(v)[:300] for k, v in result.items()}
        assert len(text_of(result)) == size
    else:
        # control: the official server refuses the 1 MB+ reply and drops the Computer's
        # connection; the Agent gets a 404 (the Computer left) or nothing at all
        result = answer.get("result")
        if result is not None:
            assert result["isError"] is True, "a 2 MB reply went through the 0.4.2 server"
        else:
            assert protocol_code(answer) == 404 or is_local_timeout(answer), answer


def png_bytes(n_bytes: int) -> bytes:
    from smcp.testing.mcp_servers.toolbox import png_bytes as make

    return make(n_bytes)


# -- the matrix ---------------------------------------------------------------------------------


async def test_matrix_version_gate(stack_factory: Any, combo: Combo) -> None:
    await scenario_version_gate(await stack_factory(combo, computer="none"))


async def test_matrix_auth(stack_factory: Any, combo: Combo) -> None:
    await scenario_auth(await stack_factory(combo, computer="none"))


async def test_matrix_join_rules(stack_factory: Any, combo: Combo) -> None:
    await scenario_join_rules(await stack_factory(combo, computer="none"))


async def test_matrix_leave_rules(stack_factory: Any, combo: Combo) -> None:
    await scenario_leave_rules(await stack_factory(combo, computer="none"))


async def test_matrix_names_per_office(stack_factory: Any, combo: Combo) -> None:
    await scenario_names_per_office(await stack_factory(combo))


async def test_matrix_list_room(stack_factory: Any, combo: Combo) -> None:
    await scenario_list_room(await stack_factory(combo))


async def test_matrix_get_tools(stack_factory: Any, combo: Combo) -> None:
    await scenario_get_tools(await stack_factory(combo))


async def test_matrix_get_config(stack_factory: Any, combo: Combo) -> None:
    await scenario_get_config(await stack_factory(combo))


async def test_matrix_tool_call(stack_factory: Any, combo: Combo) -> None:
    await scenario_tool_call(await stack_factory(combo))


async def test_matrix_unknown_tool(stack_factory: Any, combo: Combo) -> None:
    await scenario_unknown_tool(await stack_factory(combo))


async def test_matrix_unknown_computer(stack_factory: Any, combo: Combo) -> None:
    await scenario_unknown_computer(await stack_factory(combo))


@pytest.mark.slow
async def test_matrix_cross_office(stack_factory: Any, combo: Combo) -> None:
    await scenario_cross_office(await stack_factory(combo))


@pytest.mark.slow
async def test_matrix_timeout(stack_factory: Any, combo: Combo) -> None:
    await scenario_timeout(await stack_factory(combo))


async def test_matrix_cancel(stack_factory: Any, combo: Combo) -> None:
    await scenario_cancel(await stack_factory(combo))


@pytest.mark.slow
async def test_matrix_computer_disconnect(stack_factory: Any, combo: Combo) -> None:
    await scenario_computer_disconnect(await stack_factory(combo, computer="own"))


async def test_matrix_update_notifications(stack_factory: Any, combo: Combo) -> None:
    await scenario_update_notifications(await stack_factory(combo))


async def test_matrix_desktop(stack_factory: Any, combo: Combo) -> None:
    await scenario_desktop(await stack_factory(combo))


async def test_matrix_resources(stack_factory: Any, combo: Combo) -> None:
    await scenario_resources(await stack_factory(combo))


async def test_matrix_skills(stack_factory: Any, combo: Combo) -> None:
    await scenario_skills(await stack_factory(combo))


async def test_matrix_blob_sideband(stack_factory: Any, combo: Combo) -> None:
    await scenario_blob_sideband(await stack_factory(combo))


async def test_matrix_upload(stack_factory: Any, combo: Combo) -> None:
    await scenario_upload(await stack_factory(combo))


@pytest.mark.slow
async def test_matrix_large_result(stack_factory: Any, combo: Combo) -> None:
    await scenario_large_result(await stack_factory(combo, computer="own"))
