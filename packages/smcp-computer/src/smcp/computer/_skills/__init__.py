"""Skills on the Computer side: user drop-in and MCP ``skill://`` sources, ``client:get_skills`` and
``client:get_skill`` (docs/protocol.md §12). Marketplace sources are not supported."""

from smcp.computer._skills._mime import guess_mime, is_text_mime
from smcp.computer._skills._registry import SKILL_BLOB_KIND, SkillRegistry

__all__ = ["SKILL_BLOB_KIND", "SkillRegistry", "guess_mime", "is_text_mime"]
