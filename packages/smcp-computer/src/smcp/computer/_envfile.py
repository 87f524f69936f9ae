"""``envFile`` on stdio servers: a dotenv file whose variables are added to the child's environment.

The key is SDK-local: it is kept on :class:`StdioServerConfigWithEnvFile` (excluded from
serialisation, so it never reaches ``client:get_config``) and read at every real start.
"""

from __future__ import annotations

import logging
import pathlib
import re

from pydantic import Field

from smcp.computer._errors import EnvFileError
from smcp.core.models import StdioServerConfig

__all__ = [
    "EnvFileError",
    "StdioServerConfigWithEnvFile",
    "merge_env_file",
    "parse_env_text",
    "read_env_file",
]

logger = logging.getLogger("smcp.computer")

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


class StdioServerConfigWithEnvFile(StdioServerConfig):
    """A stdio server declaration that also carries the SDK-local ``envFile`` (never serialised)."""

    env_file: str | None = Field(default=None, alias="envFile", exclude=True)


def _parse_value(raw: str) -> str | None:
    """The value of one assignment; ``None`` when a quote is not closed on the line."""
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 else None
    if raw.startswith('"'):
        out: list[str] = []
        index = 1
        while index < len(raw):
            char = raw[index]
            if char == '"':
                return "".join(out)
            if char == "\\" and index + 1 < len(raw):
                nxt = raw[index + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                index += 2
                continue
            out.append(char)
            index += 1
        return None
    # unquoted: a "#" that follows whitespace starts a comment
    match = re.search(r"\s#", raw)
    return (raw[: match.start()] if match else raw).strip()


def parse_env_text(text: str, *, source: str = "<env>") -> dict[str, str]:
    """Parse dotenv text: ``KEY=VALUE`` lines, ``#`` comments, quotes and an optional ``export ``.

    Values are taken literally (no ``${VAR}`` expansion). Malformed lines are skipped with a warning.
    """
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export ") or stripped.startswith("export\t"):
            stripped = stripped[len("export") :].lstrip()
        key, sep, rest = stripped.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            logger.warning("%s:%d: not a KEY=VALUE line; skipped", source, number)
            continue
        value = _parse_value(rest)
        if value is None:
            logger.warning("%s:%d: unterminated quote in the value of %s; skipped", source, number, key)
            continue
        result[key] = value
    return result


def read_env_file(path: str | pathlib.Path) -> dict[str, str]:
    """Read and parse a dotenv file; raises :class:`EnvFileError` naming the file when it cannot."""
    file = pathlib.Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EnvFileError(f"envFile {str(file)!r} does not exist (resolved to {file.absolute()})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"envFile {str(file)!r} cannot be read: {exc}") from None
    return parse_env_text(text, source=str(file))


def merge_env_file(env: dict[str, str] | None, env_file: str) -> dict[str, str]:
    """The file's variables overlaid with ``env`` (explicit ``server_parameters.env`` wins)."""
    return {**read_env_file(env_file), **(env or {})}
