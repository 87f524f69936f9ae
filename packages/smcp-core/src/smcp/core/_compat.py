"""Import-time check that the packages of one installation share one version."""

from __future__ import annotations

from smcp.core._version import __version__ as CORE_VERSION
from smcp.core.errors import VersionSkewError

__all__ = ["VersionSkewError", "require_core_version"]


def require_core_version(distribution: str, version: str) -> None:
    """Raise :class:`VersionSkewError` unless smcp-core has exactly ``version``."""
    if version != CORE_VERSION:
        raise VersionSkewError(
            f"{distribution} {version} needs smcp-core=={version}, but smcp-core {CORE_VERSION} is "
            f"installed; run: pip install 'smcp-core=={version}' (all smcp-* packages share one version)"
        )
