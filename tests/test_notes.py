"""Notes for the person running a command (cli/output.py ``Notes``): on a pipe or in a cron log
one plain line each, whatever its length, its text as given; nothing with ``-q``."""

import pytest

from cryptobot.cli.output import Notes


def test_on_a_pipe_each_note_is_one_plain_line(capsys: pytest.CaptureFixture[str]):
    long = "equity fell to -15.40 at the close of 2023-11-16T03:43:00Z " * 4
    notes = Notes()
    notes.warn(long.strip(), colour="red")
    notes.say("run [bold]x[/] recorded")  # brackets are text, not markup
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"warning: {long.strip()}", "run [bold]x[/] recorded"]


def test_quiet_notes_print_nothing(capsys: pytest.CaptureFixture[str]):
    notes = Notes(quiet=True)
    notes.warn("no stored funding")
    notes.say("buy and hold: +1.00%")
    assert capsys.readouterr() == ("", "")
