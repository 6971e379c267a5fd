"""Crash simulation for the wallet's file operations: a :class:`~plugcharge.pnc.wallet.FileOps` that
'dies' after a number of steps (shared by the -2 and -20 wallet tests)."""
from __future__ import annotations

import os
from pathlib import Path

from plugcharge.pnc.wallet import FileOps


class SimulatedCrash(BaseException):
    pass


class CrashingOps(FileOps):
    """Performs the first ``budget`` steps, then 'dies': the failing step and every later one
    raise (a write that dies leaves half of its bytes, like a torn write)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.steps = 0
        self.dead = False

    def _step(self) -> None:
        if self.dead or self.steps >= self.budget:
            self.dead = True
            raise SimulatedCrash
        self.steps += 1

    def open_temp(self, path: Path) -> int:
        self._step()
        return super().open_temp(path)

    def write(self, fd: int, data: bytes) -> None:
        if self.dead or self.steps >= self.budget:
            super().write(fd, data[: len(data) // 2])
        self._step()
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._step()
        super().fsync(fd)

    def close(self, fd: int) -> None:
        if self.dead:  # the OS closes descriptors of a dead process; nothing more happens
            os.close(fd)
            raise SimulatedCrash
        self._step()
        super().close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self._step()
        super().replace(src, dst)

    def unlink(self, path: Path) -> None:
        self._step()
        super().unlink(path)

    def fsync_dir(self, directory: Path) -> None:
        self._step()
        super().fsync_dir(directory)
