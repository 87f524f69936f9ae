"""The demo's MCP server (stdio, mcp 2.x): a few small, safe tools.

    python desk_tools.py [--sandbox DIR]

Tools: ``list_files`` and ``read_file`` (confined to the sandbox folder), ``calculate`` (plain
arithmetic, parsed with ``ast`` — never ``eval``), ``now`` (the clock, in any IANA time zone).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import operator
import pathlib
import zoneinfo
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_READ = 64 * 1024


def evaluate(expression: str) -> float | int:
    """Evaluate arithmetic on numbers with + - * / // % ** and parentheses."""

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ToolError("exponent too large (limit 100)")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ToolError(f"unsupported expression element: {type(node).__name__}")

    if len(expression) > 200:
        raise ToolError("expression too long (limit 200 characters)")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg}") from None
    try:
        result: float | int = walk(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    return result


def build(sandbox: pathlib.Path) -> MCPServer:
    root = sandbox.resolve()
    server: MCPServer = MCPServer("desk-tools", log_level="WARNING")

    def inside(relative: str) -> pathlib.Path:
        target = (root / relative).resolve()
        if target != root and root not in target.parents:
            raise ToolError(f"{relative!r} is outside the sandbox")
        return target

    @server.tool()
    def list_files(folder: str = ".") -> list[str]:
        """List the entries of a folder inside the sandbox (folders end with '/')."""
        path = inside(folder)
        if not path.is_dir():
            raise ToolError(f"{folder!r} is not a folder")
        return sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())

    @server.tool()
    def read_file(path: str) -> str:
        """Read a text file inside the sandbox (first 64 KiB)."""
        target = inside(path)
        if not target.is_file():
            raise ToolError(f"{path!r} is not a file")
        return target.read_bytes()[:MAX_READ].decode("utf-8", errors="replace")

    @server.tool()
    def calculate(expression: str) -> float | int:
        """Evaluate an arithmetic expression, e.g. '(2 + 3) * 7 / 5'."""
        return evaluate(expression)

    @server.tool()
    def now(timezone: str = "UTC") -> str:
        """The current date and time in an IANA time zone, ISO-8601."""
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"unknown time zone {timezone!r}") from None
        return dt.datetime.now(zone).isoformat(timespec="seconds")

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", type=pathlib.Path, default=pathlib.Path.cwd())
    args = parser.parse_args()
    build(args.sandbox).run()


if __name__ == "__main__":
    main()
