"""Train a tiny BitNet b1.58 decoder with quantization-aware training and export it packed.

The model is exactly transformers' `BitNetForCausalLM` (RMSNorm, attn_sub_norm, ffn_sub_norm, ReLU²
FFN, GQA, RoPE, tied embeddings) whose linear layers inside the decoder are swapped for
transformers' `AutoBitLinear(online_quant=True)`: on every forward pass the latent float weight is
quantized absmean-ternary and the input per-token absmax INT8, both with a straight-through
estimator in the backward pass. Embeddings / LM head (tied) and norms stay float.

Outputs (in --out):
  latent/   plain float BitNetForCausalLM (the QAT latent weights, no quantization) + tokenizer
  packed/   the shipped format: every BitLinear weight packed 4 trits per uint8 along the output dim
            (transformers.integrations.bitnet.pack_weights) with weight_scale = absmean,
            embeddings and norms in bfloat16, quantization_config {bitnet, autobitlinear, offline}
  train_log.json

    python examples/train_tiny_bitnet/train.py --out /tmp/tiny            # full run (GPU if present)
    python examples/train_tiny_bitnet/train.py --preset cpu-smoke --out /tmp/smoke   # seconds on CPU
"""

from __future__ import annotations

import os

# transformers wraps the BitNet quantizers in torch.compile; run them eagerly (must precede torch import).
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import stories  # noqa: E402

BOS, EOS, PAD = "<s>", "</s>", "<pad>"

PRESETS = {
    # The shipped demo model (edgestream/data/tiny-bitnet).
    "default": dict(vocab=1024, hidden=256, layers=6, heads=4, kv_heads=2, intermediate=768, seq_len=256,
                    batch=128, steps=6000, lr=2e-3, warmup=300, train_stories=400_000, eval_stories=500,
                    eval_every=500),
    # Seconds on one CPU core: used by tests/test_demo_model.py.
    "cpu-smoke": dict(vocab=300, hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, seq_len=64,
                      batch=8, steps=30, lr=5e-3, warmup=5, train_stories=200, eval_stories=10,
                      eval_every=15),
}


# ----------------------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, 0)])
    return tok


def save_tokenizer(tok, out: Path) -> None:
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": EOS, "pad_token": PAD,
        "add_bos_token": True, "model_max_length": 1 << 30}, indent=2) + "\n")


def encode_stories(tok, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate `<s> story </s>` for every story; returns (token ids int32, story start offsets)."""
    eos = tok.token_to_id(EOS)
    ids = [e.ids + [eos] for e in tok.encode_batch(texts)]  # post-processor puts <s> first
    starts = np.cumsum([0] + [len(x) for x in ids[:-1]])
    return np.fromiter((t for x in ids for t in x), dtype=np.int32), starts.astype(np.int64)


# ----------------------------------------------------------------------------------------- model
def bitnet_config(p: dict, tok):
    from transformers import BitNetConfig

    return BitNetConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=p["hidden"], intermediate_size=p["intermediate"],
        num_hidden_layers=p["layers"], num_attention_heads=p["heads"], num_key_value_heads=p["kv_heads"],
        hidden_act="relu2", max_position_embeddings=1024, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tok.token_to_id(BOS), eos_token_id=tok.token_to_id(EOS), pad_token_id=tok.token_to_id(PAD),
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attention_bias=False,
    )


def bitlinear_names(model) -> list[str]:
    """Every nn.Linear inside the decoder layers (q/k/v/o, gate/up/down); not the LM head."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith("model.layers.")]


def make_qat(model):
    """Swap the decoder's linear layers for transformers' AutoBitLinear with online (QAT) quantization."""
    from transformers.integrations.bitnet import AutoBitLinear

    for name in bitlinear_names(model):
        lin = model.get_submodule(name)
        q = AutoBitLinear(lin.in_features, lin.out_features, bias=False, online_quant=True,
                          device=lin.weight.device, dtype=lin.weight.dtype)
        q.weight = lin.weight
        model.set_submodule(name, q)
    return model


def ternarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BitNet b1.58 absmean: returns (trits int8, weight_scale float32 [1]) with W ~= trits * weight_scale
    (the 2B-4T's AutoBitLinear convention)."""
    w = w.detach().float().cpu()
    beta = w.abs().mean(dtype=torch.float64).clamp(min=1e-5).float()
    t = (w / beta).round().clamp(-1, 1).to(torch.int8)
    return t, beta.reshape(1).float()


def export_packed(model, tok, out: Path) -> None:
    """Write the HF packed-ternary checkpoint (microsoft/bitnet-b1.58-2B-4T layout)."""
    from safetensors.torch import save_file
    from transformers.integrations.bitnet import pack_weights

    out.mkdir(parents=True, exist_ok=True)
    lin = set(bitlinear_names_any(model))
    tensors = {}
    for name, p in model.state_dict().items():
        mod = name.rsplit(".", 1)[0]
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        if mod in lin:
            if out_f := p.shape[0] % 4:
                raise ValueError(f"{name}: out_features {p.shape[0]} must be a multiple of 4 ({out_f})")
            t, ws = ternarize(p)
            tensors[name] = pack_weights(t.clone()).contiguous()
            tensors[f"{mod}.weight_scale"] = ws
        else:
            tensors[name] = p.detach().cpu().to(torch.bfloat16).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads(model.config.to_json_string(use_diff=True))
    cfg["architectures"] = ["BitNetForCausalLM"]
    cfg["dtype"] = "float32"
    cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                  "quantization_mode": "offline"}
    cfg.pop("transformers_version", None)
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    save_tokenizer(tok, out)


def bitlinear_names_any(model) -> list[str]:
    from transformers.integrations.bitnet import AutoBitLinear, BitLinear

    return [n for n, m in model.named_modules()
            if n.startswith("model.layers.") and isinstance(m, nn.Linear | AutoBitLinear | BitLinear)]


# ----------------------------------------------------------------------------------------- training
def batches(ids: np.ndarray, starts: np.ndarray, seq_len: int, batch: int, rng: np.random.Generator):
    """Rows start at a story's <s> (as generation does) and run on into the next stories."""
    ok = starts[starts + seq_len + 1 <= len(ids)]
    while True:
        s = rng.choice(ok, size=batch)
        yield torch.from_numpy(np.stack([ids[i:i + seq_len + 1] for i in s]).astype(np.int64))


@torch.no_grad()
def evaluate_loss(model, ids: np.ndarray, starts: np.ndarray, device, max_len: int) -> float:
    """Mean next-token NLL over whole held-out stories, each from position 0 (fresh context)."""
    model.eval()
    tot, n = 0.0, 0
    ends = list(starts[1:]) + [len(ids)]
    for a, b in zip(starts, ends, strict=True):
        x = torch.from_numpy(ids[a:min(b, a + max_len)].astype(np.int64))[None].to(device)
        logits = model(x).logits.float()
        tot += F.cross_entropy(logits[0, :-1], x[0, 1:], reduction="sum").item()
        n += x.shape[1] - 1
    model.train()
    return tot / n


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=0, help="stop training after this many seconds")
    args = ap.parse_args(argv)
    p = dict(PRESETS[args.preset])
    if args.steps:
        p["steps"] = args.steps
    torch.manual_seed(args.seed)
    t0 = time.time()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    train_texts = stories.stories(p["train_stories"], seed=1 + args.seed)
    eval_texts = stories.stories(p["eval_stories"], seed=stories.HELDOUT_SEED)
    tok = train_tokenizer(train_texts[:20000], p["vocab"])
    ids, starts = encode_stories(tok, train_texts)
    eids, estarts = encode_stories(tok, eval_texts)
    print(f"corpus: {len(train_texts)} stories, {len(ids)} tokens, vocab {tok.get_vocab_size()} "
          f"({time.time() - t0:.1f}s)", flush=True)

    from transformers import BitNetForCausalLM

    cfg = bitnet_config(p, tok)
    model = make_qat(BitNetForCausalLM(cfg)).to(args.device)
    n_params = sum(x.numel() for x in model.parameters())
    n_tern = sum(model.get_submodule(n).weight.numel() for n in bitlinear_names_any(model))
    print(f"model: {n_params} parameters, {n_tern} ternary", flush=True)

    decay = [x for n, x in model.named_parameters() if x.ndim == 2]
    no_decay = [x for n, x in model.named_parameters() if x.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=p["lr"], betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step: int) -> float:
        """Linear warm-up, then cosine to 5%; with --time-limit the decay follows elapsed time too."""
        if step < p["warmup"]:
            return p["lr"] * (step + 1) / p["warmup"]
        frac = (step - p["warmup"]) / max(1, p["steps"] - p["warmup"])
        if args.time_limit:
            frac = max(frac, (time.time() - t_train) / args.time_limit)
        return p["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    use_amp = args.device.startswith("cuda")
    gen = batches(ids, starts, p["seq_len"], p["batch"], np.random.default_rng(args.seed))
    log = {"preset": args.preset, "params": n_params, "ternary_params": n_tern, "train_tokens": int(len(ids)),
           "device": args.device, "losses": [], "eval": []}
    t_train = time.time()
    model.train()
    step = 0
    for step in range(p["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = next(gen).to(args.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            logits = model(x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log["losses"].append(round(loss.item(), 5))
        last = step == p["steps"] - 1 or (args.time_limit and time.time() - t_train > args.time_limit)
        if (step + 1) % p["eval_every"] == 0 or last:
            ev = evaluate_loss(model, eids, estarts, args.device, p["seq_len"])
            log["eval"].append({"step": step + 1, "loss": ev, "ppl": math.exp(ev), "time": time.time() - t_train})
            print(f"step {step + 1:6d}  train {loss.item():.4f}  heldout {ev:.4f} (ppl {math.exp(ev):.3f})  "
                  f"{time.time() - t_train:.0f}s", flush=True)
        if last:
            break
    log["steps"] = step + 1
    print(f"{step + 1} steps, {(step + 1) * p['batch'] * p['seq_len'] / 1e6:.1f}M tokens seen", flush=True)
    log["train_seconds"] = time.time() - t_train

    model = model.float().cpu().eval()
    # latent (float, unquantized) checkpoint: plain BitNetForCausalLM with the same weights
    plain = BitNetForCausalLM(cfg)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.save_pretrained(out / "latent")
    save_tokenizer(tok, out / "latent")
    export_packed(model, tok, out / "packed")
    (out / "train_log.json").write_text(json.dumps(log) + "\n")
    print(f"done in {time.time() - t0:.0f}s -> {out}", flush=True)
    return log


if __name__ == "__main__":
    main()
