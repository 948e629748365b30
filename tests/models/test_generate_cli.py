"""`heedful generate` end to end on the tiny model and the fake endpoint; resume; bad input."""

from __future__ import annotations

import json

import pytest

import heedful.cli.generate_cmds  # noqa: F401  (registers the command until cli/__init__ imports it)
from heedful.cli import main
from heedful.models import FakeModel, GenParams
from heedful.models.sampling import generate_into_store, read_prompt_file
from tests.models.fake_openai import FakeOpenAI, Running


def run_cli(capsys, *argv) -> str:
    main(list(argv))
    return capsys.readouterr().out


def fails(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code, " ".join(capsys.readouterr().err.split())  # rich wraps long lines


@pytest.fixture
def prompt_file(tmp_path):
    f = tmp_path / "prompts.jsonl"
    rows = [{"prompt": "Say hi."}, {"prompt": [{"role": "user", "content": "Name a colour."}]},
            {"prompt": "Count to three.", "tags": ["math"], "meta": {"src": "t"}}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return f


def test_generate_from_file_then_resume_then_by_tag(store, tiny_model_dir, prompt_file, capsys):
    args = ["generate", "--model", str(tiny_model_dir), "--prompts", str(prompt_file), "--tag", "demo",
            "-n", "2", "--seed", "1", "--max-new-tokens", "4", "--db", store.url, "--json"]
    out = json.loads(run_cli(capsys, *args))
    assert (out["prompts"], out["written"], out["skipped"], out["failed"]) == (3, 6, 0, {})
    assert out["tokens"] == 24 and out["tokens_per_s"] > 0
    rs = list(store.responses(tag="demo"))
    assert len(rs) == 6 and {r.model for r in rs} == {tiny_model_dir.name}
    assert all(r.model_revision and r.params["seed"] == 1 and r.params["n"] == 2 for r in rs)
    assert sorted(r.meta["sample_index"] for r in rs) == [0, 0, 0, 1, 1, 1]
    assert all(r.meta["completion_tokens"] == 4 and r.meta["logprob"] < 0 for r in rs)
    assert store.run(out["run_id"]).status == "succeeded"
    again = json.loads(run_cli(capsys, *args))
    assert (again["written"], again["skipped"]) == (0, 6)
    by_tag = json.loads(run_cli(capsys, "generate", "--model", str(tiny_model_dir), "--tag", "demo", "-n", "1",
                                "--seed", "2", "--max-new-tokens", "3", "--db", store.url, "--json"))
    assert (by_tag["prompts"], by_tag["written"]) == (3, 3)
    assert store.stats()["responses"] == 9


def test_text_file_table_output(sqlite_store, tiny_model_dir, tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("First prompt\n\nSecond prompt\n")
    out = run_cli(capsys, "generate", "-m", str(tiny_model_dir), "--prompts", str(f), "-n", "1",
                  "--max-new-tokens", "3", "--no-cache", "--db", sqlite_store.url)
    assert "tok/s" in out and "re-run with --seed" in out
    assert sqlite_store.stats()["responses"] == 2


def test_bad_input_writes_nothing(sqlite_store, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": \n')
    code, err = fails(capsys, "generate", "-m", "fake", "--prompts", str(bad), "--db", sqlite_store.url)
    assert code == 2 and "bad.jsonl:2" in err and "not JSON" in err
    bad.write_text('{"text": "no prompt key"}\n')
    code, err = fails(capsys, "generate", "-m", "fake", "--prompts", str(bad), "--db", sqlite_store.url)
    assert code == 2 and '"prompt"' in err
    code, err = fails(capsys, "generate", "-m", "fake", "--db", sqlite_store.url)
    assert code == 2 and "--prompts" in err
    code, err = fails(capsys, "generate", "-m", "fake", "--tag", "nothing", "--db", sqlite_store.url)
    assert code == 2 and "nothing" in err
    code, err = fails(capsys, "generate", "-m", "fake", "--prompts", str(tmp_path / "missing.txt"),
                      "--db", sqlite_store.url)
    assert code == 3
    good = tmp_path / "good.txt"
    good.write_text("hi\n")
    code, err = fails(capsys, "generate", "-m", "smolm2", "--prompts", str(good), "--db", sqlite_store.url)
    assert code == 3 and "Did you mean 'smollm2'" in err
    assert sqlite_store.stats()["responses"] == 0


def test_endpoint_failures_are_counted_and_retried_on_resume(sqlite_store, tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("hello\n400\nbye\n")
    with Running(FakeOpenAI()) as srv:
        args = ["generate", "-m", f"openai:m@{srv.url}", "--prompts", str(f), "-n", "2", "--seed", "3",
                "--db", sqlite_store.url, "--json"]
        out = json.loads(run_cli(capsys, *args))
        assert out["written"] == 4 and sum(out["failed"].values()) == 2 and "HTTP 400" in next(iter(out["failed"]))
        assert {r.text for r in sqlite_store.responses()} == {"echo: hello", "echo: bye"}
        srv.fake.attempts.clear()
        again = json.loads(run_cli(capsys, *args))
        assert (again["written"], again["skipped"]) == (0, 4)
        assert dict(srv.fake.attempts) == {"400": 2}  # only the failed samples were asked again


class Crashing(FakeModel):
    """Fails on its second call, like a process killed half-way."""

    def generate(self, prompts, params):
        if len(self.calls) >= 2:
            raise KeyboardInterrupt
        return super().generate(prompts, params)


def test_interrupted_run_resumes(sqlite_store, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a\nb\nc\nd\n")
    prompts = read_prompt_file(f)
    params = GenParams(n=1, temperature=0.7, seed=9)
    with pytest.raises(KeyboardInterrupt):
        generate_into_store(sqlite_store, Crashing(), prompts, params, chunk=2)
    assert sqlite_store.stats()["responses"] == 2
    s = generate_into_store(sqlite_store, FakeModel(), prompts, params, chunk=2)
    assert (s.written, s.skipped) == (2, 2) and sqlite_store.stats()["responses"] == 4
