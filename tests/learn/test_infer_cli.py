"""The `heedful infer ...` and `heedful loop` commands on the fake model: output, storage, clear errors."""

from __future__ import annotations

import json

import heedful.cli.infer_cmds  # noqa: F401  (registers the commands)
from heedful.cli import main
from heedful.store import Store


def cli(capsys, *argv):
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bestofn_refine_memory_store_their_results(tmp_path, capsys):
    db = str(tmp_path / "h.db")
    code, out, err = cli(capsys, "infer", "bestofn", "--model", "fake", "--judge-model", "fake", "--scorer",
                         "judge:pairwise", "-p", "Say hi.", "--n", "3", "--db", db, "--json")
    assert code == 0, err
    [pick] = json.loads(out)
    assert len(pick["response_ids"]) == 3 and pick["best_text"] == "ok"
    code, out, err = cli(capsys, "infer", "refine", "--model", "fake", "--judge-model", "fake", "-p", "Say hi.",
                         "--db", db, "--json")
    assert code == 0, err and json.loads(out)[0]["stopped"] == "no critique"  # "ok" is too short to be a critique
    with Store(db) as s:
        pid = s.add_prompt("What is the capital of France?")
        s.add_feedback("correction", {"text": "Paris."}, s.add_response(pid, "London."), source="human:a")
    code, out, err = cli(capsys, "infer", "memory", "--model", "fake", "--embedder", "hashing", "--min-similarity",
                         "0.3", "-p", "What is the capital of France please?", "--db", db)
    assert code == 0, err and "memory: 1 lessons" in out
    with Store(db) as s:
        stats = s.stats()
        mem = [r for r in s.responses() if r.meta.get("method") == "memory"]
    assert len(mem) == 1 and len(mem[0].meta["lessons"]) == 1
    assert stats["feedback_by_kind"]["ranking"] == 1 and stats["feedback_by_kind"]["preference"] == 3


def test_bad_input_fails_clearly_and_writes_nothing(tmp_path, capsys):
    db = str(tmp_path / "h.db")
    code, _, err = cli(capsys, "infer", "bestofn", "--model", "fake", "--scorer", "judge:rubrc", "-p", "x", "--db", db)
    assert code != 0 and "Did you mean 'rubric'" in err
    code, _, err = cli(capsys, "infer", "bestofn", "--model", "fake", "--scorer", "rm:/no/such", "-p", "x", "--db", db)
    assert code != 0 and "no reward model" in err
    code, _, err = cli(capsys, "infer", "memory", "--model", "fake", "--embedder", "hash", "-p", "x", "--db", db)
    assert code != 0 and "Did you mean 'hashing'" in err
    code, _, err = cli(capsys, "infer", "principles", "--model", "fake", "--db", db)
    assert code != 0 and "at least 2 prompts" in err
    code, _, err = cli(capsys, "loop", "--model", "fake", "--on", "nothing", "-a", "pairwise", "-o",
                       str(tmp_path / "o"), "--db", db)
    assert code != 0 and "no prompts selected" in err
    with Store(db) as s:
        assert s.stats()["responses"] == 0 and s.stats()["prompts"] == 0


def test_loop_command_records_rounds(tmp_path, capsys, tiny_model_dir):
    """The fake judge's "ok" is no verdict, so no pairs: both rounds keep the policy and say why."""
    db = str(tmp_path / "h.db")
    with Store(db) as s:
        s.add_prompt("Say hello.", tags=["loop"])
        s.add_prompt("Name a colour.", tags=["loop"])
    code, out, err = cli(capsys, "loop", "--model", str(tiny_model_dir), "--on", "loop", "-a", "pairwise",
                         "--judge-model", "fake", "--samples", "2", "--max-new-tokens", "4", "-o",
                         str(tmp_path / "o"), "--db", db, "--json")
    assert code == 0, err
    rounds = json.loads(out)
    assert [r["responses"] for r in rounds] == [4, 4] and all(r["skipped"].startswith("no pairs") for r in rounds)
    with Store(db) as s:
        missing = [f for f in s.feedback(kind="preference")]
        assert len(missing) == 4 and all(f.value is None for f in missing)
