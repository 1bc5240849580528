"""Per-epoch (or per-step) metrics to ``metrics.csv`` and, optionally, TensorBoard.

A resumed run continues from its last checkpoint, so rows logged after that checkpoint were
never made permanent: ``MetricsLog(resume_after=n)`` drops them (the run logs them again) and
the file holds each step once.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path


class MetricsLog:
    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str],
        *,
        tensorboard_dir: str | Path | None = None,
        tensorboard_keys: Sequence[str] = (),
        resume_after: int | None = None,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = list(columns)
        self.tb_keys = list(tensorboard_keys)
        if resume_after is not None:
            truncate_after(self.path, resume_after)
        elif self.path.exists():
            self.path.unlink()  # a fresh run starts a fresh log
        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(self.columns)
            self._file.flush()
        self._tb = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(tensorboard_dir), purge_step=resume_after)

    def write(self, row: Mapping[str, object], tb_step: int | None = None) -> None:
        self._csv.writerow([row[k] for k in self.columns])
        self._file.flush()
        if self._tb is not None:
            for k in self.tb_keys:
                self._tb.add_scalar(k, row[k], tb_step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def truncate_after(path: Path, index: int) -> None:
    """Keep the header and the rows whose first column is <= ``index``."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and float(r[0]) <= index]
    if len(kept) != len(rows):
        from s2robot.fileio import atomic_write

        with atomic_write(path, "w") as f:
            csv.writer(f).writerows(kept)
