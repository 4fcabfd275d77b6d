"""Progress bars of the command line: drawn on a terminal only (one-line errors elsewhere)."""

from __future__ import annotations

import io
import sys

from napari_interfaces.core.progress import cli_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(progress) -> None:
    progress.start(3, "reading")
    for _ in range(3):
        progress.advance()


def test_no_bar_without_a_terminal(monkeypatch):
    """stderr captured, piped or logged: nothing but what the command itself writes."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    _run(cli_progress())
    assert err.getvalue() == ""


def test_bar_on_a_terminal(monkeypatch):
    tty = _Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    _run(cli_progress(file=tty))
    assert "reading" in tty.getvalue()
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    _run(cli_progress(enabled=False, file=err))  # e.g. --json: silent even on a terminal
    assert err.getvalue() == ""
