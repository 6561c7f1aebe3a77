"""Held-out perplexity of the tiny BitNet in its three forms, plus sample generations.

  float     the QAT latent weights used as plain float weights (no quantization at all); needs the
            latent/ checkpoint that train.py writes next to the packed one (not shipped: 20 MB)
  ternary   the shipped packed checkpoint in torch: transformers' own AutoBitLinear (ternary weights,
            per-token INT8 activations), float32 everywhere else
  compiled  the shipped checkpoint compiled by edgestream and run on the CPU executor
            (INT8 embeddings / LM head / KV cache, fixed-point norms: docs/numerics.md)

Held-out text: stories from stories.py with HELDOUT_SEED, which training never draws from. Each
story is scored from position 0 with a fresh cache ("<s> story </s>"), every token after <s> counted.

    python examples/train_tiny_bitnet/evaluate.py [--model edgestream/data/tiny-bitnet]
        [--latent /tmp/tiny/latent] [--stories 200] [--compiled-stories 20] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
import stories  # noqa: E402

DEFAULT_MODEL = REPO / "edgestream" / "data" / "tiny-bitnet"
# The corpus opens every story with an opener and an introduction; prompts in that shape.
PROMPTS = ["Once upon a time", "Long ago, there was a brave dog named", "One day, there was a shy girl named Zoe."]


def load_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))


def heldout_ids(tok, n: int, max_len: int = 256) -> list[np.ndarray]:
    """`<s> story </s>` token ids of the first n held-out stories (truncated to max_len)."""
    eos = tok.token_to_id("</s>")
    return [np.array((e.ids + [eos])[:max_len], dtype=np.int64)
            for e in tok.encode_batch(stories.stories(n, seed=stories.HELDOUT_SEED))]


def load_ternary_torch(model_dir: Path, via_from_pretrained: bool | None = None):
    """The packed checkpoint as transformers' BitNetForCausalLM with the linear class its config names
    (AutoBitLinear for the shipped 2B-4T convention), float32.

    `from_pretrained` needs the `accelerate` package for any BitNet-quantized checkpoint (the bitnet
    quantizer's validate_environment raises ImportError without it). Without accelerate this builds
    the very same model by hand: transformers' replace_with_bitnet_linear, then the checkpoint's tensors.
    """
    from transformers import BitNetConfig, BitNetForCausalLM

    if via_from_pretrained is None:
        import importlib.util

        via_from_pretrained = importlib.util.find_spec("accelerate") is not None
    if via_from_pretrained:
        m = BitNetForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        # the bitnet quantizer keeps unconverted modules in the checkpoint's bf16 (and refuses
        # .float()); AutoBitLinear's float32 weights need float32 inputs: upcast exactly
        return torch.nn.Module.float(m).eval()
    from safetensors.torch import load_file
    from transformers.integrations.bitnet import replace_with_bitnet_linear
    from transformers.utils.quantization_config import BitNetQuantConfig

    cfg = BitNetConfig.from_pretrained(str(model_dir))
    qcfg = BitNetQuantConfig(**{k: v for k, v in cfg.quantization_config.items() if k != "quant_method"})
    model = BitNetForCausalLM(cfg)
    model = replace_with_bitnet_linear(model, modules_to_not_convert=["lm_head"], quantization_config=qcfg)
    sd = load_file(str(Path(model_dir) / "model.safetensors"))
    sd = {k: (v if v.dtype == torch.uint8 else v.float()) for k, v in sd.items()}
    if qcfg.linear_class == "autobitlinear":  # AutoBitLinear holds unpacked trits (BitNetDeserialize)
        from transformers.integrations.bitnet import unpack_weights

        sd = {k: (unpack_weights(v, dtype=torch.float32) if v.dtype == torch.uint8 else v) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError(f"{model_dir}: missing {missing}, unexpected {unexpected}")
    for m in model.modules():  # BitLinear computes in self.dtype, which was None when made on meta
        if hasattr(m, "weight_scale") and getattr(m, "dtype", 0) is None:
            m.dtype = torch.float32
    model.tie_weights()
    return model.eval()


def ternary_reference(model_dir: Path):
    """An independent torch ternary model of the packed checkpoint, for cross-checks and speed.

    Unpacks the trits once with this module's own decoder (not transformers') and runs every linear
    as transformers' AutoBitLinear in offline mode: `F.linear(ActQuant(x), trits) * beta`, with
    `beta` = weight_scale for autobitlinear configs (1 / weight_scale for bitlinear), so it never
    re-unpacks weights the way BitLinear does on each call.
    """
    from safetensors.torch import load_file
    from transformers import BitNetConfig, BitNetForCausalLM
    from transformers.integrations.bitnet import AutoBitLinear

    cfg = BitNetConfig.from_pretrained(str(model_dir))
    linear_class = (cfg.quantization_config or {}).get("linear_class", "bitlinear")
    cfg.quantization_config = None
    sd = load_file(str(Path(model_dir) / "model.safetensors"))
    model = BitNetForCausalLM(cfg).eval()
    done = {"lm_head.weight"}
    for name, mod in list(model.named_modules()):
        if not (name.startswith("model.layers.") and isinstance(mod, torch.nn.Linear)):
            continue
        packed = sd.pop(f"{name}.weight")
        ws = sd.pop(f"{name}.weight_scale")
        beta = ws.float() if linear_class == "autobitlinear" else (1.0 / ws.double()).float()
        trits = unpack_trits(packed, mod.out_features)
        q = AutoBitLinear(mod.in_features, mod.out_features, bias=False, online_quant=False)
        q.weight = torch.nn.Parameter(trits.float(), requires_grad=False)
        q.weight_scale = beta.reshape(1)
        model.set_submodule(name, q)
        done |= {f"{name}.weight", f"{name}.weight_scale"}
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    if set(missing) - done or unexpected:
        raise ValueError(f"{model_dir}: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval()


def unpack_trits(packed: torch.Tensor, rows: int) -> torch.Tensor:
    """HF BitNet layout: stored row r, bit pair i (bits 2i+1:2i) holds output row i * R + r, code t + 1."""
    r = packed.shape[0]
    codes = torch.stack([(packed >> (2 * i)) & 3 for i in range(4)])  # [4, R, in]
    return (codes.reshape(4 * r, -1)[:rows].to(torch.int8) - 1)


def load_float(latent_dir: Path):
    from transformers import BitNetForCausalLM

    return BitNetForCausalLM.from_pretrained(str(latent_dir), dtype=torch.float32).eval()


@torch.no_grad()
def torch_logits(model, ids: np.ndarray) -> np.ndarray:
    return model(torch.from_numpy(ids)[None]).logits[0].float().numpy()


def nll(logits: np.ndarray, ids: np.ndarray) -> tuple[float, int]:
    """Sum of next-token negative log-likelihoods (float64) and the number of predicted tokens."""
    lg = logits[:-1].astype(np.float64)
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    return float((lse - lg[np.arange(len(ids) - 1), ids[1:]]).sum()), len(ids) - 1


def story_nlls(logits_fn, seqs: list[np.ndarray]) -> list[tuple[float, int]]:
    return [nll(logits_fn(ids), ids) for ids in seqs]


def ppl_of(nlls: list[tuple[float, int]]) -> float:
    return math.exp(sum(s for s, _ in nlls) / sum(k for _, k in nlls))


def perplexity(logits_fn, seqs: list[np.ndarray]) -> float:
    return ppl_of(story_nlls(logits_fn, seqs))


def compile_shipped(model_dir: Path, out_path: Path):
    """Compile with edgestream and load on the CPU executor (the project API)."""
    import edgestream
    from edgestream.compiler import compile_model

    compile_model(str(model_dir), str(out_path))
    return edgestream.load(str(out_path), device="cpu")


def compiled_logits_fn(sess):
    return lambda ids: np.asarray(sess.forward(ids.tolist()), dtype=np.float32)


@torch.no_grad()
def torch_generate(model, tok, prompt: str, n: int = 60) -> str:
    """Greedy continuation with transformers (reference for the demo)."""
    ids = torch.tensor([tok.encode(prompt).ids])
    out = model.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=tok.token_to_id("</s>"),
                         pad_token_id=tok.token_to_id("<pad>"))
    return tok.decode(out[0].tolist(), skip_special_tokens=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--latent", type=Path, help="latent/ folder written by train.py (float column)")
    ap.add_argument("--stories", type=int, default=200)
    ap.add_argument("--compiled-stories", type=int, default=20, help="the CPU executor is slower")
    ap.add_argument("--no-compiled", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    tok = load_tokenizer(args.model)
    seqs = heldout_ids(tok, args.stories)
    res: dict = {"heldout_stories": args.stories, "heldout_tokens": int(sum(len(s) - 1 for s in seqs))}
    k = args.compiled_stories
    small = seqs[:k]
    tern = load_ternary_torch(args.model)
    nl = story_nlls(lambda x: torch_logits(tern, x), seqs)
    res["ternary_torch"], res["ternary_torch_small"] = ppl_of(nl), ppl_of(nl[:k])
    if args.latent:
        flt = load_float(args.latent)
        nl = story_nlls(lambda x: torch_logits(flt, x), seqs)
        res["float"], res["float_small"] = ppl_of(nl), ppl_of(nl[:k])
    if not args.no_compiled:
        try:
            with tempfile.TemporaryDirectory() as td:
                t = time.time()
                sess = compile_shipped(args.model, Path(td) / "tiny.esa")
                res["compiled_cpu_small"] = perplexity(compiled_logits_fn(sess), small)
                res["compiled_seconds"] = time.time() - t
        except (ImportError, AttributeError) as e:  # the compiler/runtime API is not there (yet)
            res["compiled_cpu_small"] = None
            res["compiled_error"] = f"{type(e).__name__}: {e}"
    res["samples"] = {p: torch_generate(tern, tok, p) for p in PROMPTS}

    def f(x):
        return "n/a" if x is None else f"{x:.4f}"

    print(f"held-out: {args.stories} stories, {res['heldout_tokens']} tokens "
          f"(small slice: first {args.compiled_stories} stories)")
    print("| model | ppl (all) | ppl (small slice) |\n|---|---|---|")
    print(f"| float (latent weights) | {f(res.get('float'))} | {f(res.get('float_small'))} |")
    print(f"| ternary, torch | {f(res['ternary_torch'])} | {f(res['ternary_torch_small'])} |")
    print(f"| compiled, edgestream CPU | - | {f(res.get('compiled_cpu_small'))} |")
    if "compiled_error" in res:
        print(f"compiled column not computed: {res['compiled_error']}")
    for p, s in res["samples"].items():
        print(f"\n[{p}] -> {s}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
