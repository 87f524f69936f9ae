"""Path attacks on skills (``rel_path``) and uploads (``name_hint``), through the Computer link (issue 17).

``client:get_skill`` with ``..``, absolute paths, symlinks leaving the package, encoded separators,
NUL, very long names and Windows-reserved names is refused with 4017 and the reason the protocol
names (docs/protocol.md §12.3); ``client:put_blob`` cleans its ``name_hint`` (§13.4), so every upload
lands directly in the landing root whatever the hint. Afterwards a walk of the file system finds
nothing written outside the Computer's roots.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from smcp.computer import Computer, ComputerLink
from smcp.core.events import ClientEvent

pytestmark = pytest.mark.anyio

SKILL_MD = "---\nname: pdf-tools\ndescription: Work with PDF files\n---\n# PDF tools\n"

#: rel_path -> the reason of the 4017 refusal.
SKILL_ATTACKS = {
    "../outside.txt": "traversal",
    "../../outside.txt": "traversal",
    "sub/../../outside.txt": "traversal",
    "/etc/passwd": "traversal",
    "//etc/passwd": "traversal",
    "..\\outside.txt": "traversal",
    "sub\\..\\..\\outside.txt": "traversal",
    "C:\\Windows\\win.ini": "traversal",
    "C:/Windows/win.ini": "traversal",
    "notes.txt\x00.md": "traversal",
    "escape.txt": "traversal",  # a symlink that leaves the package
    "dir-escape/outside.txt": "traversal",  # a directory symlink that leaves it
    "%2e%2e/outside.txt": "not_found",  # no decoding: a literal name that does not exist
    "..%2Foutside.txt": "not_found",
    "%2e%2e%2foutside.txt": "not_found",
    "a" * 5000: "not_found",
    ("d/" * 2000) + "x": "not_found",
    "CON": "not_found",
    "NUL.txt": "not_found",
    "com1": "not_found",
    "LPT9.md": "not_found",
    ".skillenv": "forbidden",
    "sub/.SkillEnv": "forbidden",
    "env-link": "forbidden",  # a symlink to the forbidden file
}

#: Upload name hints an attacker may send.
HINTS = [
    "../../outside.bin",
    "/etc/cron.d/x",
    "..\\..\\x.bin",
    "C:\\Windows\\x.bin",
    "a\x00b",
    "%2e%2e%2fx",
    "x" * 5000,
    "CON",
    "NUL.txt",
    "....//....//x",
    "",
]


def walk(root: Path) -> set[Path]:
    found: set[Path] = set()
    for d, dirs, files in os.walk(root):
        found.update(Path(d) / n for n in dirs + files)
    return found


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    home = tmp_path / "skills"
    pkg = home / "user" / "pdf-tools"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "SKILL.md").write_text(SKILL_MD)
    (pkg / "notes.txt").write_text("notes")
    (pkg / ".skillenv").write_text("SECRET=1")
    (pkg / "sub" / ".SkillEnv").write_text("SECRET=1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "outside.txt").write_text("outside")
    (tmp_path / "outside.txt").write_text("outside")
    (pkg / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (pkg / "dir-escape").symlink_to(outside, target_is_directory=True)
    (pkg / "env-link").symlink_to(pkg / ".skillenv")
    return {"tmp": tmp_path, "home": home, "landing": tmp_path / "landing", "spool": tmp_path / "spool"}


async def test_skill_and_upload_path_attacks_are_refused_and_nothing_leaves_the_roots(
    world: dict[str, Any],
) -> None:
    tmp: Path = world["tmp"]
    before = walk(tmp)
    computer = Computer(
        "laptop", skill_home=world["home"], spool_dir=world["spool"], landing_root=world["landing"]
    )
    link = ComputerLink(computer, "http://127.0.0.1:9")
    async with computer:
        await computer.refresh_skills()
        base = {"agent": "a1", "computer": "laptop", "req_id": "r"}
        ok = await link.answer(ClientEvent.GET_SKILL, {**base, "name": "pdf-tools", "rel_path": "notes.txt"})
        assert "code" not in ok, ok
        for rel, reason in SKILL_ATTACKS.items():
            answer = await link.answer(ClientEvent.GET_SKILL, {**base, "name": "pdf-tools", "rel_path": rel})
            assert answer.get("code") == 4017, (rel[:60], answer)
            assert answer["details"]["reason"] == reason, (rel[:60], answer)
            assert "outside" not in str(answer.get("content", "")) and "SECRET" not in str(answer)

        data = b"hello upload"
        digest = hashlib.sha256(data).hexdigest()
        landed: list[Path] = []
        for hint in HINTS:
            first = {
                **base,
                "total_size": len(data),
                "sha256": digest,
                "name_hint": hint,
                "chunk_offset": 0,
                "blob": base64.b64encode(data).decode(),
                "eof": True,
            }
            answer = await link.answer(ClientEvent.PUT_BLOB, first)
            if "code" in answer:  # a refusal is a 4019 with a reason, never anything else
                assert answer["code"] == 4019, (hint[:60], answer)
                continue
            path = Path(answer["landing_path"])
            assert path.parent == world["landing"].resolve() or path.parent == world["landing"], (hint, path)
            assert path.read_bytes() == data
            name = path.name
            assert "/" not in name and "\\" not in name and "\x00" not in name and len(name) <= 32 + 1 + 64
            landed.append(path)
        assert len(landed) == len(HINTS)
    stray = {
        p
        for p in walk(tmp) - before
        if not any(p == r or r in p.parents for r in (world["landing"], world["spool"], world["home"]))
    }
    assert not stray, stray
