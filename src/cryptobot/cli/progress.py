"""A rich progress bar on stderr when it is a terminal; silent otherwise."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cryptobot.data.fetcher import Progress as ProgressFn


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressFn | None]:
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, int] = {}

    def update(key: str, done: int, total: int) -> None:
        if key not in tasks:
            tasks[key] = bar.add_task(key, total=max(total, 1))
        bar.update(tasks[key], completed=min(done, total), total=max(total, 1))

    with bar:
        yield update
