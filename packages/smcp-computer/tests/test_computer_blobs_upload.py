"""UploadStore: every row of the docs/protocol.md §13.4 table, on real files."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from smcp.computer._blobs import UPLOAD_DIR, UploadStore, sanitize_name_hint
from smcp.core import models
from smcp.core.errors import BlobWriteFailedError

pytestmark = pytest.mark.anyio

UID_HEX = set("0123456789abcdef")


def first(data: bytes, *, eof: bool = True, **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "agent": "a",
        "req_id": "r1",
        "computer": "c",
        "chunk_offset": 0,
        "eof": eof,
        "total_size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "blob": base64.b64encode(data).decode(),
    }
    req.update(extra)
    return req


def later(upload_id: str, offset: int, chunk: bytes, *, eof: bool, **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "agent": "a",
        "req_id": "r2",
        "computer": "c",
        "upload_id": upload_id,
        "chunk_offset": offset,
        "eof": eof,
        "blob": base64.b64encode(chunk).decode(),
    }
    req.update(extra)
    return req


async def fails(store: UploadStore, req: dict[str, Any]) -> BlobWriteFailedError:
    with pytest.raises(BlobWriteFailedError) as err:
        await store.put_chunk(req)
    payload = err.value.to_payload()
    assert payload["code"] == 4019 and isinstance(payload["message"], str) and payload["message"]
    return err.value


def parts(root: Path) -> list[str]:
    d = root / UPLOAD_DIR
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("as_model", [False, True])
async def test_single_chunk_upload(tmp_path: Path, as_model: bool) -> None:
    store = UploadStore(tmp_path)
    data = b"hello world"
    req = first(data, name_hint="report.pdf")
    reply = await store.put_chunk(models.PutBlobReq.model_validate(req) if as_model else req)
    uid = reply["upload_id"]
    assert len(uid) == 32 and set(uid) <= UID_HEX
    assert reply == {
        "upload_id": uid,
        "chunk_offset": 0,
        "req_id": "r1",
        "landing_path": str(tmp_path / f"{uid}_report.pdf"),
        "total_size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert Path(reply["landing_path"]).read_bytes() == data
    assert parts(tmp_path) == [] and store.open_sessions == 0
    models.PutBlobRet.model_validate(reply)


async def test_multi_chunk_upload(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    data = os.urandom(300_000)
    step = 100_000
    ack = await store.put_chunk(
        first(data[:step], eof=False, total_size=len(data), sha256=hashlib.sha256(data).hexdigest())
    )
    uid = ack["upload_id"]
    assert ack == {"upload_id": uid, "chunk_offset": 0, "req_id": "r1"}
    assert parts(tmp_path) == [f"{uid}.part"]
    ack = await store.put_chunk(later(uid, step, data[step : 2 * step], eof=False))
    assert ack == {"upload_id": uid, "chunk_offset": step, "req_id": "r2"}
    final = await store.put_chunk(later(uid, 2 * step, data[2 * step :], eof=True))
    assert final["landing_path"] == str(tmp_path / uid) and final["total_size"] == len(data)
    assert Path(final["landing_path"]).read_bytes() == data


@pytest.mark.parametrize(
    ("hint", "suffix"),
    [
        (None, ""),
        ("", ""),
        ("a.txt", "_a.txt"),
        ("../../etc/passwd", "_etc_passwd"),
        ("..", ""),
        ("héllo wörld.md", "_h_llo_w_rld.md"),
        ("x" * 100, "_" + "x" * 64),
        ("._-name-._", "_name"),
    ],
)
async def test_name_hint(tmp_path: Path, hint: str | None, suffix: str) -> None:
    store = UploadStore(tmp_path)
    reply = await store.put_chunk(first(b"data", name_hint=hint))
    assert reply["landing_path"] == str(tmp_path / (reply["upload_id"] + suffix))
    assert Path(reply["landing_path"]).parent == tmp_path


@pytest.mark.parametrize(
    ("hint", "expected"),
    [("a/b\\c", "a_b_c"), ("  spaced  ", "spaced"), ("ok-1.2_3", "ok-1.2_3"), ("___", "")],
)
def test_sanitize_name_hint(hint: str, expected: str) -> None:
    assert sanitize_name_hint(hint) == expected


SHA = hashlib.sha256(b"data").hexdigest()


@pytest.mark.parametrize(
    ("change", "reason", "extra_details"),
    [
        ({"total_size": 0}, "invalid_declaration", {}),
        ({"total_size": -1}, "invalid_declaration", {}),
        ({"total_size": True}, "invalid_declaration", {}),
        ({"total_size": "4"}, "invalid_declaration", {}),
        ({"total_size": None}, "invalid_declaration", {}),
        ({"sha256": SHA.upper()}, "invalid_declaration", {}),
        ({"sha256": SHA[:-1]}, "invalid_declaration", {}),
        ({"sha256": None}, "invalid_declaration", {}),
        ({"total_size": 101, "blob": ""}, "too_large", {"total_size": 101}),
    ],
)
async def test_first_chunk_declaration(
    tmp_path: Path, change: dict[str, Any], reason: str, extra_details: dict[str, Any]
) -> None:
    store = UploadStore(tmp_path, max_bytes=100)
    err = await fails(store, {**first(b"data"), **change})
    assert err.details == {"reason": reason, **extra_details}
    assert store.open_sessions == 0 and parts(tmp_path) == []


async def test_no_landing_root(tmp_path: Path) -> None:
    err = await fails(UploadStore(None), first(b"data"))
    assert err.reason == "forbidden" and "not configured" in err.message


async def test_landing_root_not_writable(tmp_path: Path) -> None:
    root = tmp_path / "not-a-dir"
    root.write_text("a file where the landing directory should be")
    err = await fails(UploadStore(root), first(b"data"))
    assert err.details == {"reason": "forbidden"} and "not writable" in err.message


async def test_busy(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_concurrent=2)
    for _ in range(2):
        await store.put_chunk(first(b"data"[:2], eof=False, total_size=4, sha256=SHA))
    err = await fails(store, first(b"data"))
    assert err.details == {"reason": "busy"}
    assert len(parts(tmp_path)) == 2


async def test_later_chunk_checks(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    data = b"0123456789"
    uid = (
        await store.put_chunk(
            first(data[:4], eof=False, total_size=10, sha256=hashlib.sha256(data).hexdigest())
        )
    )["upload_id"]
    err = await fails(store, later("f" * 32, 4, data[4:], eof=True))
    assert err.details == {"reason": "invalid_upload", "upload_id": "f" * 32}
    for key, value in (("total_size", 10), ("sha256", SHA), ("name_hint", "x")):
        err = await fails(store, later(uid, 4, data[4:], eof=True, **{key: value}))
        assert err.details == {"reason": "invalid_declaration", "upload_id": uid}
    err = await fails(store, later(uid, 3, data[3:], eof=True))
    assert err.details == {"reason": "range", "upload_id": uid}
    err = await fails(store, later(uid, 4, b"", eof=True, blob="not base64!"))
    assert err.details == {"reason": "invalid_declaration", "upload_id": uid}
    err = await fails(store, later(uid, 4, b"", eof=True, blob=5))
    assert err.reason == "invalid_declaration"
    err = await fails(store, later(uid, 4, data[4:8], eof=True))  # short last chunk: session kept
    assert err.details == {"reason": "range", "upload_id": uid}
    assert store.open_sessions == 1
    final = await store.put_chunk(later(uid, 4, data[4:], eof=True))
    assert Path(final["landing_path"]).read_bytes() == data


async def test_overrun_drops_session(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    uid = (await store.put_chunk(first(b"ab", eof=False, total_size=4, sha256=SHA)))["upload_id"]
    err = await fails(store, later(uid, 2, b"cdef", eof=False))
    assert err.details == {"reason": "range", "upload_id": uid}
    assert store.open_sessions == 0 and parts(tmp_path) == []
    err = await fails(store, later(uid, 2, b"cd", eof=True))
    assert err.reason == "invalid_upload"


async def test_first_chunk_wrong_offset(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    err = await fails(store, first(b"data", chunk_offset=1))
    assert err.reason == "range" and len(err.details["upload_id"]) == 32


async def test_integrity(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    err = await fails(store, first(b"data", sha256="0" * 64))
    assert err.reason == "integrity" and "upload_id" in err.details
    assert store.open_sessions == 0 and parts(tmp_path) == [] and list(tmp_path.glob("*_*")) == []


async def test_io_error_on_write(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    uid = (await store.put_chunk(first(b"ab", eof=False, total_size=4, sha256=SHA)))["upload_id"]
    part = tmp_path / UPLOAD_DIR / f"{uid}.part"
    part.unlink()
    part.mkdir()  # the next write cannot open it as a file
    err = await fails(store, later(uid, 2, b"ta", eof=True))
    assert err.details == {"reason": "io_error", "upload_id": uid}
    assert store.open_sessions == 0


async def test_io_error_on_rename(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    uid = (await store.put_chunk(first(b"da", eof=False, total_size=4, sha256=SHA, name_hint="n")))[
        "upload_id"
    ]
    (tmp_path / f"{uid}_n").mkdir()
    (tmp_path / f"{uid}_n" / "occupied").write_text("x")
    err = await fails(store, later(uid, 2, b"ta", eof=True))
    assert err.details == {"reason": "io_error", "upload_id": uid}


async def test_idle_sessions_expire(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, idle_timeout=0.2, max_concurrent=1)
    uid = (await store.put_chunk(first(b"ab", eof=False, total_size=4, sha256=SHA)))["upload_id"]
    await asyncio.sleep(0.3)
    err = await fails(store, later(uid, 2, b"ta", eof=True))
    assert err.details == {"reason": "invalid_upload", "upload_id": uid}
    assert parts(tmp_path) == []
    reply = await store.put_chunk(first(b"data"))  # the slot is free again
    assert reply["total_size"] == 4


async def test_concurrent_uploads(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_concurrent=4)
    blobs = [os.urandom(50_000 + i) for i in range(4)]

    async def upload(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        ack = await store.put_chunk(first(data[:20_000], eof=False, total_size=len(data), sha256=digest))
        uid, offset = ack["upload_id"], 20_000
        while True:
            chunk = data[offset : offset + 20_000]
            eof = offset + len(chunk) == len(data)
            ack = await store.put_chunk(later(uid, offset, chunk, eof=eof))
            offset += len(chunk)
            if eof:
                return ack

    finals = await asyncio.wait_for(asyncio.gather(*(upload(d) for d in blobs)), 30)
    for data, final in zip(blobs, finals, strict=True):
        assert Path(final["landing_path"]).read_bytes() == data
    await store.close()


async def test_close_removes_parts(tmp_path: Path) -> None:
    store = UploadStore(tmp_path)
    await store.put_chunk(first(b"ab", eof=False, total_size=4, sha256=SHA))
    await store.close()
    assert parts(tmp_path) == [] and store.open_sessions == 0
