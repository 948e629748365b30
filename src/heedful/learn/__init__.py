"""Learn from feedback: train new weights (`heedful.learn.train`).

Training wraps TRL's trainers behind one small config dataclass per method
(SFT, DPO, KTO, reward modelling, GRPO); the heavy libraries are imported only
inside the functions that train, so `import heedful.learn` stays cheap.

The Python API the CLI and the online loop use:

    from heedful.learn.train import train, DPOConfig

    result = train("dpo", "data/pairs", "smollm2", "runs/dpo-1",
                   DPOConfig(max_steps=20, beta=0.1), store=store)
    result.output_dir   # a normal HF model folder (LoRA merged unless merge=False)
    result.run_id       # the run recorded in the store: inputs dataset + model, output model
    result.metrics      # loss curve, steps, runtime, reference-cache hits, hardware decisions

`train(method, dataset, model, output_dir, config=None, *, store=None,
resume=False, callbacks=None, say=print) -> TrainResult`:

- `method`: "sft" | "dpo" | "kto" | "reward" | "grpo" (`METHODS`);
- `dataset`: a `heedful build` folder (or .jsonl/.parquet) in TRL's columns;
- `model`: "smollm2" (the embedded GGUF, via a cached dense copy), a .gguf
  file or an HF model folder (e.g. the output of a previous round);
- `config`: the method's dataclass (`DPOConfig`, ...); defaults when None;
- `resume=True` continues from the newest complete checkpoint in output_dir.

Reference log-probs (DPO, KTO) are cached under `$HEEDFUL_CACHE/ref-logps`,
keyed by base weights and tokenised rows, so a later round on the same base
and pairs skips the reference pass.
"""
