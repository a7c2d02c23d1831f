"""``--chart DIR`` shared by ``scan`` and ``signal``: the option, its check before any work,
and the call into ``report.setup_charts`` (matplotlib loads only when charts are drawn)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptobot.core.errors import CryptobotError

if TYPE_CHECKING:  # the lake (pandas) loads with the command, not with its --help
    from cryptobot.core.settings import Settings
    from cryptobot.core.setup import Setup
    from cryptobot.data.lake import Lake

log = logging.getLogger(__name__)


def check_chart_dir(path: Path | None) -> Path | None:
    """An existing, writable directory, refused before the command starts its work."""
    if path is None:
        return None
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist; create it first"
        raise CryptobotError(f"--chart {path}: {what}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise CryptobotError(f"--chart {path}: not writable by this user")
    return path


ChartOpt = Annotated[
    Path | None,
    typer.Option(
        "--chart",
        metavar="DIR",
        help="Also draw each setup (PNG) and a page of all of them (setups.html) into DIR.",
        callback=check_chart_dir,
    ),
]


def write_charts(
    setups: Sequence[Setup],
    *,
    directory: Path,
    lake: Lake,
    settings: Settings,
    now_ms: int,
    title: str,
) -> None:
    """Draw ``setups`` into ``directory``; a file that cannot be written is one clear error
    (the records were already printed; charts written before it stay whole)."""
    from cryptobot.report.setup_charts import write_setup_charts

    try:
        paths = write_setup_charts(
            setups,
            lake=lake,
            cfg=settings.strategies,
            directory=directory,
            now_ms=now_ms,
            title=title,
        )
    except OSError as exc:
        raise CryptobotError(f"--chart {directory}: {exc.strerror or exc}") from None
    log.info("%d charts and %s written", len(paths) - 1, paths[-1])
