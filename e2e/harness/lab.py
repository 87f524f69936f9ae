"""Labs: processes that the tests of one module share (servers, Computers, Agents), started on
first use.

A shared process that dies is started again for the next test, but the death is recorded (with
its exit code and log) and fails the module when its lab is torn down: a crash in one test is
never hidden from the run.

Each lab lives in its own folder ``target/e2e/<group>/<module>-<pid>-<n>``: the pid keeps
concurrent runs of the suite (other worktrees, ``hatch test`` next to ``.ci/run``) from deleting
each other's files, the counter keeps apart the lab instances pytest may set up again while it
reorders params.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from smcp.testing.processes import ManagedProcess, ProcessManager, tail

from . import repo_root

log = logging.getLogger("smcp.e2e")
_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of this run, nor of a concurrent run, uses: ``<prefix>-<pid>-<n>``."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


class _HasProc(Protocol):
    @property
    def proc(self) -> ManagedProcess: ...


P = TypeVar("P", bound=_HasProc)
L = TypeVar("L", bound="Lab")


@dataclass(frozen=True)
class Death:
    """A shared process found dead while the lab still counted on it."""

    key: Hashable
    name: str
    returncode: int | None
    log_path: Path

    def describe(self) -> str:
        header = f"{self.name} ({self.key!r}) exited with {self.returncode}; log {self.log_path}:"
        return f"{header}\n{tail(self.log_path, 3000)}"


class Lab:
    """A folder and a :class:`ProcessManager` for the shared processes of one test module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs = ProcessManager(root)
        self.deaths: list[Death] = []
        self._kept: dict[Hashable, Any] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A number for the name of the next process the lab starts (restarts get new names)."""
        return next(self._ids)

    def record_death(self, key: Hashable, proc: ManagedProcess) -> None:
        """Note that the shared process ``proc`` (kept under ``key``) died unexpectedly."""
        death = Death(key, proc.name, proc.returncode, proc.log_path)
        log.warning("shared e2e process died: %s (exit %s); the module will fail", proc.name, proc.returncode)
        self.deaths.append(death)

    async def kept(self, key: Hashable, start: Callable[[], Awaitable[P]]) -> P:
        """The process-backed object kept under ``key``; ``start()`` makes it when there is none
        yet, or again (recording the death) when its process has died."""
        current: P | None = self._kept.get(key)
        if current is not None and not current.proc.alive():
            self.record_death(key, current.proc)
            current = None
        if current is None:
            current = self._kept[key] = await start()
        return current

    def check_alive(self) -> None:
        """Record every kept process that is not running any more."""
        for key, kept in self._kept.items():
            if not kept.proc.alive():
                self.record_death(key, kept.proc)
        self._kept.clear()


@contextmanager
def open_lab(factory: Callable[[Path], L], module_file: str, group: str = "matrix-lab") -> Iterator[L]:
    """A lab of ``factory`` in a fresh folder for the module ``module_file``; every process it
    started is stopped on exit, and the module fails if a shared process died while in use.
    For module-scoped fixtures: ``with open_lab(...) as lab: yield lab``."""
    root = repo_root() / "target" / "e2e" / group / unique(Path(module_file).stem)
    root.mkdir(parents=True)
    lab = factory(root)
    try:
        yield lab
        lab.check_alive()
    finally:
        lab.procs.stop_all()
    if lab.deaths:
        report = "\n\n".join(death.describe() for death in lab.deaths)
        pytest.fail(
            f"{len(lab.deaths)} shared process(es) of {root} died during the module:\n{report}", pytrace=False
        )
