"""The HTML report: one self-contained file with its plots inside, and untrusted text escaped."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("matplotlib")

from heedful.evaluate.report import Section, write_report
from heedful.evaluate.winrate import winrate
from heedful.store import Store

EVIL = "<script>alert('x')</script>"


def loop_store(url: str) -> tuple[Store, str, str]:
    """Prompts (one hostile), two models' answers, verifier outcomes, judge + human verdicts,
    a dataset from them, a training run with a loss curve, and a recorded win rate."""
    store = Store(url)
    fids = []
    for i in range(6):
        pid = store.add_prompt(f"Question {i} {EVIL}" if i == 0 else f"Question {i}")
        ref = store.add_response(pid, "short", model="base")
        mod = store.add_response(pid, "a longer answer " * (i + 1), model="tuned")
        for rid, ok in ((ref, i % 2 == 0), (mod, True)):
            store.add_feedback("outcome", {"passed": ok}, rid, source="verifier:two_lines")
        for order in ("ab", "ba"):
            fids.append(store.add_feedback("preference", {"choice": "b" if i else "a"}, [ref, mod],
                                           source={"type": "ai", "name": "pairwise", "model": "SmolLM2"},
                                           meta={"shown_order": order}))
        store.add_feedback("preference", {"choice": "b" if i % 3 else "a"}, [ref, mod], source="human:ann")
    ds = store.add_dataset(name="pairs", rule="preference", feedback_ids=fids, n_rows=len(fids))
    run = store.start_run("train", name="dpo", inputs=[("dataset", ds), ("model", "base")])
    store.finish_run(run, metrics={"loss_curve": [[1, 0.69], [2, 0.6], [3, 0.5]]}, outputs=[("model", "tuned")])
    winrate(store, "tuned", "base", judge="pairwise", n_boot=200)
    return store, ds, run


def test_report_is_self_contained_and_escaped(tmp_path):
    import matplotlib.pyplot as plt
    store, _, run = loop_store(f"sqlite:///{tmp_path / 'h.db'}")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    extra = Section(title=f"demo {EVIL}", text="held-out compliance", figures=[fig],
                    table=[{"method": EVIL, "before": 10.0, "after": 40.0}])
    out = write_report(store, run, tmp_path / "r" / "report.html", extra_sections=[extra],
                       comparisons=[{"label": "held-out compliance: before", "value": 10.0, "low": 5.0, "high": 18.0},
                                    {"label": "held-out compliance: after", "value": 40.0, "low": 30.0, "high": 50.0}])
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(?!data:)", html)             # nothing loaded from elsewhere
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()                                  # not even ours
    assert html.count("&lt;script&gt;") >= 3                              # prompt, section title, table cell
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 6  # comparisons, pass rates, curve, agreement, bias, the demo's own figure
    import base64
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for text in ("tuned vs base", "two_lines", "ai:pairwise", "human:ann",
                 "dpo", "pairs", "held-out compliance: after"):
        assert text in html
    assert not (tmp_path / "r" / "report.html.part").exists()
    store.close()


def test_report_for_a_dataset_and_cli(tmp_path):
    import heedful.cli.eval_cmds  # noqa: F401
    from heedful.cli import main
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store, ds, run = loop_store(url)
    out = tmp_path / "ds.html"
    main(["report", ds, "-o", str(out), "--db", url])
    html = out.read_text(encoding="utf-8")
    assert run in html and "tuned" in html and "12 feedback row(s)" in html
    with pytest.raises(SystemExit) as e:
        main(["report", "no-such-id", "-o", str(tmp_path / "x.html"), "--db", url])
    assert e.value.code == 3 and not (tmp_path / "x.html").exists()
    store.close()


def test_pass_rates_put_the_lineage_models_first(tmp_path):
    from heedful.evaluate.report import pass_rate_rows
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    pid = store.add_prompt("q")
    for m in range(9):  # model m0 answers most, m8 least: m8 falls outside the top 8
        for k in range(10 - m):
            rid = store.add_response(pid, f"answer {m}.{k}", model=f"m{m}")
            store.add_feedback("outcome", {"passed": k % 2 == 0}, rid, source="verifier:check")
    top = [r["label"] for r in pass_rate_rows(store)]
    assert top[0] == "m0 · check" and "m8 · check" not in top and len(top) == 8
    mine = [r["label"] for r in pass_rate_rows(store, ["m8", "not-in-store"])]
    assert mine[0] == "m8 · check" and len(mine) == 8 and "m7 · check" not in mine
    store.close()
