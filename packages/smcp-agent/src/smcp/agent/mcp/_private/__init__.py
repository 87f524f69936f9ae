"""Internals of the MCP bridge (no public API here)."""
