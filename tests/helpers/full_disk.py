"""A folder on a small filesystem of its own, to make writes fail with "No space left on
device" (ENOSPC), then free the space again.

    with small_filesystem(tmp_path / "landing", size_mb=16) as disk:
        disk.fill(leave_kb=256)   # the next big write fails with ENOSPC
        ...
        disk.free()               # the filler is gone: writes succeed again

It mounts a tmpfs, which needs root (CAP_SYS_ADMIN); elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = ".filler"


class SmallFilesystem:
    """A mounted tmpfs at ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def free_bytes(self) -> int:
        """Bytes still free on the filesystem."""
        return shutil.disk_usage(self.path).free

    def fill(self, leave_kb: int) -> None:
        """Take all the free space but ``leave_kb`` KiB with a filler file."""
        take = self.free_bytes() - leave_kb * 1024
        with open(self.path / FILLER, "ab") as filler:
            filler.write(b"\0" * max(take, 0))

    def free(self) -> None:
        """Delete the filler: the space is back."""
        (self.path / FILLER).unlink(missing_ok=True)


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[SmallFilesystem]:
    """Mount a ``size_mb`` MiB tmpfs on ``path`` (created), unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield SmallFilesystem(path)
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)
