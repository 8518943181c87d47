"""A progress bar on stderr for exports that take more than a moment.

It appears only on a terminal, and only once the export has run for :data:`DELAY` seconds,
so quick exports and pipes (``--output -``, CI logs) stay clean; it is removed when done.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

DELAY = 0.5


class ExportProgress:
    """``with ExportProgress(total_steps) as progress: progress.step("charts")``."""

    def __init__(self, steps: int, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.done = 0
        self.steps = steps
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ExportProgress:
        return self

    def step(self, description: str) -> None:
        """Mark the previous step finished and ``description`` begun."""
        if self._bar is None and self.enabled and time.monotonic() - self.started >= DELAY:
            self._bar = Progress(
                TextColumn("[bold blue]export[/]"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=self.steps, completed=self.done)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, description=description)
        self.done += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
