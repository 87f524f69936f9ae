"""The SMCP demo: a server, a Computer hosting a real MCP server, and an Agent calling it.

    scripts/hatch run demo:run                  # run once and exit
    scripts/hatch run demo:run --keep-running   # leave server and Computer up, print the next command

Everything runs on 127.0.0.1 with a free port and a random token; the MCP server
(``desk_tools.py``) sees only a sandbox folder the demo creates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from rich.console import Console
from rich.table import Table

HERE = pathlib.Path(__file__).resolve().parent
OFFICE = "demo-office"
COMPUTER = "demo-computer"
console = Console()


def command(name: str) -> str:
    """A console script installed next to this interpreter (the hatch environment's bin folder)."""
    local = pathlib.Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed; run the demo with: scripts/hatch run demo:run")
    return found


class Child:
    """A child process in its own process group, its output going to a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: pathlib.Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._file = self.log.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._file, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        buffer = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buffer += chunk
                self._file.write(chunk)
                self._file.flush()
                for line in buffer.decode(errors="replace").splitlines():
                    match = re.search(pattern, line)
                    if match:
                        return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print {pattern!r} within {timeout:.0f} s; see {self.log}")

    def stop(self, grace: float = 8.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._file.close()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def make_sandbox(root: pathlib.Path) -> pathlib.Path:
    sandbox = root / "sandbox"
    (sandbox / "notes").mkdir(parents=True)
    (sandbox / "README.txt").write_text("Files the demo's MCP server may read.\n")
    (sandbox / "notes" / "todo.txt").write_text("- try smcp-agent\n- write a Computer config\n")
    (sandbox / "numbers.csv").write_text("a,b\n1,2\n3,4\n")
    return sandbox


def write_config(root: pathlib.Path, sandbox: pathlib.Path) -> pathlib.Path:
    config = {
        "servers": {
            "desk": {
                "type": "stdio",
                "server_parameters": {
                    "command": sys.executable,
                    "args": [str(HERE / "desk_tools.py"), "--sandbox", str(sandbox)],
                },
                "default_tool_meta": {"auto_apply": True},
            }
        },
        "inputs": [],
    }
    path = root / "mcp.json"
    path.write_text(json.dumps(config, indent=2))
    return path


async def run_agent(url: str, token: str) -> None:
    from smcp.agent import AsyncAgent
    from smcp.agent.llm import result_text

    async with AsyncAgent(url, token=token, office=OFFICE, name="demo-agent") as agent:
        deadline = time.monotonic() + 60
        tools = []
        while time.monotonic() < deadline:
            if any(s.name == COMPUTER for s in await agent.computers()):
                tools = await agent.get_tools(COMPUTER)
                if tools:
                    break
            await asyncio.sleep(0.2)
        if not tools:
            raise RuntimeError(f"{COMPUTER} did not offer tools within 60 s")

        table = Table(title=f"Tools on {COMPUTER}")
        table.add_column("exposed name", style="bold")
        table.add_column("description")
        for tool in tools:
            table.add_row(tool.name, tool.description.splitlines()[0])
        console.print(table)

        calls = [
            ("desk__list_files", {"folder": "."}),
            ("desk__calculate", {"expression": "(17 + 25) * 3 / 7"}),
        ]
        for name, params in calls:
            started = time.perf_counter()
            result = await agent.call_tool(COMPUTER, name, params, timeout=20)
            elapsed = (time.perf_counter() - started) * 1000
            status = "[red]error[/red]" if result.is_error else "[green]ok[/green]"
            shown = f"{name}({json.dumps(params)})"
            console.print(f"{status} {shown} in {elapsed:.1f} ms → {result_text(result)}")
            if result.is_error:
                raise RuntimeError(f"{name} failed: {result_text(result)}")


def wait_forever() -> None:
    stop = {"flag": False}

    def handler(*_: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    with contextlib.suppress(KeyboardInterrupt):
        while not stop["flag"]:
            time.sleep(0.5)


@contextlib.contextmanager
def workspace() -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix="smcp-demo-") as tmp:
        yield pathlib.Path(tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the SMCP demo on 127.0.0.1.")
    parser.add_argument("--keep-running", action="store_true", help="leave the server and Computer running")
    args = parser.parse_args()
    token = secrets.token_urlsafe(16)
    children: list[Child] = []
    with workspace() as root:
        try:
            env_token = [f"--token={token}"]  # "=": a token may start with "-"
            server = Child(
                "server", [command("smcp-server"), "--host", "127.0.0.1", "--port", "0", *env_token], root
            )
            children.append(server)
            port = int(server.wait_for_line(r"LISTENING (\d+)", timeout=30).group(1))
            url = f"http://127.0.0.1:{port}"
            console.print(f"[bold]server[/bold]   {url}")

            config = write_config(root, make_sandbox(root))
            computer = Child(
                "computer",
                [
                    command("smcp-computer"),
                    "run",
                    "--url",
                    url,
                    *env_token,
                    "--office",
                    OFFICE,
                    "--name",
                    COMPUTER,
                    "--config",
                    str(config),
                    "--no-repl",
                    "--auto-apply",
                ],
                root,
            )
            children.append(computer)
            console.print(f"[bold]computer[/bold] {COMPUTER} in office {OFFICE}, hosting desk_tools.py")

            asyncio.run(run_agent(url, token))

            if args.keep_running:
                console.print("\nServer and Computer keep running. Try, in another terminal:")
                console.print(
                    f"  {command('smcp-agent')} --url {url} --token={token} --office {OFFICE} --name me "
                    f'call {COMPUTER} desk__now --params \'{{"timezone": "Europe/Paris"}}\''
                )
                console.print("Press Ctrl-C to stop.")
                wait_forever()
        except Exception as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            for child in children:
                console.print(f"--- {child.name} log (last lines) ---\n{child.tail()}")
            return 1
        finally:
            for child in reversed(children):
                child.stop()
    console.print("[green]demo finished[/green]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
