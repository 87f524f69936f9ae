"""SkillRegistry with user drop-in skills on real files: discovery, get_skill (§12.3), MIME (§12.4), blobs."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from smcp.computer._blobs import BlobStore
from smcp.computer._skills import SkillRegistry, guess_mime, is_text_mime
from smcp.computer._skills._frontmatter import parse_frontmatter, strip_frontmatter
from smcp.core import models, wire
from smcp.core.errors import (
    BlobNotAccessibleError,
    MCPServerNotFoundError,
    SkillNameInvalidError,
    SkillResourceNotAccessibleError,
)

pytestmark = pytest.mark.anyio

KIB = 1024
SKILL_MD = """---
name: pdf-tools
description: Work with PDF files
license: Apache-2.0
compatibility: any
allowed-tools: Bash
tags: [pdf, docs]
metadata: {owner: me, level: 2}
---
# PDF tools
Use ${TFROBOT_SKILL_DIR}/scripts/x.sh
"""


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    pkg = h / "user" / "pdf-tools"
    write(pkg / "SKILL.md", SKILL_MD)
    write(pkg / "scripts" / "x.sh", "#!/bin/sh\necho hi\n")
    write(pkg / "notes.txt", "n" * (32 * KIB))
    write(pkg / "big.txt", "b" * (32 * KIB + 1))
    write(pkg / "latin1.txt", b"caf\xe9")
    write(pkg / "data.bin", os.urandom(70_000))
    write(pkg / "logo.PNG", b"\x89PNG....")
    write(pkg / ".skillenv", "SECRET=1")
    write(pkg / "sub" / ".SkillEnv", "SECRET=1")
    write(tmp_path / "outside.txt", "outside")
    (pkg / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (pkg / "env-link").symlink_to(pkg / ".skillenv")
    (pkg / "inner-link.txt").symlink_to(pkg / "notes.txt")
    (pkg / "adir").mkdir()
    write(h / "user" / "Bad_Name" / "SKILL.md", SKILL_MD)
    write(h / "user" / "no-desc" / "SKILL.md", "---\nname: no-desc\n---\nbody\n")
    write(h / "user" / "bad-yaml" / "SKILL.md", "---\ndescription: [unclosed\n---\n")
    write(h / "user" / "plain" / "SKILL.md", "---\ndescription: d\ntags: [1, 2]\nmetadata: 5\n---\nx")
    write(h / "user" / "nested" / "deeper" / "SKILL.md", SKILL_MD)
    write(h / "user" / "SKILL.md", SKILL_MD)
    return h


async def make(home: Path, tmp_path: Path, **kw: Any) -> tuple[SkillRegistry, BlobStore]:
    blobs = BlobStore(tmp_path / "spool")
    reg = SkillRegistry(home, blobs, **kw)
    assert await reg.refresh([]) is True
    return reg, blobs


async def drain(blobs: BlobStore, handle: str) -> bytes:
    out, offset = b"", 0
    for _ in range(1000):
        reply = await blobs.get_chunk(handle, offset, 16 * KIB, "r")
        chunk = base64.b64decode(reply["blob"])
        out += chunk
        offset += len(chunk)
        if reply["eof"]:
            assert reply["sha256"] == hashlib.sha256(out).hexdigest() and reply["total_size"] == len(out)
            return out
    raise AssertionError("no eof")


async def test_user_discovery(home: Path, tmp_path: Path) -> None:
    reg, _ = await make(home, tmp_path)
    refs = reg.list_refs()
    assert [r["name"] for r in refs] == ["pdf-tools", "plain"]
    assert refs[0] == {
        "name": "pdf-tools",
        "source": "user",
        "path": str((home / "user" / "pdf-tools").resolve()),
        "description": "Work with PDF files",
        "license": "Apache-2.0",
        "compatibility": "any",
        "allowed_tools": ["Bash"],
        "tags": ["pdf", "docs"],
        "skill_metadata": {"owner": "me", "level": 2},
    }
    assert refs[1] == {"name": "plain", "source": "user", "path": refs[1]["path"], "description": "d"}
    for ref in refs:
        assert wire.to_wire(models.A2CSkillRef.model_validate(ref)) == ref
    assert await reg.refresh([]) is False


async def test_extra_user_dirs_and_collisions(home: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write(extra / "pdf-tools" / "SKILL.md", "---\ndescription: shadowed\n---\n")
    write(extra / "other" / "SKILL.md", "---\ndescription: other one\n---\n")
    reg, _ = await make(home, tmp_path, user_dirs=[extra])
    refs = {r["name"]: r for r in reg.list_refs()}
    assert refs["pdf-tools"]["description"] == "Work with PDF files"
    assert refs["other"]["path"] == str((extra / "other").resolve())


async def test_get_skill_md_strips_frontmatter(home: Path, tmp_path: Path) -> None:
    reg, _ = await make(home, tmp_path)
    body = "# PDF tools\nUse ${TFROBOT_SKILL_DIR}/scripts/x.sh\n"
    for rel in (None, "", "SKILL.md"):
        ret = await reg.get_skill("pdf-tools", rel, "r1")
        assert ret == {
            "name": "pdf-tools",
            "rel_path": "SKILL.md",
            "mime_type": "text/markdown",
            "total_size": len(body.encode()),
            "sha256": hashlib.sha256(body.encode()).hexdigest(),
            "body": body,
            "req_id": "r1",
        }
        models.GetSkillRet.model_validate(ret)


@pytest.mark.parametrize(
    ("rel", "mime", "inline"),
    [
        ("scripts/x.sh", "application/octet-stream", False),
        ("notes.txt", "text/plain", True),
        ("big.txt", "text/plain", False),
        ("latin1.txt", "text/plain", False),
        ("data.bin", "application/octet-stream", False),
        ("logo.PNG", "image/png", False),
        ("inner-link.txt", "text/plain", True),
        ("./notes.txt", "text/plain", True),
    ],
)
async def test_get_skill_files(home: Path, tmp_path: Path, rel: str, mime: str, inline: bool) -> None:
    reg, blobs = await make(home, tmp_path)
    raw = (home / "user" / "pdf-tools" / rel).read_bytes()
    ret = await reg.get_skill("pdf-tools", rel, "r2")
    models.GetSkillRet.model_validate(ret)
    assert (ret["rel_path"], ret["mime_type"], ret["total_size"]) == (rel, mime, len(raw))
    assert ret["sha256"] == hashlib.sha256(raw).hexdigest()
    if inline:
        assert ret["body"] == raw.decode() and "blob_handle" not in ret
    else:
        assert "body" not in ret
        assert await drain(blobs, ret["blob_handle"]) == raw


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("../outside.txt", "traversal"),
        ("/etc/passwd", "traversal"),
        ("scripts\\x.sh", "traversal"),
        ("a/../../x", "traversal"),
        ("c:/x", "traversal"),
        ("escape.txt", "traversal"),
        (".skillenv", "forbidden"),
        ("sub/.SkillEnv", "forbidden"),
        ("missing/.skillenv", "forbidden"),
        ("env-link", "forbidden"),
        ("missing.txt", "not_found"),
        ("adir", "not_found"),
        ("scripts", "not_found"),
    ],
)
async def test_sandbox(home: Path, tmp_path: Path, rel: str, reason: str) -> None:
    reg, _ = await make(home, tmp_path)
    with pytest.raises(SkillResourceNotAccessibleError) as err:
        await reg.get_skill("pdf-tools", rel, "r")
    assert err.value.to_payload() == {
        "code": 4017,
        "message": "Skill resource not accessible",
        "details": {"reason": reason, "rel_path": rel},
    }


@pytest.mark.parametrize(
    "name", ["", "Bad", "a:b:c", "mcp:bad__id:x", "mcp::x", "a:b:c:d", "x" * 65, "-x", "a_b"]
)
async def test_invalid_names(home: Path, tmp_path: Path, name: str) -> None:
    reg, _ = await make(home, tmp_path)
    with pytest.raises(SkillNameInvalidError) as err:
        await reg.get_skill(name, None, "r")
    assert err.value.to_payload() == {
        "code": 4016,
        "message": "Invalid skill name",
        "details": {"name": name},
    }


@pytest.mark.parametrize("name", ["absent", "mp:absent", "mcp:bundle:absent", "no-desc"])
async def test_unknown_names(home: Path, tmp_path: Path, name: str) -> None:
    reg, _ = await make(home, tmp_path)
    with pytest.raises(MCPServerNotFoundError) as err:
        await reg.get_skill(name, None, "r")
    assert err.value.to_payload() == {"code": 4014, "message": "Skill not found", "details": {"name": name}}


async def test_too_large(home: Path, tmp_path: Path) -> None:
    reg, _ = await make(home, tmp_path, max_size=1000)
    with pytest.raises(SkillResourceNotAccessibleError) as err:
        await reg.get_skill("pdf-tools", "data.bin", "r")
    assert err.value.details == {"reason": "too_large", "rel_path": "data.bin", "total_size": 70_000}
    ok = await reg.get_skill("pdf-tools", "SKILL.md", "r")
    assert "body" in ok


async def test_too_large_after_strip(home: Path, tmp_path: Path) -> None:
    write(home / "user" / "pdf-tools" / "SKILL.md", "---\ndescription: d\n---\n" + "x" * 50)
    reg, _ = await make(home, tmp_path, max_size=40)
    with pytest.raises(SkillResourceNotAccessibleError) as err:
        await reg.get_skill("pdf-tools", None, "r")
    assert err.value.details["reason"] == "too_large"


async def test_big_skill_md_goes_by_handle(home: Path, tmp_path: Path) -> None:
    body = "line\r\n" * 10_000
    write(home / "user" / "pdf-tools" / "SKILL.md", "---\r\ndescription: d\r\n---\r\n" + body)
    reg, blobs = await make(home, tmp_path)
    ret = await reg.get_skill("pdf-tools", None, "r")
    assert ret["mime_type"] == "text/markdown" and ret["total_size"] == len(body)
    assert (await drain(blobs, ret["blob_handle"])).decode() == body


async def test_skill_handles_recheck_on_every_resolution(home: Path, tmp_path: Path) -> None:
    reg, blobs = await make(home, tmp_path)
    pkg = home / "user" / "pdf-tools"
    handle = (await reg.get_skill("pdf-tools", "data.bin", "r"))["blob_handle"]
    assert await drain(blobs, handle) == (pkg / "data.bin").read_bytes()
    (pkg / "data.bin").unlink()
    with pytest.raises(BlobNotAccessibleError) as err:
        await blobs.get_chunk(handle, 0, None, "r")
    assert err.value.reason == "gone"
    forged = blobs.make_handle("skill", {"n": "pdf-tools", "p": ".skillenv"})
    with pytest.raises(BlobNotAccessibleError) as err:
        await blobs.get_chunk(forged, 0, None, "r")
    assert err.value.reason == "forbidden"
    forged = blobs.make_handle("skill", {"n": "pdf-tools", "p": "../outside.txt"})
    with pytest.raises(BlobNotAccessibleError) as err:
        await blobs.get_chunk(forged, 0, None, "r")
    assert err.value.reason == "forbidden"
    for fields in ({"n": "Bad Name", "p": "x"}, {"n": "pdf-tools"}, {"n": "pdf-tools", "p": "x", "q": "y"}):
        with pytest.raises(BlobNotAccessibleError) as err:
            await blobs.get_chunk(blobs.make_handle("skill", fields), 0, None, "r")
        assert err.value.reason == "invalid_handle"
    with pytest.raises(BlobNotAccessibleError) as err:
        await blobs.get_chunk(blobs.make_handle("skill", {"n": "never-there", "p": "x"}), 0, None, "r")
    assert err.value.reason == "gone"


async def test_orphans(home: Path, tmp_path: Path) -> None:
    reg, blobs = await make(home, tmp_path)
    pkg = home / "user" / "pdf-tools"
    handle = (await reg.get_skill("pdf-tools", "data.bin", "r"))["blob_handle"]
    hidden = home / "hidden"
    pkg.rename(hidden)
    assert await reg.refresh([]) is True
    assert [r["name"] for r in reg.list_refs()] == ["plain"]
    with pytest.raises(MCPServerNotFoundError):
        await reg.get_skill("pdf-tools", None, "r")
    with pytest.raises(BlobNotAccessibleError) as err:
        await blobs.get_chunk(handle, 0, None, "r")
    assert err.value.reason == "forbidden"
    hidden.rename(pkg)
    assert await reg.refresh([]) is True
    assert [r["name"] for r in reg.list_refs()] == ["pdf-tools", "plain"]
    assert (await blobs.get_chunk(handle, 0, None, "r"))["total_size"] == 70_000


@pytest.mark.parametrize(
    ("name", "mime", "text"),
    [
        ("a.md", "text/markdown", True),
        ("A.MARKDOWN", "text/markdown", True),
        ("a.txt", "text/plain", True),
        ("a.json", "application/json", True),
        ("a.xml", "application/xml", True),
        ("a.yaml", "application/yaml", True),
        ("a.yml", "application/yaml", True),
        ("a.toml", "application/toml", True),
        ("a.rst", "text/x-rst", True),
        ("a.png", "image/png", False),
        ("a.jpg", "image/jpeg", False),
        ("a.jpeg", "image/jpeg", False),
        ("a.gif", "image/gif", False),
        ("a.webp", "image/webp", False),
        ("a.bmp", "image/bmp", False),
        ("a.ico", "image/vnd.microsoft.icon", False),
        ("a.svg", "image/svg+xml", True),
        ("a.pdf", "application/pdf", False),
        ("a.zip", "application/zip", False),
        ("a.tar.gz", "application/gzip", False),
        ("a.tar", "application/x-tar", False),
        ("a.wasm", "application/wasm", False),
        ("a.woff", "font/woff", False),
        ("a.woff2", "font/woff2", False),
        ("a.ttf", "font/ttf", False),
        ("a.otf", "font/otf", False),
        ("a.mp3", "audio/mpeg", False),
        ("a.wav", "audio/wav", False),
        ("a.mp4", "video/mp4", False),
        ("a.webm", "video/webm", False),
        ("a.py", "application/octet-stream", False),
        ("Makefile", "application/octet-stream", False),
    ],
)
def test_mime(name: str, mime: str, text: bool) -> None:
    assert guess_mime(name) == mime
    assert is_text_mime(mime) is text


@pytest.mark.parametrize(
    ("mime", "text"),
    [
        ("Text/HTML; charset=utf-8", True),
        ("application/ld+json", True),
        ("application/atom+xml", True),
        ("application/x-yaml", True),
        ("application/javascript", True),
        ("application/x-foo+yaml", True),
        ("application/pdf", False),
    ],
)
def test_text_mime(mime: str, text: bool) -> None:
    assert is_text_mime(mime) is text


@pytest.mark.parametrize(
    ("raw", "stripped", "fm"),
    [
        (b"no frontmatter\n", b"no frontmatter\n", {}),
        (b"---\nname: a\n---\nbody\n", b"body\n", {"name": "a"}),
        (b"---\r\nname: a\r\n---\r\nbody\r\n", b"body\r\n", {"name": "a"}),
        (b"---\nname: a\nbody without fence\n", b"---\nname: a\nbody without fence\n", {}),
        (b"--- \nx: 1\n ---  \nrest", b"rest", {"x": 1}),
        (b"---\n- a list\n---\nb", b"b", {}),
        (b"----\nx: 1\n---\nb", b"----\nx: 1\n---\nb", {}),
        (b"---\n---\n", b"", {}),
    ],
)
def test_frontmatter(raw: bytes, stripped: bytes, fm: dict[str, Any]) -> None:
    assert strip_frontmatter(raw) == stripped
    assert parse_frontmatter(raw) == fm
