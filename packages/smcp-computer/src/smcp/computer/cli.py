"""The ``smcp-computer`` command: ``run`` a Computer in an office, ``validate`` a config file.

``smcp-computer run --url URL --token TOKEN --office OFFICE --name NAME --config mcp.json`` starts
the MCP servers, joins the office, prints ``READY`` on stdout (or ``FAILED <reason>``) and serves
until SIGINT/SIGTERM. On a terminal it opens a REPL unless ``--no-repl`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from smcp.computer._computer import ConfirmCallback
    from smcp.computer._config import LoadedConfig

__all__ = ["app", "main"]

app = typer.Typer(
    name="smcp-computer",
    help="An A2C-SMCP Computer: hosts MCP servers and serves their tools to an office.",
    no_args_is_help=True,
    add_completion=False,
)


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _problems_text(loaded: LoadedConfig) -> list[str]:
    from smcp.computer._inputs import placeholders_in
    from smcp.core.wire import to_wire

    out = [str(p) for p in loaded.errors]
    known = {spec.id for spec in loaded.inputs}
    for server in loaded.servers:
        missing = placeholders_in(to_wire(server.server_parameters)) - known
        for input_id in sorted(missing):
            out.append(f"servers.{server.name}: placeholder ${{input:{input_id}}} names no declared input")
    return out


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="mcp.json (JSON, or YAML with .yaml/.yml)")],
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON report on stdout")] = False,
) -> None:
    """Check a configuration file without starting anything (exit 0 when valid, 1 otherwise)."""
    from smcp.computer._config import ConfigError, bundle_id_of, load_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        if as_json:
            print(json.dumps({"ok": False, "problems": [str(exc)], "servers": [], "inputs": []}))
        else:
            _console().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    problems = _problems_text(loaded)
    warnings = [str(p) for p in loaded.warnings]
    servers = [
        {"name": s.name, "bundle_id": bundle_id_of(s), "type": s.type, "disabled": s.disabled}
        for s in loaded.servers
    ]
    if as_json:
        report = {"ok": not problems, "problems": problems, "warnings": warnings, "servers": servers}
        report["inputs"] = [spec.id for spec in loaded.inputs]
        print(json.dumps(report))
    else:
        console = _console()
        for server in servers:
            flag = " (disabled)" if server["disabled"] else ""
            console.print(
                f"server {server['name']} -> bundle_id {server['bundle_id']} [{server['type']}]{flag}"
            )
        for text in problems:
            console.print(f"[red]problem:[/red] {text}")
        for text in warnings:  # the text already says "warning:"
            console.print(text, style="yellow", markup=False)
        console.print("[green]valid[/green]" if not problems else f"[red]{len(problems)} problem(s)[/red]")
    raise typer.Exit(0 if not problems else 1)


def _confirm_callback(auto_apply: bool, interactive: bool) -> ConfirmCallback | None:
    if auto_apply:

        async def approve(_name: str, _params: dict[str, Any]) -> bool:
            return True

        return approve
    if not interactive:
        return None
    lock = asyncio.Lock()

    async def ask(name: str, params: dict[str, Any]) -> bool:
        from prompt_toolkit.application import in_terminal

        def prompt() -> bool:
            sys.stderr.write(f"\nRun tool {name} with {json.dumps(params, ensure_ascii=False)[:400]}? [y/N] ")
            sys.stderr.flush()
            return sys.stdin.readline().strip().lower() in ("y", "yes")

        async with lock, in_terminal():  # suspends the REPL prompt while the question is on screen
            return await asyncio.wait_for(asyncio.to_thread(prompt), 120.0)

    return ask


@app.command()
def run(  # noqa: PLR0917 - one parameter per CLI option
    url: Annotated[str, typer.Option(help="SMCP server URL, e.g. http://127.0.0.1:8000")],
    office: Annotated[str, typer.Option(help="office (room) to join")],
    name: Annotated[str, typer.Option(help="this Computer's name in the office")],
    config: Annotated[
        list[Path] | None, typer.Option(help="mcp.json (JSON or YAML); repeat to merge several")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="SMCP_TOKEN", help="token sent in auth.token")] = None,
    auto_apply: Annotated[bool, typer.Option("--auto-apply", help="approve every tool call")] = False,
    no_repl: Annotated[
        bool, typer.Option("--no-repl", help="no interactive REPL even on a terminal")
    ] = False,
    input_value: Annotated[
        list[str] | None, typer.Option("--input", help="ID=VALUE for an input; repeatable")
    ] = None,
    socketio_path: Annotated[str, typer.Option(help="Engine.IO path on the server")] = "socket.io",
    landing_root: Annotated[
        Path | None, typer.Option(help="directory where client:put_blob uploads land (off when unset)")
    ] = None,
    skill_home: Annotated[Path | None, typer.Option(envvar="SMCP_SKILL_HOME", help="skill home")] = None,
    skill_dir: Annotated[list[Path] | None, typer.Option(help="extra user skill directory")] = None,
    spool_dir: Annotated[Path | None, typer.Option(help="blob spool directory")] = None,
    max_restarts: Annotated[int, typer.Option(help="restart attempts for a failing MCP server")] = 5,
    log_level: Annotated[str, typer.Option(help="logging level")] = "WARNING",
) -> None:
    """Start the MCP servers, join OFFICE as NAME and serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    values: dict[str, str] = {}
    for item in input_value or ():
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--input expects ID=VALUE, got {item!r}")
        values[key] = value
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    code = asyncio.run(
        _run(
            url=url,
            office=office,
            name=name,
            configs=list(config or ()),
            token=token,
            auto_apply=auto_apply,
            repl=interactive and not no_repl,
            interactive=interactive,
            values=values,
            socketio_path=socketio_path,
            landing_root=landing_root,
            skill_home=skill_home,
            skill_dirs=list(skill_dir or ()),
            spool_dir=spool_dir,
            max_restarts=max_restarts,
        )
    )
    raise typer.Exit(code)


def _fail(reason: str) -> NoReturn:
    print(f"FAILED {reason}", flush=True)
    raise typer.Exit(1)


def load_configs(paths: list[Path], console: Console) -> LoadedConfig:
    """Load and merge several config files (problems printed; first server/input id wins)."""
    from smcp.computer._config import LoadedConfig, load_config

    servers: list[Any] = []
    inputs: list[Any] = []
    seen_inputs: set[str] = set()
    problems: list[Any] = []
    for path in paths:
        loaded = load_config(path)
        servers.extend(loaded.servers)
        for spec in loaded.inputs:
            if spec.id not in seen_inputs:
                seen_inputs.add(spec.id)
                inputs.append(spec)
        problems.extend(loaded.problems)
    for problem in problems:
        console.print(f"[yellow]config problem:[/yellow] {problem}")
    return LoadedConfig(servers, inputs, problems)


async def _run(
    *,
    url: str,
    office: str,
    name: str,
    configs: list[Path],
    token: str | None,
    auto_apply: bool,
    repl: bool,
    interactive: bool,
    values: dict[str, str],
    socketio_path: str,
    landing_root: Path | None,
    skill_home: Path | None,
    skill_dirs: list[Path],
    spool_dir: Path | None,
    max_restarts: int,
) -> int:
    from smcp.computer._computer import Computer
    from smcp.computer._config import ConfigError
    from smcp.computer._hosting import ServerState, Supervision
    from smcp.computer._inputs import InputResolver
    from smcp.computer._link import ComputerLink

    console = _console()
    try:
        loaded = load_configs(configs, console)
    except ConfigError as exc:
        print(f"FAILED {exc}", flush=True)
        return 1
    if not auto_apply and not interactive:
        console.print(
            "[yellow]note:[/yellow] not on a terminal and no --auto-apply: tool calls without "
            "tool_meta auto_apply: true will be refused"
        )
    resolver = InputResolver(loaded.inputs, values=values, interactive=interactive)
    computer = Computer(
        name,
        loaded.servers,
        confirm=_confirm_callback(auto_apply, interactive),
        resolver=resolver,
        supervision=Supervision(max_attempts=max_restarts),
        spool_dir=spool_dir,
        skill_home=skill_home,
        skill_dirs=skill_dirs,
        landing_root=landing_root,
    )
    link = ComputerLink(computer, url, token=token, socketio_path=socketio_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-POSIX
            loop.add_signal_handler(sig, stop.set)
    try:
        with console.status(f"starting {len(computer.servers)} MCP server(s)..."):
            statuses = await computer.start()
        for status in statuses:
            if status.state is ServerState.RUNNING:
                console.print(f"[green]✓[/green] {status.bundle_id}: {status.tools} tool(s)")
            else:
                console.print(f"[red]✗[/red] {status.bundle_id}: {status.state.value}: {status.last_error}")
        try:
            await link.connect()
            await link.join(office)
        except Exception as exc:
            print(f"FAILED cannot join office {office!r} at {url}: {exc}", flush=True)
            return 1
        await computer.refresh_skills()
        console.print(f"joined office [bold]{office}[/bold] as [bold]{name}[/bold]")
        print("READY", flush=True)
        if repl:
            from smcp.computer._repl import run_repl

            repl_task = asyncio.create_task(run_repl(computer, link, configs, console))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({repl_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (repl_task, stopper):
                task.cancel()
        else:
            await stop.wait()
        return 0
    finally:
        try:
            await asyncio.wait_for(link.close(), 15.0)
        except Exception as exc:
            logging.getLogger("smcp.computer").warning("closing the link failed: %s", exc)
        await asyncio.wait_for(computer.close(), 30.0)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
