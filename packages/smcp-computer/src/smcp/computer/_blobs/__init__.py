"""Blob transfer on the Computer side: handles, the toolspool, ``client:get_blob``, the binary
sideband of tool results and ``client:put_blob`` uploads (docs/protocol.md §13)."""

from smcp.computer._blobs._handles import decode_handle, encode_handle
from smcp.computer._blobs._store import TOOLSPOOL_KIND, BlobResolver, BlobStore, ResolvedBlob, blob_error
from smcp.computer._blobs._upload import UPLOAD_DIR, UploadStore, parse_put_blob, sanitize_name_hint

__all__ = [
    "TOOLSPOOL_KIND",
    "UPLOAD_DIR",
    "BlobResolver",
    "BlobStore",
    "ResolvedBlob",
    "UploadStore",
    "blob_error",
    "decode_handle",
    "encode_handle",
    "parse_put_blob",
    "sanitize_name_hint",
]
