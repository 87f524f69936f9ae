"""Version of this distribution; scripts/bump_version.py keeps every distribution in step."""

__version__ = "0.1.0"
