"""Regenerate tests/data/spm_bitnet.gguf and tests/data/spm_bitnet.tokenizer.model, the fixture of
tests/test_gguf_tokenizer.py: a GGUF written by llama.cpp's own convert_hf_to_gguf.py from a tiny Hugging
Face BitNet checkpoint that carries a sentencepiece tokenizer.model, as microsoft's and 1bitLLM's BitNet
repositories do (the converter's BitnetModel always takes the sentencepiece path).

The committed files were written by the converter vendored in llama-cpp-python 0.3.36 (gguf-py 0.19.0),
with sentencepiece 0.2.3, transformers 5.24 and torch 2.13 (CPU):

    pip download llama-cpp-python==0.3.36 --no-deps --no-binary :all:
    tar xzf llama_cpp_python-0.3.36.tar.gz
    python tests/data/make_spm_bitnet_gguf.py llama_cpp_python-0.3.36/vendor/llama.cpp

Steps, each by the tool that writes such files for real:
1. sentencepiece trains a BPE model the way Llama's tokenizer.model is set up (byte_fallback, identity
   normalization, no whitespace folding, dummy prefix, split digits, <unk>/<s>/</s> at 0/1/2, no pad).
2. transformers writes the checkpoint (BitNetConfig/BitNetForCausalLM.save_pretrained, tied embedding
   as llama.cpp's bitnet graph requires; the sub-norms renamed to 1bitLLM's names, the ones the
   converter maps) and the tokenizer files (LlamaTokenizer from the
   tokenizer.model, save_pretrained: tokenizer.json, tokenizer_config.json with a chat template).
3. convert_hf_to_gguf.py --outtype f16 writes the GGUF (tokenizer.ggml.model = "llama").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GGUF_OUT = HERE / "spm_bitnet.gguf"
SPM_OUT = HERE / "spm_bitnet.tokenizer.model"
VOCAB = 512

# Llama-2's chat template (tokenizer_config.json of meta-llama/Llama-2-7b-chat-hf), shortened to the
# system/user/assistant turns
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

CORPUS = """\
Once upon a time a small board learned to count in threes: minus one, zero and plus one.
The compiler turns a model into a table lookup program and a packed weight image.
Every executor runs the same program on the same packed bytes, and the integers agree bit for bit.
Ternary weights need about 1.58 bits each; five trits fit in one byte, which is 1.6 bits per weight.
The accelerator streams prefill and decode through the fabric at 250 MHz.
    Indented lines keep their spaces, and tabs\tstay tabs.
Numbers like 12345, 3.14159 and 2048 are split into digits.
def forward(self, x):
    return self.norm(x) + self.mlp(x)
The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!
Questions? Answers; quotes "like this" and 'like that', (parentheses) and [brackets].
Zebras, zebras everywhere: a zebra, two zebras, many zebra herds.
Naïve café owners in Zürich serve crème brûlée and smørrebrød.
Γειά σου κόσμε. Привет, мир. Bonjour le monde. Hola, mundo.
"""


def _train_spm(work: Path) -> Path:
    import sentencepiece as spm

    text = work / "corpus.txt"
    text.write_text(CORPUS * 20, encoding="utf-8")
    prefix = work / "tokenizer"
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), model_type="bpe", vocab_size=VOCAB,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True,
        character_coverage=0.99, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1,
        max_sentencepiece_length=16, minloglevel=2,
    )
    return prefix.with_suffix(".model")


def _checkpoint(work: Path, spm_model: Path) -> Path:
    import torch
    from transformers import BitNetConfig, BitNetForCausalLM, LlamaTokenizer

    d = work / "hf"
    torch.manual_seed(0)
    cfg = BitNetConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=True,
    )
    BitNetForCausalLM(cfg).save_pretrained(d)
    _as_1bitllm(d)
    shutil.copy(spm_model, d / "tokenizer.model")
    tok = LlamaTokenizer.from_pretrained(d)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(d)
    return d


def _as_1bitllm(d: Path) -> None:
    """The converter's BitnetModel maps the tensor names of 1bitLLM's bitnet_b1_58 checkpoints
    (architecture "BitnetForCausalLM", sub-norms `self_attn.inner_attn_ln` and `mlp.ffn_layernorm`),
    not transformers' `attn_sub_norm`/`ffn_sub_norm`: rename the two, as those repositories name them."""
    import json

    from safetensors.numpy import load_file, save_file

    st = d / "model.safetensors"
    t = load_file(str(st))
    ren = {".self_attn.attn_sub_norm.": ".self_attn.inner_attn_ln.", ".mlp.ffn_sub_norm.": ".mlp.ffn_layernorm."}
    out = {}
    for k, v in t.items():
        for a, b in ren.items():
            k = k.replace(a, b)
        out[k] = v
    save_file(out, str(st), metadata={"format": "pt"})
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["BitnetForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg, indent=2))


def main(llama_cpp: str) -> None:
    converter = Path(llama_cpp) / "convert_hf_to_gguf.py"
    if not converter.is_file():
        sys.exit(f"{converter}: not found (pass the llama.cpp source tree, e.g. the one the "
                 f"llama-cpp-python sdist vendors)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spm_model = _train_spm(work)
        d = _checkpoint(work, spm_model)
        out = work / "out.gguf"
        subprocess.run([sys.executable, str(converter), str(d), "--outfile", str(out), "--outtype", "f16"],
                       check=True)
        shutil.copy(out, GGUF_OUT)
        shutil.copy(spm_model, SPM_OUT)
    print(f"wrote {GGUF_OUT} ({GGUF_OUT.stat().st_size} bytes) and {SPM_OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
