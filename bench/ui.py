"""Progress on the terminal (rich): one bar per phase, with a live status line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

# In a pipe or CI log, keep the columns (elapsed time, status) instead of eliding them.
console = Console() if sys.stdout.isatty() else Console(width=150)


class Ui:
    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(bar_width=28),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )

    def __enter__(self) -> Ui:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def log(self, message: str) -> None:
        self.progress.console.log(message)

    @asynccontextmanager
    async def phase(
        self,
        description: str,
        *,
        seconds: float | None = None,
        total: float | None = None,
        status: Callable[[], str] | None = None,
    ) -> AsyncIterator[Phase]:
        """A bar that fills with time (``seconds``) or by ``Phase.advance`` (``total``)."""
        task = self.progress.add_task(description, total=seconds or total or 1, status="")
        phase = Phase(self.progress, task, seconds)
        started = time.monotonic()
        plain = not self.progress.console.is_terminal  # CI logs: one line per phase

        async def tick() -> None:
            while True:
                phase.refresh(status() if status else None)
                await asyncio.sleep(0.25)

        ticker = asyncio.create_task(tick())
        try:
            yield phase
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            phase.refresh(status() if status else None)
            total_now = self.progress.tasks[self._index(task)].total or 1
            self.progress.update(task, completed=total_now)
            if plain:
                self.progress.console.print(
                    f"{time.strftime('%H:%M:%S')} {description}: "
                    f"{time.monotonic() - started:.1f} s {phase.status}",
                    highlight=False,
                )

    def _index(self, task: TaskID) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == task)


class Phase:
    def __init__(self, progress: Progress, task: TaskID, seconds: float | None) -> None:
        self._progress = progress
        self._task = task
        self._seconds = seconds
        self._started = time.monotonic()
        self.done = 0.0
        self.status = ""

    def advance(self, amount: float = 1) -> None:
        self.done += amount

    def refresh(self, status: str | None = None) -> None:
        if status is not None:
            self.status = status
        completed = (
            min(time.monotonic() - self._started, self._seconds) if self._seconds else self.done
        )
        self._progress.update(self._task, completed=completed, status=self.status)
