"""Interrupted training resumes to the same weights; the CLI drives a real run end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from heedful.learn.train import DPOConfig, train
from heedful.learn.train.run import last_checkpoint

ARGS = dict(max_steps=8, save_steps=2, max_length=64, precision="fp32", learning_rate=5e-3, seed=3)


def _cli(*args, env=None):
    return [sys.executable, "-c", "import sys; from heedful.cli import main; main(sys.argv[1:])", *args]


def _flags(cfg: dict) -> list[str]:
    return [x for k, v in cfg.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def _state(folder):
    from safetensors.torch import load_file
    return load_file(str(folder / "model.safetensors"))


def test_sigkilled_run_resumes_to_the_same_weights(tiny_model_dir, pref_dir, tmp_path, sqlite_store):
    straight = tmp_path / "straight"
    train("dpo", pref_dir, str(tiny_model_dir), straight, DPOConfig(**ARGS), say=lambda s: None)

    out = tmp_path / "killed"
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    cmd = _cli("train", "dpo", "--dataset", str(pref_dir), "--model", str(tiny_model_dir), "-o", str(out),
               "--db", db, *_flags(ARGS))
    proc = subprocess.Popen(cmd, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while last_checkpoint(out) is None and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    first = last_checkpoint(out)
    assert first is not None and not (out / "model.safetensors").exists(), "killed too late: the run had finished"
    assert int(first.rsplit("-", 1)[1]) < ARGS["max_steps"]

    res = train("dpo", pref_dir, str(tiny_model_dir), out, DPOConfig(**ARGS), resume=True, store=sqlite_store,
                say=lambda s: None)
    assert res.metrics["global_step"] == ARGS["max_steps"]
    assert sqlite_store.run(res.run_id).config["resume_from"] == first
    a, b = _state(straight), _state(out)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_cli_trains_from_yaml_with_flag_override(tiny_model_dir, pref_dir, tmp_path):
    from heedful.store import Store
    cfg = tmp_path / "dpo.yaml"
    cfg.write_text("max_steps: 5\nmax_length: 64\nprecision: fp32\nsave_steps: 0\nbeta: 0.5\n")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    out = tmp_path / "o"
    r = subprocess.run(_cli("train", "dpo", "-d", str(pref_dir), "-m", str(tiny_model_dir), "-o", str(out),
                            "--config", str(cfg), "--max-steps", "2", "--db", db),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained dpo: 2 steps" in r.stdout and "step 2/2 loss=" in r.stderr
    with Store(db) as s:
        (run_id,) = [row[0] for row in s.engine.connect().exec_driver_sql("select id from runs")]
        run = s.run(run_id)
    assert run.status == "succeeded" and run.config["config"]["beta"] == 0.5
    assert run.config["config"]["max_steps"] == 2 and run.outputs == [("model", str(out))]
    bad = subprocess.run(_cli("train", "dpo", "-d", str(pref_dir), "-m", str(tiny_model_dir), "-o",
                              str(tmp_path / "p"), "--config", str(tmp_path / "missing.yaml"), "--db", db),
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr and "Traceback" not in bad.stderr
