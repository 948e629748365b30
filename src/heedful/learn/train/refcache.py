"""Reference log-probabilities computed once per (model, dataset) and kept on disk.

DPO and KTO compare the policy with a frozen reference on every example. With
`precompute_ref_log_probs` TRL 1.16 runs the reference once before training
and stores the result in one arrow file beside the dataset's cache, reading it
back when it exists. For an in-memory dataset (ours: the build folder is
loaded into memory so that TRL never writes into it) that file lives in a
per-process temporary folder, so the next run, method or loop round computes
it again, and under several processes rank 1 looks for rank 0's temporary
file and fails. `RefLogpCacheMixin` points that one file at
`$HEEDFUL_CACHE/ref-logps/ref-<key>.arrow`, where the key covers:

- the reference weights (a hash of the base model before LoRA is attached:
  the LoRA initialisation does not change the reference);
- the tokenised rows TRL trains on (token ids and labels, in order), which
  covers the tokenizer and chat template;
- max_length / truncation mode (TRL 1.16 truncates in the collator);
- the precompute batch size and precision, which change padding and rounding.

A hit adds the cached `ref_*` columns to the dataset without a forward pass.
The model is hashed once per run (TRL's own hash in its __init__, used only
for the file name replaced here, is handed the same fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from unittest import mock

ROW_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids", "completion_ids", "KL_completion_ids", "label")


def model_fingerprint(model) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes, bytes), shortened.

    The same content as TRL's `hash_module`, hashed from the tensors' memory
    in place: `hash_module` copies every tensor to bytes first (that copy
    costs more than the hash), and hashes a tied weight twice.
    """
    import torch
    h = hashlib.sha256()
    seen: set[tuple[int, tuple]] = set()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        key = (t.data_ptr(), tuple(t.shape))
        if key in seen:  # a tied weight: its name and shape are hashed, its bytes once
            continue
        seen.add(key)
        h.update(memoryview(t.contiguous().view(torch.uint8).numpy()))
    return h.hexdigest()[:32]


def rows_fingerprint(dataset) -> str:
    """Hash of the tokenised columns a reference forward reads, in row order."""
    cols = [c for c in ROW_COLUMNS if c in dataset.column_names]
    h = hashlib.sha256(json.dumps(cols).encode())
    for batch in dataset.select_columns(cols).iter(batch_size=512):
        h.update(json.dumps(batch, separators=(",", ":")).encode())
    return h.hexdigest()[:32]


class RefLogpCacheMixin:
    """Put before a TRL trainer class: `class T(RefLogpCacheMixin, DPOTrainer)`.

    Set `heedful_ref_cache` (a folder) and `heedful_model_fp` before TRL's
    __init__ runs (it precomputes inside __init__); `ref_cache_hits` and
    `ref_cache_misses` count what happened, `ref_cache_files` lists the files used.

    Only the file name changes (rank 0 computes the key and broadcasts it);
    TRL does the rest: same batching, same numerics, its own atomic write.
    """

    heedful_ref_cache: Path | None = None
    heedful_model_fp: str | None = None

    def __init__(self, *args, **kwargs):
        # TRL hashes the whole model in __init__ for its own cache file name, which the file
        # name below replaces: hand it the fingerprint already taken instead of hashing again
        fp = self.heedful_model_fp
        trl_module = next((sys.modules[c.__module__] for c in type(self).__mro__
                           if hasattr(sys.modules.get(c.__module__), "hash_module")), None)
        if fp is None or trl_module is None:
            super().__init__(*args, **kwargs)
            return
        with mock.patch.object(trl_module, "hash_module", lambda module: fp):
            super().__init__(*args, **kwargs)

    def _precompute_ref_logps(self, dataset, name, batch_size):
        from accelerate.utils import broadcast_object_list
        self.ref_cache_hits = getattr(self, "ref_cache_hits", 0)
        self.ref_cache_misses = getattr(self, "ref_cache_misses", 0)
        self.ref_cache_files = getattr(self, "ref_cache_files", [])
        if self.heedful_ref_cache is None or self.heedful_model_fp is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        key = [self._ref_key(dataset, batch_size) if self.accelerator.is_main_process else None]
        broadcast_object_list(key, from_process=0)
        path = Path(self.heedful_ref_cache) / f"{key[0]}.arrow"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ref_cache_files.append(str(path))
        hit = path.is_file()
        self.accelerator.wait_for_everyone()  # every rank has looked before rank 0 may write it
        self.ref_cache_hits += hit
        self.ref_cache_misses += not hit
        dataset._get_cache_file_path = lambda fingerprint: str(path)
        try:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        finally:
            del dataset._get_cache_file_path

    def _ref_key(self, dataset, batch_size: int) -> str:
        extra = {"cls": type(self).__name__, "batch": batch_size,
                 "bf16": bool(self.args.bf16), "ld_alpha": getattr(self, "ld_alpha", None),
                 "kl": getattr(self, "calculate_KL", None),
                 "head": getattr(self, "heedful_head", None),
                 # TRL 1.16 truncates in the collator, so the rows above do not show max_length
                 **{k: getattr(self.args, k, None) for k in ("max_length", "truncation_mode", "padding_free")}}
        h = hashlib.sha256(json.dumps([self.heedful_model_fp, rows_fingerprint(dataset), extra],
                                      sort_keys=True, default=str).encode())
        return f"ref-{h.hexdigest()[:24]}"
