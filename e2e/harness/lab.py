"""Labs: processes that the tests of one module share (servers, Computers, Agents), started on
first use and started again when they have died.

Each lab lives in its own folder ``target/e2e/<group>/<module>-<pid>-<n>``: the pid keeps
concurrent runs of the suite (other worktrees, ``hatch test`` next to ``.ci/run``) from deleting
each other's files, the counter keeps apart the lab instances pytest may set up again while it
reorders params.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .official_env import repo_root
from .processes import ManagedProcess, ProcessManager

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of this run, nor of a concurrent run, uses: ``<prefix>-<pid>-<n>``."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


class _HasProc(Protocol):
    @property
    def proc(self) -> ManagedProcess: ...


P = TypeVar("P", bound=_HasProc)
L = TypeVar("L", bound="Lab")


class Lab:
    """A folder and a :class:`ProcessManager` for the shared processes of one test module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs = ProcessManager(root)
        self._kept: dict[Hashable, Any] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A number for the name of the next process the lab starts (restarts get new names)."""
        return next(self._ids)

    async def kept(self, key: Hashable, start: Callable[[], Awaitable[P]]) -> P:
        """The process-backed object kept under ``key``; ``start()`` makes it when there is none
        yet or its process has died."""
        current: P | None = self._kept.get(key)
        if current is None or not current.proc.alive():
            current = self._kept[key] = await start()
        return current


@contextmanager
def open_lab(factory: Callable[[Path], L], module_file: str, group: str = "matrix-lab") -> Iterator[L]:
    """A lab of ``factory`` in a fresh folder for the module ``module_file``; every process it
    started is stopped on exit. For module-scoped fixtures: ``with open_lab(...) as lab: yield lab``."""
    root = repo_root() / "target" / "e2e" / group / unique(Path(module_file).stem)
    root.mkdir(parents=True)
    lab = factory(root)
    try:
        yield lab
    finally:
        lab.procs.stop_all()
