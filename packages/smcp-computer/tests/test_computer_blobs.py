"""BlobStore: handles, the bounded toolspool, get_blob chunks, the tool-result sideband (§13.1-§13.3)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from smcp.computer._blobs import BlobStore, ResolvedBlob, blob_error, decode_handle, encode_handle
from smcp.core import models, wire
from smcp.core.errors import BlobNotAccessibleError

pytestmark = pytest.mark.anyio

KIB = 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


async def drain(
    store: BlobStore, handle: str, max_chunk: int | None = None
) -> tuple[bytes, list[dict[str, Any]]]:
    out, replies, offset = b"", [], 0
    for _ in range(10_000):
        reply = await store.get_chunk(handle, offset, max_chunk, "r1")
        models.GetBlobRet.model_validate(reply)
        replies.append(reply)
        chunk = base64.b64decode(reply["blob"])
        out += chunk
        offset += len(chunk)
        if reply["eof"]:
            return out, replies
    raise AssertionError("no eof")


def test_handle_round_trip() -> None:
    handle = encode_handle("skill", {"n": "mcp:b:x", "p": "a/b.txt"})
    assert decode_handle(handle) == ("skill", {"n": "mcp:b:x", "p": "a/b.txt"})
    assert "=" not in handle


@pytest.mark.parametrize(
    "handle",
    [
        "",
        "!!!",
        "a",
        "x" * 5000,
        b64url([1, 2]),
        b64url({"v": 2, "k": "toolspool", "c": "0" * 64, "m": "a/b"}),
        b64url({"v": "1", "k": "toolspool"}),
        b64url({"v": True, "k": "toolspool"}),
        b64url({"v": 1}),
        b64url({"v": 1, "k": "Bad Kind"}),
        b64url({"v": 1, "k": "toolspool", "c": 5}),
        b64url({"v": 1, "k": "toolspool", "EXTRA": "x"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
    ],
)
def test_decode_rejects(handle: str) -> None:
    with pytest.raises(BlobNotAccessibleError) as err:
        decode_handle(handle)
    assert err.value.details == {"reason": "invalid_handle"}


@pytest.mark.parametrize(
    "handle",
    [
        b64url({"v": 1, "k": "toolspool", "c": "0" * 63, "m": "a/b"}),
        b64url({"v": 1, "k": "toolspool", "c": "A" * 64, "m": "a/b"}),
        b64url({"v": 1, "k": "toolspool", "c": "0" * 64}),
        b64url({"v": 1, "k": "toolspool", "c": "0" * 64, "m": "a/b", "x": "y"}),
        b64url({"v": 1, "k": "unknownkind", "c": "0" * 64}),
    ],
)
async def test_get_chunk_invalid_handle(tmp_path: Path, handle: str) -> None:
    store = BlobStore(tmp_path / "spool")
    with pytest.raises(BlobNotAccessibleError) as err:
        await store.get_chunk(handle, 0, None, "r")
    assert err.value.reason == "invalid_handle"
    assert err.value.to_payload()["code"] == 4018


@pytest.mark.parametrize(
    ("size", "max_chunk", "expected_chunks"),
    [
        (0, None, 1),
        (1, None, 1),
        (256 * KIB, None, 1),
        (256 * KIB + 1, None, 2),
        (600 * KIB, None, 3),
        (600 * KIB, 100 * KIB, 6),
        (600 * KIB, 0, 3),
        (600 * KIB, -5, 3),
        (600 * KIB, 10 * 1024 * KIB, 3),
    ],
)
async def test_mint_and_drain(tmp_path: Path, size: int, max_chunk: int | None, expected_chunks: int) -> None:
    store = BlobStore(tmp_path / "spool")
    data = os.urandom(size)
    handle = store.mint(data, "image/png")
    got, replies = await drain(store, handle, max_chunk)
    assert got == data
    assert len(replies) == expected_chunks
    digest = hashlib.sha256(data).hexdigest()
    assert {(r["sha256"], r["total_size"], r["mime_type"], r["blob_handle"]) for r in replies} == {
        (digest, size, "image/png", handle)
    }
    assert [r["eof"] for r in replies] == [False] * (expected_chunks - 1) + [True]
    assert (tmp_path / "spool" / digest).read_bytes() == data


@pytest.mark.parametrize(
    ("offset", "ok"), [(-1, False), (11, False), (True, False), ("3", False), (10, True)]
)
async def test_chunk_offset_range(tmp_path: Path, offset: Any, ok: bool) -> None:
    store = BlobStore(tmp_path / "spool")
    handle = store.mint(b"0123456789", "text/plain")
    if ok:
        reply = await store.get_chunk(handle, offset, None, "r9")
        assert reply == {
            "blob_handle": handle,
            "mime_type": "text/plain",
            "total_size": 10,
            "sha256": hashlib.sha256(b"0123456789").hexdigest(),
            "chunk_offset": 10,
            "eof": True,
            "blob": "",
            "req_id": "r9",
        }
    else:
        with pytest.raises(BlobNotAccessibleError) as err:
            await store.get_chunk(handle, offset, None, "r")
        assert err.value.reason == "range"


async def test_deleted_spool_file_is_gone(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "spool")
    data = b"x" * 100
    handle = store.mint(data, "application/octet-stream")
    (tmp_path / "spool" / hashlib.sha256(data).hexdigest()).unlink()
    with pytest.raises(BlobNotAccessibleError) as err:
        await store.get_chunk(handle, 0, None, "r")
    assert err.value.reason == "gone"


async def test_handles_survive_a_new_store(tmp_path: Path) -> None:
    handle = BlobStore(tmp_path / "spool").mint(b"persist", "text/plain")
    got, _ = await drain(BlobStore(tmp_path / "spool"), handle)
    assert got == b"persist"


def test_spool_is_bounded_and_evicts_oldest(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    store = BlobStore(spool, spool_max_bytes=3000)
    blobs = [bytes([i]) * 1000 for i in range(5)]
    for i, data in enumerate(blobs):
        store.mint(data, "a/b")
        path = spool / hashlib.sha256(data).hexdigest()
        os.utime(path, ns=(i * 10**9, i * 10**9))  # deterministic ages
    present = sorted(p.name for p in spool.iterdir())
    assert present == sorted(hashlib.sha256(d).hexdigest() for d in blobs[2:])
    assert sum(p.stat().st_size for p in spool.iterdir()) <= 3000
    store.mint(blobs[2], "a/b")  # re-minting refreshes its age: blob 3 is now the oldest
    store.mint(b"z" * 1000, "a/b")
    assert not (spool / hashlib.sha256(blobs[3]).hexdigest()).exists()
    assert (spool / hashlib.sha256(blobs[2]).hexdigest()).exists()


def test_spool_counts_existing_files_and_cleans_temp(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    old = b"o" * 2000
    (spool / hashlib.sha256(old).hexdigest()).write_bytes(old)
    (spool / ".tmp-crashed").write_bytes(b"junk")
    store = BlobStore(spool, spool_max_bytes=3000)
    store.mint(b"n" * 2000, "a/b")
    assert sorted(p.name for p in spool.iterdir()) == [hashlib.sha256(b"n" * 2000).hexdigest()]


def test_mint_too_big(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "spool", max_bytes=10)
    with pytest.raises(ValueError, match="do not fit"):
        store.mint(b"x" * 11, "a/b")


async def test_registered_resolver(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "spool")
    seen: list[Mapping[str, str]] = []

    async def resolver(fields: Mapping[str, str]) -> ResolvedBlob:
        seen.append(fields)
        if fields.get("n") == "bad":
            raise blob_error("forbidden", "no")
        data = b"abcdef"
        return ResolvedBlob("text/plain", 6, hashlib.sha256(data).hexdigest(), lambda o, n: data[o : o + n])

    store.register_resolver("demo", resolver)
    got, _ = await drain(store, store.make_handle("demo", {"n": "ok"}), 4)
    assert got == b"abcdef"
    assert seen[0] == {"n": "ok"}
    with pytest.raises(BlobNotAccessibleError) as err:
        await store.get_chunk(store.make_handle("demo", {"n": "bad"}), 0, None, "r")
    assert err.value.reason == "forbidden"
    with pytest.raises(ValueError):
        store.make_handle("nope", {})
    with pytest.raises(ValueError):
        store.register_resolver("toolspool", resolver)


def image_item(data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "type": "image",
        "data": b64(data),
        "mimeType": "image/png",
        "annotations": None,
        "meta": None,
        **extra,
    }


def resource_item(data: bytes) -> dict[str, Any]:
    return {
        "type": "resource",
        "resource": {"uri": "file:///x.bin", "mimeType": "application/pdf", "blob": b64(data)},
        "annotations": None,
        "meta": None,
    }


def result_of(*items: dict[str, Any]) -> dict[str, Any]:
    return {"meta": None, "content": list(items), "structuredContent": None, "isError": False}


@pytest.mark.parametrize(
    ("item", "minted", "mime"),
    [
        (image_item(b"x" * (32 * KIB)), False, None),
        (image_item(b"x" * (32 * KIB + 1)), True, "image/png"),
        (image_item(b"y" * (40 * KIB), _meta={"keep": 1}), True, "image/png"),
        (image_item(b"y" * (40 * KIB), _meta="not-an-object"), False, None),
        ({**image_item(b"q" * (40 * KIB)), "mimeType": None}, True, "application/octet-stream"),
        (resource_item(b"p" * (40 * KIB)), True, "application/pdf"),
        (resource_item(b"p" * 10), False, None),
        ({"type": "text", "text": "t" * (100 * KIB), "annotations": None, "meta": None}, False, None),
        ({"type": "image", "data": "!" * (100 * KIB), "mimeType": "image/png"}, False, None),
        (image_item(b"z" * (200 * KIB)), False, None),  # above the 100 KiB cap of this store
    ],
)
async def test_apply_sideband(tmp_path: Path, item: dict[str, Any], minted: bool, mime: str | None) -> None:
    store = BlobStore(tmp_path / "spool", max_bytes=100 * KIB)
    original = json.loads(json.dumps(result_of(item)))
    out = store.apply_sideband(result_of(item))
    assert result_of(item) == original  # input untouched
    if minted:  # the cheap pre-check never skips an item that would move
        assert store.needs_sideband(result_of(item))
    new = out["content"][0]
    if not minted:
        assert out == original
        return
    inline = new["resource"]["blob"] if "resource" in new else new["data"]
    assert inline == ""
    raw = base64.b64decode(item["resource"]["blob"] if "resource" in item else item["data"])
    meta = new["_meta"]
    assert meta["a2c_total_size"] == len(raw)
    assert meta["a2c_sha256"] == hashlib.sha256(raw).hexdigest()
    for key, value in (item.get("_meta") or {}).items():
        assert meta[key] == value
    assert {k: v for k, v in new.items() if k not in ("_meta", "data", "resource")} == {
        k: v for k, v in item.items() if k not in ("_meta", "data", "resource")
    }
    got, replies = await drain(store, meta["a2c_blob_handle"])
    assert got == raw
    assert replies[0]["mime_type"] == mime
    assert out["isError"] is False and out["meta"] is None


def test_apply_sideband_mixed_and_empty(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "spool")
    small = image_item(b"s")
    res = store.apply_sideband(result_of(small, image_item(b"b" * (64 * KIB))))
    assert res["content"][0] is not None and res["content"][0] == small
    assert res["content"][1]["data"] == ""
    assert store.apply_sideband({"content": None, "isError": True}) == {"content": None, "isError": True}
    assert not store.needs_sideband(result_of(small, resource_item(b"r" * KIB)))
    assert not store.needs_sideband({"content": None, "isError": True})


async def test_get_blob_reply_validates_against_core(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "spool")
    reply = await store.get_chunk(store.mint(b"abc", "text/plain"), None, None, "rid")
    assert wire.to_wire(models.GetBlobRet.model_validate(reply)) == reply
