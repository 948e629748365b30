"""DPO LoRA throughput: heedful's training path against TRL's DPOTrainer used directly, same run.

Both contenders train the embedded SmolLM2-135M (float32, LoRA r16 on all
linear layers, 2 pairs an optimiser step, same seed, same pairs, same number
of epochs), each in a fresh process so its peak RSS is its own:

| row | what runs |
|---|---|
| `TRL DPOTrainer` | `trl.DPOTrainer` with TRL's defaults except bf16=False (no bf16 emulation on CPUs without it): gradient checkpointing on, both pairs in one pass, the reference log-probs from an adapter-disabled forward pass at every step. |
| `heedful (cold cache)` | `heedful.learn.train.train("dpo", ...)` with its defaults: reference log-probs computed once before training and written to the cache; the LM head scores completion positions only (TRL does that on CUDA only, on a CPU it scores prompt and padding too); one pair a pass, two passes a step, so nothing is padded past a pair's longer sequence and the activations fit without checkpointing (hardware.micro_batches); one model hash, not two. |
| `heedful (warm cache)` | the same call again (`--warm`): the cache from the previous run is read, no reference forward at all (a second method, epoch budget or loop round on the same pairs). |

The clock of each contender runs from loading the model to the saved output,
so tokenisation, precomputation and saving count; imports of torch,
transformers, peft and TRL happen before it starts, in both. pairs/s = pairs × epochs /
seconds; tokens/s counts the real (unpadded) tokens of chosen and rejected
sequences per epoch. MFU divides the model FLOPs that DPO needs by the float32
matmul rate measured in this script with torch on model-shaped matrices
(the faster of MKL and oneDNN, the best of a measurement before and one after
the contenders). The
FLOPs needed per pass: 2·N_body per real token (the decoder layers) plus
2·N_head per completion token (the tied 49152×576 LM head: only completion
positions have a log-prob DPO uses); a policy step is 2 passes (forward, and a
backward through frozen weights), each reference forward 1. Attention's
quadratic term is ignored (<5% at these lengths). Not counted as useful work:
recomputation for gradient checkpointing, padding, and the head on prompt
positions (which TRL computes on a CPU), so both contenders are credited the
same FLOPs for the policy and differ only by their number of reference passes.

    .venv/bin/python bench/train.py --quick          # 4 pairs × 64 tokens, a few minutes
    .venv/bin/python bench/train.py                  # 16 pairs × 256 tokens × 3 epochs (long on 2 cores)
    .venv/bin/python bench/train.py --warm           # also the warm-cache row
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_bytes, machine, machine_line, python_child, table  # noqa: E402

WORDS = ("the model answers questions about rivers mountains history science cooking music gardens "
         "weather travel numbers letters colours animals machines cities languages stories games "
         "because when while after before although however therefore quickly carefully clearly").split()


# --- the data ------------------------------------------------------------------------------

def make_pairs(tok, n: int, length: int, seed: int = 0) -> dict:
    """n pairs; prompt, chosen and rejected each ~length/2 tokens (±length/8), as plain text."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        ids: list[int] = []
        while len(ids) < k:
            ids += tok(" " + " ".join(rng.choice(WORDS) for _ in range(k)), add_special_tokens=False)["input_ids"]
        return tok.decode(ids[:k])
    half, jitter = length // 2, max(1, length // 8)
    rows = {"prompt": [], "chosen": [], "rejected": []}
    for _ in range(n):
        for col in rows:
            rows[col].append(text(half + rng.randint(-jitter, jitter)))
    return rows


def real_tokens(tok, rows: dict) -> tuple[int, int]:
    """Unpadded tokens of the chosen and rejected sequences (prompt + completion + EOS each), and
    of their completions alone (+ EOS): the positions whose log-prob DPO uses."""
    n = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    triples = list(zip(rows["prompt"], rows["chosen"], rows["rejected"]))
    completions = sum(n(c) + n(r) + 2 for _, c, r in triples)
    return sum(2 * n(p) for p, _, _ in triples) + completions, completions


# --- the machine's matmul rate -------------------------------------------------------------

def matmul_rates() -> dict:
    """float32 GFLOP/s of torch's faster CPU GEMM (MKL's `a @ b` or oneDNN's linear), on three shapes.

    MFU divides by the faster of the two, so a contender that uses oneDNN
    (heedful, models/onednn.py) is measured against what that kernel does here.
    """
    import torch

    from heedful.models import onednn
    out = {}
    for name, (m, k, n) in {"square_2048": (2048, 2048, 2048), "model_shaped": (1024, 576, 1536),
                            "lm_head": (512, 576, 49152)}.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        bt = b.t().contiguous()
        kernels = {"mkl": lambda: a @ b}
        if onednn.built_in():
            kernels["onednn"] = lambda: onednn.linear(a, bt)
        for kname, fn in kernels.items():
            fn()
            best = min(_time(fn) for _ in range(5))
            out[f"{name}_{kname}"] = 2 * m * k * n / best / 1e9
        out[name] = max(out[f"{name}_{kname}"] for kname in kernels)
    return out


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- contenders (each in its own process) --------------------------------------------------

def worker_trl(args) -> dict:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from heedful.learn.train.loading import load_dataset_dir
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    train_ds, _ = load_dataset_dir(args.data)
    cfg = DPOConfig(output_dir=args.out, bf16=False, use_cpu=True, per_device_train_batch_size=2,
                    num_train_epochs=args.epochs, max_length=args.max_length, learning_rate=1e-4,
                    gradient_checkpointing=True, seed=args.seed, data_seed=args.seed, save_strategy="no",
                    report_to="none", disable_tqdm=True, logging_steps=1, dataloader_num_workers=0)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=cfg, train_dataset=train_ds, processing_class=tok, peft_config=lora)
    out = trainer.train()
    trainer.model.merge_and_unload().save_pretrained(args.out)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time(), "train_loss": out.training_loss,
            "steps": trainer.state.global_step, "loop_seconds": out.metrics["train_runtime"]}


def worker_heedful(args) -> dict:
    # the libraries worker_trl imports before its clock starts (heedful imports them lazily)
    import peft  # noqa: F401
    import torch  # noqa: F401
    import trl  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401
    from trl import DPOTrainer  # noqa: F401

    from heedful.learn.train import DPOConfig, train
    t0 = time.perf_counter()
    cfg = DPOConfig(per_device_train_batch_size=2, num_train_epochs=args.epochs, max_length=args.max_length,
                    learning_rate=1e-4, precision="fp32", seed=args.seed,
                    save_steps=0, lora_r=16, lora_alpha=32)
    res = train("dpo", args.data, args.model, args.out, cfg, say=lambda s: None)
    cache = res.metrics["ref_cache"]
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time(),
            "train_loss": res.metrics["train_loss"],
            "steps": res.metrics["global_step"], "ref_cache": {"hits": cache["hits"], "misses": cache["misses"]},
            "loop_seconds": res.metrics["train_runtime_s"]}


# --- the run -------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=256, help="tokens per sequence (prompt + completion), about")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="4 pairs × 64 tokens × 3 epochs")
    ap.add_argument("--warm", action="store_true", help="also time heedful with a warm reference cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--worker", choices=["trl", "heedful"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--max-length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        result = (worker_trl if args.worker == "trl" else worker_heedful)(args)
        print(json.dumps(result))
        return
    if args.quick:
        args.pairs, args.tokens = 4, 64
    run(args)


def run(args) -> None:
    from heedful.learn.train.loading import load_tokenizer, resolve_model
    info = machine()
    print(machine_line(info), flush=True)
    model = resolve_model("smollm2")  # the dense float32 copy of the embedded GGUF (made once, cached)
    tok = load_tokenizer(model)
    rows = make_pairs(tok, args.pairs, args.tokens, args.seed)
    tokens_per_epoch, completion_tokens = real_tokens(tok, rows)
    max_length = int(args.tokens * 1.25) + 8  # nothing is truncated
    rates = matmul_rates()
    n_body, n_head = _n_params(model)
    flops_per_pass = 2 * n_body * tokens_per_epoch + 2 * n_head * completion_tokens
    with tempfile.TemporaryDirectory(prefix="heedful-bench-train-") as tmp:
        import datasets
        data = Path(tmp) / "pairs"
        datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(data))
        env = {"HEEDFUL_CACHE": str(Path(tmp) / "cache"), "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
        contenders = [("TRL DPOTrainer", "trl"), ("heedful (cold cache)", "heedful")]
        if args.warm:
            contenders.append(("heedful (warm cache)", "heedful"))
        results = []
        for i, (label, worker) in enumerate(contenders):
            print(f"running {label} ...", flush=True)
            child = python_child(__file__, "--worker", worker, "--model", str(model), "--data", str(data),
                                 "--out", str(Path(tmp) / f"out{i}"), "--max-length", str(max_length),
                                 "--epochs", str(args.epochs), "--seed", str(args.seed), env=env).check(label)
            results.append((label, child.json(), child.peak_rss))
    after = matmul_rates()  # a busy moment lowers a rate, never raises it: MFU divides by the best seen
    rates = {k: max(v, after[k]) for k, v in rates.items()}
    report(args, info, rates, (n_body, n_head), tokens_per_epoch, flops_per_pass, results)


def _n_params(folder: Path) -> tuple[int, int]:
    cfg = json.loads((folder / "config.json").read_text())
    h, i, layers, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    kv = h // cfg["num_attention_heads"] * cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    return layers * (2 * h * h + 2 * h * kv + 3 * h * i), v * h  # matmul weights of the layers; the lm head


def report(args, info, rates, n_params, tokens_per_epoch, flops_per_pass, results) -> None:
    epochs, pairs = args.epochs, args.pairs
    peak = rates["model_shaped"]
    rows, figures = [], []
    base = results[0][1]["seconds"]
    for label, r, rss in results:
        s = r["seconds"]
        ref_passes = epochs if label.startswith("TRL") else r["ref_cache"]["misses"]
        flops = flops_per_pass * (2 * epochs + ref_passes)
        mfu = flops / s / 1e9 / peak
        # the training loop alone: heedful's reference pass runs before it, TRL's inside it
        loop_flops = flops_per_pass * (2 * epochs + (epochs if label.startswith("TRL") else 0))
        loop_mfu = loop_flops / r["loop_seconds"] / 1e9 / peak
        figures.append({"contender": label, "seconds": s, "cpu_seconds": r.get("cpu_seconds"),
                        "pairs_per_s": pairs * epochs / s,
                        "tokens_per_s": tokens_per_epoch * epochs / s, "mfu_vs_model_shaped_matmul": mfu,
                        "loop_seconds": r["loop_seconds"], "loop_mfu": loop_mfu,
                        "peak_rss_bytes": rss, "train_loss": r["train_loss"], "steps": r["steps"],
                        "reference_passes": ref_passes})
        rows.append([label, f"{s:.1f}", f"{r.get('cpu_seconds', float('nan')):.1f}", f"{pairs * epochs / s:.3f}",
                     f"{tokens_per_epoch * epochs / s:.1f}",
                     f"{base / s:.2f}×", f"{100 * mfu:.0f}%", f"{100 * loop_mfu:.0f}%", fmt_bytes(rss),
                     f"{r['train_loss']:.4f}"])
    print(f"\nDPO LoRA r16, SmolLM2-135M float32, {pairs} pairs × ~{args.tokens} tokens × {epochs} epochs "
          f"({tokens_per_epoch} real tokens/epoch), batch 2 pairs, {info['cores']} cores")
    print("float32 matmul (torch): " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items()))
    print(table(["contender", "seconds", "CPU s", "pairs/s", "tokens/s", "vs TRL", "MFU", "loop MFU", "peak RSS",
                 "train loss"], rows))
    print("MFU: FLOPs DPO needs (layers on every real token, LM head on completion tokens; no recomputation, "
          "padding or head on prompts) / model-shaped matmul rate; load, tokenise and save are in the time. "
          "loop MFU: the same for Trainer.train alone (heedful's reference pass runs before it).")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {info['cores']} cores "
          "(figures from a shared machine are not comparable across runs; compare rows of one run)")
    if args.json:
        args.json.write_text(json.dumps({"figures": protocol_figures(figures), "machine": info,
                                         "matmul_gflops": rates, "n_params_body_head": n_params,
                                         "flops_per_pass": flops_per_pass,
                                         "tokens_per_epoch": tokens_per_epoch, "results": figures}, indent=2))


def protocol_figures(results: list[dict]) -> list[dict]:
    """The run_all.py rows: each heedful contender against TRL's DPOTrainer from the same run."""
    from _runner import figure
    trl, out = results[0], []
    for r in results[1:]:
        ratio = r["pairs_per_s"] / trl["pairs_per_s"]
        out.append(figure(f"DPO LoRA pairs/s, {r['contender']}", r["pairs_per_s"], "pairs/s",
                          trl["contender"], trl["pairs_per_s"], goal="≥1.4× TRL over 3 epochs", met=ratio >= 1.4))
        out.append(figure(f"DPO peak RSS, {r['contender']}", r["peak_rss_bytes"] / 2**20, "MiB", trl["contender"],
                          trl["peak_rss_bytes"] / 2**20, better="lower", goal="≤ TRL's",
                          met=r["peak_rss_bytes"] <= trl["peak_rss_bytes"]))
        out.append(figure(f"DPO MFU, {r['contender']}", 100 * r["mfu_vs_model_shaped_matmul"], "%",
                          goal="≥60% of the matmul rate", met=r["mfu_vs_model_shaped_matmul"] >= 0.6))
    return out


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
