"""Two CPU processes under `accelerate launch` (DDP over gloo): one model folder, one recorded run.

`accelerate launch --cpu` starts a single process (accelerate 1.15 runs
multi-CPU jobs only through mpirun with a hostfile); `--multi_gpu
--num_processes 2` on a machine without GPUs goes through torchrun, and each
process then runs on the CPU with the gloo backend. That is the path tested.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_two_process_cpu_dpo_under_accelerate_launch(tiny_model_dir, pref_dir, tmp_path):
    import torch

    from heedful.store import Store
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None or torch.cuda.is_available():
        pytest.skip("needs accelerate installed next to this Python and a machine without GPUs")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    out = tmp_path / "o"
    script = tmp_path / "heedful_main.py"
    script.write_text("import sys\nfrom heedful.cli import main\nmain(sys.argv[1:])\n")
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533", str(script),
           "train", "dpo", "-d", str(pref_dir), "-m", str(tiny_model_dir), "-o", str(out), "--max-steps", "2",
           "--max-length", "64", "--precision", "fp32", "--save-steps", "0", "--db", db]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.count("trained dpo: 2 steps") == 1  # rank 1 trains but does not report
    assert (out / "model.safetensors").is_file()
    with Store(db) as s:
        ids = [row[0] for row in s.engine.connect().exec_driver_sql("select id from runs")]
        assert len(ids) == 1  # only the main process records
        run = s.run(ids[0])
    assert run.status == "succeeded" and run.metrics["world_size"] == 2
    assert run.metrics["backend"] == "gloo" and run.metrics["hardware"]["device"] == "cpu"
    assert run.metrics["ref_cache"]["misses"] == 1  # both ranks shared rank 0's reference file
