"""The two roles a connection can take in an office."""

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    AGENT = "agent"
    COMPUTER = "computer"
