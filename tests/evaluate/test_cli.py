"""`heedful eval …` end to end: tables on stdout, --json files, clear errors with non-zero exits."""

from __future__ import annotations

import json

import pytest

import heedful.cli.eval_cmds  # noqa: F401  (registers the commands until the lead wires it into heedful.cli)
from heedful.annotate import registry
from heedful.cli import main
from heedful.models import FakeModel
from heedful.store import Store


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(url)
    for i in range(4):
        pid = store.add_prompt(f"Question {i}?")
        ref = store.add_response(pid, "no", model="base")
        mod = store.add_response(pid, "yes, because " + "x" * i, model="tuned")
        store.add_feedback("outcome", {"passed": i > 0}, mod, source="verifier:nonempty")
        store.add_feedback("preference", {"choice": "b" if i else "a"}, [ref, mod], source="human:ann",
                           meta={"shown_order": "ab"})
        store.add_feedback("preference", {"choice": "b"}, [ref, mod],
                           source={"type": "ai", "name": "j", "model": "gpt-4o"}, meta={"shown_order": "ba"})
    store.close()
    return url


def run(argv, capsys):
    main(argv)
    return capsys.readouterr().out


def test_verify(db, tmp_path, capsys):
    out = run(["eval", "verify", "--model", "tuned", "--db", db, "--json", str(tmp_path / "v.json")], capsys)
    assert "nonempty" in out and "75.0" in out
    d = json.loads((tmp_path / "v.json").read_text())
    assert d["per_check"]["nonempty"]["value"] == 75.0 and d["per_check"]["nonempty"]["n"] == 4


def test_agreement_and_bias(db, tmp_path, capsys):
    out = run(["eval", "agreement", "ai:j", "human:ann", "--db", db, "--json", str(tmp_path / "a.json")], capsys)
    assert "human:ann" in out
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["pairs"][0]["n"] == 4 and d["pairs"][0]["percent_agreement"] == 0.75
    assert d["pairs"][0]["cohen_kappa"] == 0.0  # the judge always says b: no agreement beyond chance
    run(["eval", "bias", "ai:j", "--reference", "human:ann", "--db", db, "--json", str(tmp_path / "b.json")], capsys)
    b = json.loads((tmp_path / "b.json").read_text())
    # shown "ba" and canonical b: the answer shown first won every time
    assert b["length_preference"]["value"] == 100.0 and b["first_position_preference"]["value"] == 100.0
    assert b["reference"]["length_preference"]["value"] == 75.0


def test_winrate_runs_the_judge_then_reuses(db, tmp_path, capsys, monkeypatch):
    made = []
    monkeypatch.setattr(registry, "load_model", lambda spec: made.append(spec) or FakeModel(["[[A]]"]))
    url = db.replace("h.db", "fresh.db")
    store = Store(url)
    for i in range(3):
        pid = store.add_prompt(f"Q{i}")
        store.add_response(pid, "r", model="base")
        store.add_response(pid, "m", model="tuned")
    store.close()
    out = tmp_path / "w.json"
    run(["eval", "winrate", "--model", "tuned", "--reference", "base", "--judge", "pairwise", "--both-orders",
         "--db", url, "--json", str(out)], capsys)
    d = json.loads(out.read_text())
    # "[[A]]" always: each pair is shown once in each order, so the model wins one of two -> 50
    assert d["win_rate"] == 50.0 and d["n"] == 3 and d["judged_now"] == 6 and made == ["smollm2"]
    for key in ("standard_error", "discrete_win_rate", "length_controlled_win_rate", "ci_low", "ci_high"):
        assert key in d
    run(["eval", "winrate", "--model", "tuned", "--reference", "base", "--judge", "pairwise",
         "--db", url, "--json", str(out)], capsys)
    assert json.loads(out.read_text())["judged_now"] == 0 and made == ["smollm2"]


@pytest.mark.parametrize("argv, code, msg", [
    (["eval", "agreement", "ai:jj", "human:ann"], 3, "Did you mean 'ai:j'"),
    (["eval", "bias", "ai:nobody"], 3, "no preference verdicts"),
    (["eval", "verify", "--model", "base"], 3, "no verifier outcomes"),
    (["eval", "winrate", "--model", "tuned", "--reference", "base"], 2, "name one with --judge"),
    (["eval", "rm", "nowhere", "pairs.jsonl", "--split", "dev"], 2, "--split must be"),
])
def test_errors(db, capsys, argv, code, msg, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv + (["--db", db] if argv[1] != "rm" else []))
    assert e.value.code == code
    assert msg in capsys.readouterr().err.replace("\n", " ")


def test_report_without_matplotlib_says_so(db, tmp_path, capsys, monkeypatch):
    import sys
    store = Store(db)
    ds = store.add_dataset(name="d", rule="r", feedback_ids=[next(store.feedback(kind="preference")).id])
    store.close()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on an install without it
    with pytest.raises(SystemExit) as e:
        main(["report", ds, "-o", str(tmp_path / "r.html"), "--db", db])
    assert e.value.code == 3 and "matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
