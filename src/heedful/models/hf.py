"""The transformers backend: any local HF folder or GGUF file, batched on CPU or GPU.

A GGUF file takes ~20 s to dequantise; the first load saves a dense
safetensors copy under `$HEEDFUL_CACHE/dense/` (default ~/.cache/heedful) and
later loads read that instead (1.2–4 s measured in-process on a busy
machine; the first load, dequantising the GGUF, took 29 s). Two traps from the notes are handled
here: a GGUF-loaded model is marked quantized although its weights are dense
(`remove_quantization_config`), and bf16 is emulated on these CPUs (float32).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from heedful.errors import InvalidInput, NotFound
from heedful.models.base import Completion, GenParams, PromptLike
from heedful.schema import digest


def cache_root() -> Path:
    return Path(os.environ.get("HEEDFUL_CACHE") or Path.home() / ".cache" / "heedful")


def file_digest(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def folder_revision(folder: Path) -> str:
    """A revision for a HF folder: its config plus the names and sizes of its weight files."""
    parts = {"config": (folder / "config.json").read_text() if (folder / "config.json").exists() else ""}
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        parts[f.name] = f.stat().st_size
    return digest(parts, 16)


def dense_copy(gguf: Path) -> tuple[Path, str]:
    """A dense HF folder for a GGUF file (made once, then reused) and the file's revision.

    The revision (a sha256 of the GGUF) is computed once and kept next to the
    copy, so a later load reads two small files and the safetensors, nothing else.
    """
    st = gguf.stat()
    # same folder name as heedful.learn.train.loading.dense_copy, so the two share one copy
    target = cache_root() / "dense" / f"{gguf.stem}-{st.st_size}-{int(st.st_mtime)}"
    if not (target / "config.json").exists():
        _dequantise(gguf, target)
    rev_file = target / "heedful-revision.txt"
    try:
        rev = rev_file.read_text().strip()
    except OSError:
        rev = f"gguf-sha256:{file_digest(gguf)}"
        tmp = rev_file.with_name(f".{rev_file.name}.{os.getpid()}")
        tmp.write_text(rev)
        os.replace(tmp, rev_file)
    return target, rev


def _dequantise(gguf: Path, target: Path) -> None:
    """Load the GGUF once (~20 s), drop the 'quantized' mark (NOTES trap 1), save safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # dense float32 really
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if not (target / "config.json").exists():  # another process may have finished first
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)  # atomic: a half-written copy is never picked up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class HFModel:
    """A causal LM from transformers behind the Model protocol.

    `batch_size` is the most sequences that decode together (n samples of one
    prompt share its prefill); fewer run when their KV caches and logits would
    not fit in `batch_memory` bytes (`rows_that_fit`). On 2 cores SmolLM2-135M
    decoded 142 tok/s at 32 rows, 199 at 64 and 233 at 128 (bench/generate.py),
    so the cap is 128. Text prompts are sent as a user turn through the chat
    template when the tokenizer has one, unless `text_as_chat=False`.
    `share_prefix` (default on) computes what the sequences of one call share
    once: the prompts' common prefix, and in `logprobs` each prompt once for
    all its completions (decode.score_shared). Off, every sequence is computed
    whole, as an independent request would be (the per-item peer in bench/judge.py).
    """

    def __init__(self, model, tokenizer, *, name: str, revision: str | None = None,
                 batch_size: int = 128, batch_memory: int = 2 << 30, text_as_chat: bool = True,
                 share_prefix: bool = True):
        from heedful.models import onednn
        self.model = model.eval()
        onednn.route(self.model)  # float32 products on the faster CPU GEMM (models/onednn.py)
        self.tokenizer = tokenizer
        self.name, self.revision = name, revision
        self.batch_size, self.batch_memory = max(1, int(batch_size)), batch_memory
        self.share_prefix = share_prefix
        self.text_as_chat = text_as_chat and bool(getattr(tokenizer, "chat_template", None))
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {e for e in eos + [tokenizer.eos_token_id] if e is not None}

    @classmethod
    def load(cls, path: str | os.PathLike, *, name: str | None = None, **kw) -> HFModel:
        """Load a HF folder or a .gguf file (via its cached dense copy)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        path = Path(path).expanduser()
        if not path.exists():
            raise NotFound(f"no model at {path}")
        if path.suffix == ".gguf":
            folder, rev = dense_copy(path)
        elif (path / "config.json").exists():
            folder, rev = path, folder_revision(path)
        else:
            raise InvalidInput("not a transformers model folder (no config.json) or .gguf file", where=str(path))
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(folder)
        return cls(model, tok, name=name or path.stem, revision=rev, **kw)

    # --- prompts --------------------------------------------------------------------------

    def render(self, prompt: PromptLike) -> list[int]:
        """Token ids of a prompt, through the chat template for chats."""
        if isinstance(prompt, str) and not self.text_as_chat:
            return self.tokenizer.encode(prompt)
        chat = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)

    # --- generation -----------------------------------------------------------------------

    def generate(self, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
        import torch
        from heedful.models.decode import Row
        encoded = [self.render(p) for p in prompts]
        out: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        longest = max(map(len, encoded), default=0) + params.max_new_tokens
        per_batch = max(1, self.rows_that_fit(longest) // params.n)
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths pad less
        base = params.seed if params.seed is not None else secrets.randbits(62)
        with torch.inference_mode():
            for start in range(0, len(order), per_batch):
                chunk = order[start:start + per_batch]
                rows = [[Row((i, j), self._generator(params, base, encoded[i], j)) for j in range(params.n)]
                        for i in chunk]
                self._decode(chunk, encoded, rows, params, out)
        return out  # type: ignore[return-value]

    def rows_that_fit(self, tokens: int) -> int:
        """Sequences of `tokens` tokens whose KV cache and logits fit in `batch_memory`, at most `batch_size`."""
        c = self.model.config
        heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        per_row = 2 * c.num_hidden_layers * heads * head_dim * self.model.dtype.itemsize * tokens
        per_row += 3 * c.vocab_size * 4  # a step's logits, their float copy and log-softmax
        return max(1, min(self.batch_size, self.batch_memory // per_row))

    def _generator(self, params: GenParams, base: int, ids: list[int], j: int):
        if params.temperature <= 0:
            return None
        import torch
        seed = int(digest({"seed": base, "prompt": ids, "sample": j}, 15), 16)
        return torch.Generator().manual_seed(seed)

    def _decode(self, chunk, encoded, rows, params: GenParams, out) -> None:
        from heedful.models.decode import decode_batch
        t0 = time.perf_counter()
        decode_batch(self.model, self.tokenizer, [encoded[i] for i in chunk], rows,
                     temperature=params.temperature, top_p=params.top_p, max_new_tokens=params.max_new_tokens,
                     stop=tuple(params.stop), eos_ids=self.eos_ids, share_prefix=self.share_prefix)
        for rs in rows:
            for r in rs:
                i, j = r.key
                out[i][j] = self._completion(r, len(encoded[i]), params, r.done_at - t0)

    def _completion(self, row, prompt_tokens: int, params: GenParams, latency: float) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        finish = row.finish_reason
        cuts = [text.find(s) for s in params.stop if s in text]
        if cuts:
            text, finish = text[:min(cuts)], "stop"
        return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(row.tokens),
                          finish_reason=finish, latency_s=latency, logprob=row.logprob,
                          meta={"sample_index": row.key[1], "seeded": params.seed is not None})

    # --- scoring --------------------------------------------------------------------------

    def logprobs(self, prompts: Sequence[PromptLike], completions: Sequence[str]) -> list[float]:
        """Sum of log p(completion tokens | rendered prompt), batched by similar length."""
        if len(prompts) != len(completions):
            raise InvalidInput(f"{len(prompts)} prompts but {len(completions)} completions")
        return self.score_ids([(self.render(p), self.tokenizer.encode(c, add_special_tokens=False))
                               for p, c in zip(prompts, completions)])

    def score_ids(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[float]:
        """`logprobs` on token ids: (prompt ids, completion ids) pairs."""
        import torch
        from heedful.models.decode import score_batch, score_shared
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        scores = [0.0] * len(pairs)
        step = self.score_rows(max((len(c) for _, c in pairs), default=0))
        with torch.inference_mode():
            for idx in self._score_chunks(pairs, step):
                part = [pairs[i] for i in idx]
                got = (score_shared(self.model, part, pad, max_rows=step) if self.share_prefix
                       else score_batch(self.model, part, pad))
                for i, v in zip(idx, got):
                    scores[i] = v
        return scores

    def score_rows(self, completion_tokens: int) -> int:
        """Rows a scoring pass holds: `batch_size // 4`, fewer when their K × vocab logits would pass `batch_memory`."""
        per_row = 2 * (completion_tokens + 1) * self.model.config.vocab_size * 4  # logits and their float copy
        return max(1, min(self.batch_size // 4, self.batch_memory // per_row))

    def _score_chunks(self, pairs, step: int) -> list[list[int]]:
        """Indices by similar length (less padding), `step` rows a pass.

        With `share_prefix` a row is a distinct prompt, so the completions of one
        prompt sort next to each other and always share a pass.
        """
        if not self.share_prefix:
            order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
            return [order[s:s + step] for s in range(0, len(order), step)]
        order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][0]), pairs[i][0]))
        chunks: list[list[int]] = []
        seen: set[tuple] = set()
        for i in order:
            key = tuple(pairs[i][0])
            if not chunks or (key not in seen and len(seen) == step):
                chunks.append([])
                seen = set()
            seen.add(key)
            chunks[-1].append(i)
        return chunks
