"""Fixtures for the capture tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(capsys):
    """Run `heedful ARGS…`; returns (exit code, stdout, stderr)."""
    from heedful.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code or 0
        out, err = capsys.readouterr()
        return code, out, " ".join(err.split())
    return run


@pytest.fixture(autouse=True, params=["in-process", "worker"])
def convert_in(request, monkeypatch):
    """Every import test runs twice: rows converted in this process, and in a forked worker
    (which big files get; forced here for every file the worker takes)."""
    from heedful.capture import importer
    monkeypatch.setattr(importer, "WORKER", "never" if request.param == "in-process" else "always")
    return request.param
