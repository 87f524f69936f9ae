"""The interactive REPL of ``smcp-computer run`` (prompt_toolkit input, rich output)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from smcp.computer._computer import Computer
    from smcp.computer._config import LoadedConfig
    from smcp.computer._link import ComputerLink

__all__ = ["COMMANDS", "execute", "print_config_problems", "run_repl"]

COMMANDS = {
    "servers": "list the MCP servers and their state",
    "status": "same as servers, plus office and connection",
    "start": "start NAME|all",
    "stop": "stop NAME|all",
    "restart": "restart NAME|all",
    "tools": "list the exposed tools",
    "call": "call TOOL [JSON] - run a tool locally (the rest of the line is the JSON)",
    "inputs": "inputs [set ID VALUE | clear ID] - list or set input values",
    "config": "config reload - reload the config files and apply the changes",
    "office": "office join OFFICE | office leave",
    "history": "recent tool calls",
    "help": "this list",
    "quit": "leave the office and stop",
}


def print_config_problems(loaded: LoadedConfig, console: Console) -> None:
    """Show the problems of a merged configuration (the CLI and the REPL both call this)."""
    for problem in loaded.problems:
        console.print(f"[yellow]config problem:[/yellow] {problem}", markup=True)


async def execute(
    line: str, computer: Computer, link: ComputerLink | None, configs: list[Path], console: Console
) -> bool:
    """Run one REPL command; False when the REPL should end."""
    from rich.markup import escape
    from rich.table import Table

    head, _, rest = line.strip().partition(" ")
    if head == "call":  # the JSON argument is the rest of the line, not shell words
        tool_name, _, raw = rest.strip().partition(" ")
        return await _call(computer, tool_name, raw.strip(), console)
    try:
        words = shlex.split(line)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return True
    if not words:
        return True
    cmd, args = words[0], words[1:]
    if cmd in ("quit", "exit"):
        return False
    if cmd == "help":
        table = Table("command", "what it does", box=None, show_edge=False, pad_edge=False)
        for name, text in COMMANDS.items():
            table.add_row(f"[bold]{name}[/bold]", escape(text))
        console.print(table)
    elif cmd in ("servers", "status"):
        table = Table("server", "bundle_id", "state", "tools", "restarts", "last error")
        for st in computer.status():
            table.add_row(
                st.name, st.bundle_id, st.state.value, str(st.tools), str(st.restarts), st.last_error or ""
            )
        console.print(table)
        if cmd == "status" and link is not None:
            console.print(f"connected: {link.connected}  office: {link.office}")
    elif cmd in ("start", "stop", "restart"):
        if not args:
            console.print(f"[red]usage: {cmd} NAME|all[/red]")
            return True
        try:
            if cmd == "start":
                await computer.start(args)
            elif cmd == "stop":
                await computer.stop(args)
            else:
                await computer.restart(args)
        except KeyError as exc:
            console.print(f"[red]{exc.args[0]}[/red]")
    elif cmd == "tools":
        for tool in computer.tools():
            console.print(f"[bold]{tool.name}[/bold]  {tool.description[:80]}")
    elif cmd == "inputs":
        if args[:1] == ["set"] and len(args) == 3:
            computer.resolver.set_value(args[1], args[2])
        elif args[:1] == ["clear"] and len(args) == 2:
            computer.resolver.clear_value(args[1])
        for spec in computer.inputs:
            console.print(f"{spec.id} ({spec.type}) {spec.description}")
    elif cmd == "config" and args[:1] == ["reload"]:
        from smcp.computer._config import merge_configs

        loaded = merge_configs(configs)
        print_config_problems(loaded, console)
        await computer.set_servers(loaded.servers, loaded.inputs)
        console.print(f"reloaded: {len(computer.servers)} server(s)")
    elif cmd == "office" and link is not None and args[:1] == ["join"] and len(args) == 2:
        await link.join(args[1])
    elif cmd == "office" and link is not None and args[:1] == ["leave"]:
        await link.leave()
    elif cmd == "history":
        for rec in computer.history:
            flag = "error" if rec.is_error else "ok"
            console.print(f"{rec.tool} {flag} {rec.duration * 1000:.0f} ms req_id={rec.req_id}")
    else:
        console.print(f"[red]unknown command {cmd!r}; type help[/red]")
    return True


async def _call(computer: Computer, tool: str, raw: str, console: Console) -> bool:
    if not tool:
        console.print("[red]usage: call TOOL \\[JSON][/red]")
        return True
    try:
        params = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        console.print(f"[red]invalid JSON: {exc}[/red]")
        return True
    if not isinstance(params, dict):
        console.print('[red]the arguments must be a JSON object, e.g. {"a": 1}[/red]')
        return True
    result = await computer.call_tool(tool, params, timeout=60)
    console.print_json(json.dumps(result, ensure_ascii=False))
    return True


async def run_repl(
    computer: Computer, link: ComputerLink | None, configs: list[Path], console: Console
) -> None:
    """Read commands until ``quit`` or end of input."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import InMemoryHistory

    session: PromptSession[str] = PromptSession(
        history=InMemoryHistory(), completer=WordCompleter([*COMMANDS, "all", "reload", "join", "leave"])
    )
    while True:
        try:
            line = await session.prompt_async("smcp> ")
        except (EOFError, KeyboardInterrupt):
            return
        try:
            if not await execute(line, computer, link, configs, console):
                return
        except Exception as exc:
            console.print(f"[red]{type(exc).__name__}: {exc}[/red]")
