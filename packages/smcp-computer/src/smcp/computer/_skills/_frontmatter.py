"""SKILL.md YAML frontmatter: parsing (PyYAML ``safe_load``) and stripping (docs/protocol.md §12.3 step 4)."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["parse_frontmatter", "strip_frontmatter"]

logger = logging.getLogger("smcp.computer")


def _fence_end(lines: list[bytes]) -> int | None:
    """Index of the closing ``---`` line, or None when there is no frontmatter."""
    if not lines or lines[0].strip() != b"---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == b"---":
            return i
    return None


def strip_frontmatter(data: bytes) -> bytes:
    """The body after the frontmatter; line endings kept; unchanged when there is no closing fence."""
    if not data.startswith(b"---"):
        return data
    lines = data.splitlines(keepends=True)
    end = _fence_end(lines)
    return data if end is None else b"".join(lines[end + 1 :])


def parse_frontmatter(data: bytes) -> dict[str, Any]:
    """The frontmatter mapping; ``{}`` when absent, unterminated, not YAML or not a mapping."""
    if not data.startswith(b"---"):
        return {}
    lines = data.splitlines(keepends=True)
    end = _fence_end(lines)
    if end is None:
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(b"".join(lines[1:end]).decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        logger.warning("SKILL.md frontmatter is not valid YAML: %s", exc)
        return {}
    return loaded if isinstance(loaded, dict) else {}
