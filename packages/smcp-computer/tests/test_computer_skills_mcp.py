"""Skills from a real MCP server's ``skill://`` resources (docs/protocol.md §12.2): staging, refs,
orphans, blobs."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from smcp_b_sources import SKILL_SERVER, TOOLBOX, MemorySource, mcp_source

from smcp.computer._blobs import BlobStore
from smcp.computer._skills import SkillRegistry
from smcp.core import models, wire
from smcp.core.errors import BlobNotAccessibleError, MCPServerNotFoundError

pytestmark = pytest.mark.anyio

LOGO = bytes(range(256)) * 200


async def drain(blobs: BlobStore, handle: str) -> bytes:
    out, offset = b"", 0
    for _ in range(1000):
        reply = await blobs.get_chunk(handle, offset, None, "r")
        out += base64.b64decode(reply["blob"])
        offset = len(out)
        if reply["eof"]:
            return out
    raise AssertionError("no eof")


async def test_mcp_skills(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    (mount / "docs").mkdir(parents=True)
    (mount / "SKILL.md").write_text(
        "---\nname: mounted-skill\ndescription: copied from a mount\n---\nmounted body\n"
    )
    (mount / "docs" / "guide.md").write_text("guide")
    (mount / "link.md").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "secret.txt").write_text("secret")
    home = tmp_path / "home"
    blobs = BlobStore(tmp_path / "spool")
    reg = SkillRegistry(home, blobs)
    async with (
        mcp_source(SKILL_SERVER, "--mount-dir", str(mount), bundle_id="sk") as skills,
        mcp_source(TOOLBOX, "stdio", "--mem-count", "1", bundle_id="toolbox") as toolbox,
    ):
        unsupported = MemorySource("nores", [], {}, supports=False)
        assert await reg.refresh([unsupported, toolbox, skills]) is True
        refs = reg.list_refs()
        demo_dir = home / "mcp" / "sk" / "demo-skill"
        assert refs == [
            {
                "name": "mcp:sk:demo-skill",
                "source": "mcp:sk",
                "path": str(demo_dir),
                "description": "A demo skill served over skill:// resources",
                "uri": "skill://fixture/demo",
                "license": "MIT",
                "allowed_tools": ["echo", "add"],
                "tags": ["demo", "fixture"],
                "skill_metadata": {"owner": "tests"},
                "version": "1.2.0",
            },
            {
                "name": "mcp:sk:mounted-skill",
                "source": "mcp:sk",
                "path": str(home / "mcp" / "sk" / "mounted-skill"),
                "description": "copied from a mount",
                "uri": "skill://fixture/mounted",
            },
        ]
        for ref in refs:
            assert wire.to_wire(models.A2CSkillRef.model_validate(ref)) == ref
        # staged files: the package directory is named after the frontmatter name; no leftovers
        assert sorted(p.name for p in (home / "mcp" / "sk").iterdir()) == ["demo-skill", "mounted-skill"]
        assert (demo_dir / "scripts" / "run.sh").read_text() == "#!/bin/sh\necho demo\n"
        assert (demo_dir / "assets" / "logo.png").read_bytes() == LOGO
        assert not (home / "mcp" / "sk" / "mounted-skill" / "link.md").exists()  # symlinks are not copied

        ret = await reg.get_skill("mcp:sk:demo-skill", None, "r1")
        assert ret["body"] == "# Demo\n\nRun `scripts/run.sh`.\n" and ret["mime_type"] == "text/markdown"
        logo = await reg.get_skill("mcp:sk:demo-skill", "assets/logo.png", "r2")
        assert logo["mime_type"] == "image/png" and logo["total_size"] == len(LOGO)
        assert logo["sha256"] == hashlib.sha256(LOGO).hexdigest()
        assert await drain(blobs, logo["blob_handle"]) == LOGO
        guide = await reg.get_skill("mcp:sk:mounted-skill", "docs/guide.md", "r3")
        assert guide["body"] == "guide"

        # a second refresh restages the same content: nothing changed
        assert await reg.refresh([toolbox, skills]) is False

        # the server goes away: its skills become orphans
        assert await reg.refresh([toolbox]) is True
        assert reg.list_refs() == []
        with pytest.raises(MCPServerNotFoundError) as err:
            await reg.get_skill("mcp:sk:demo-skill", None, "r")
        assert err.value.details == {"name": "mcp:sk:demo-skill"}
        with pytest.raises(BlobNotAccessibleError) as blob_err:
            await blobs.get_chunk(logo["blob_handle"], 0, None, "r")
        assert blob_err.value.reason == "forbidden"

        # and come back when it does
        assert await reg.refresh([skills]) is True
        assert [r["name"] for r in reg.list_refs()] == ["mcp:sk:demo-skill", "mcp:sk:mounted-skill"]
        assert await drain(blobs, logo["blob_handle"]) == LOGO
