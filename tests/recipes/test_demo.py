"""`heedful demo --quick` end to end on the real SmolLM2-135M: the README's main command, small."""

from __future__ import annotations

import json
import sys

import pytest


@pytest.mark.slow
def test_quick_demo_runs_to_a_report(tmp_path, tmp_path_factory, monkeypatch):
    from typer.testing import CliRunner

    import heedful.cli.demo_cmds  # noqa: F401 - registers `demo` and `run`
    from heedful.cli.common import app
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path_factory.getbasetemp() / "heedful-cache"))
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out), "--json", str(tmp_path / "d.json")])
    sys.stdout.write(result.output[-3000:])
    assert result.exit_code == 0, result.output[-3000:]
    fig = json.loads((tmp_path / "d.json").read_text())
    assert fig["quick"] is True and fig["check"] == "instructions"
    for key in ("before", "after"):
        e = fig[key]
        assert 0 <= e["low"] <= e["value"] <= e["high"] <= 100 and e["n"] == fig["heldout_prompts"] > 0
    names = [m["name"] for m in fig["methods"]]
    assert names == ["base", "dpo", "sft", "best_of_3"]
    assert fig["datasets"]["pairs"]["rows"]["train"] > 0
    assert fig["training"]["dpo"]["global_step"] == 4
    report = fig["report"]
    html = open(report, encoding="utf-8").read()
    assert report.startswith(str(out)) and "Held-out compliance by method" in html and "data:image/png;base64," in html
    assert f"report: {report}" in result.output.replace("\n", "")
