from __future__ import annotations

from typing import Any

from pydantic import model_validator

from smcp.core.models._base import ComputerRequest, WireModel


class A2CSkillRef(WireModel):
    name: str
    source: str
    path: str
    description: str
    uri: str | None = None
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: list[str] | None = None
    tags: list[str] | None = None
    version: str | None = None
    skill_metadata: dict[str, Any] | None = None


class GetSkillsReq(ComputerRequest):
    """``client:get_skills``."""


class GetSkillsRet(WireModel):
    skills: list[A2CSkillRef]
    req_id: str


class GetSkillReq(ComputerRequest):
    """``client:get_skill``: ``rel_path`` defaults to ``SKILL.md``."""

    name: str
    rel_path: str | None = None


class GetSkillRet(WireModel):
    """Exactly one of ``body`` (inline text) and ``blob_handle`` is present."""

    name: str
    rel_path: str
    mime_type: str
    total_size: int
    sha256: str
    body: str | None = None
    blob_handle: str | None = None
    req_id: str

    @model_validator(mode="after")
    def _body_xor_handle(self) -> GetSkillRet:
        if (self.body is None) == (self.blob_handle is None):
            raise ValueError("exactly one of 'body' and 'blob_handle' must be present")
        return self


class GetBlobReq(ComputerRequest):
    """``client:get_blob``: one chunk from ``chunk_offset`` (bytes)."""

    blob_handle: str
    chunk_offset: int | None = None
    max_chunk_bytes: int | None = None


class GetBlobRet(WireModel):
    blob_handle: str
    mime_type: str
    total_size: int
    sha256: str
    chunk_offset: int
    eof: bool
    blob: str
    req_id: str


class PutBlobReq(ComputerRequest):
    """``client:put_blob``: one chunk of an upload; the first chunk declares size and digest."""

    upload_id: str | None = None
    chunk_offset: int
    eof: bool
    total_size: int | None = None
    sha256: str | None = None
    name_hint: str | None = None
    blob: str


class PutBlobRet(WireModel):
    """Non-final ack: upload_id/chunk_offset/req_id; the final ack adds the landing fields."""

    upload_id: str
    chunk_offset: int
    req_id: str
    landing_path: str | None = None
    total_size: int | None = None
    sha256: str | None = None
