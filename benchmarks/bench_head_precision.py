"""What an INT4 LM head costs in accuracy against the INT8 head (issue 13: "the LM head streamed at its
real size (dense INT8 or INT4, chosen by the DSE with its accuracy measured against the INT8 head)").

The bundled demo model (edgestream/data/tiny-bitnet, tied embeddings) compiled twice for the CPU
executor, the same integers as every device (docs/numerics.md):
  int8  as shipped: the tied table quantized once, INT8 per row, used by EMBED and the LM head;
  int4  the head untied: its own copy of the float table quantized INT4 per row (lm_head_bits = 4,
        per-row absmax scale, compiler/passes.quantize_int), the embedding still INT8.
Teacher-forced over held-out stories (examples/train_tiny_bitnet: stories training never drew from):
perplexity of each, and per position the INT4 logits against the INT8 ones (cosine, top-1 agreement),
plus both against transformers' own BitNet forward of the same checkpoint (float32 head).

    python benchmarks/bench_head_precision.py [--stories 20] [--json]

A tiny model (vocab 1024, hidden 256) is a weak proxy for a 32k-128k vocabulary: the table says what
it measured, not what a large model loses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples" / "train_tiny_bitnet"))


def compile_variant(src: Path, out: Path, head_bits: int) -> Path:
    """compile_model's CPU path with the LM head at `head_bits` (untied from the embedding below 8)."""
    from edgestream.artifact import write_artifact
    from edgestream.compiler import load_model, passes
    from edgestream.ir import Tensor

    graph, tok, settings = load_model(src, None)
    if head_bits != 8:
        head = next(n for n in graph.nodes if n.name == "lm_head")
        emb = graph.tensors[head.attrs["weight"]]
        graph.tensors["lm_head.weight"] = Tensor("lm_head.weight", emb.encoding, np.array(emb.data, np.float32))
        graph.nodes = [replace(n, attrs={"weight": "lm_head.weight"}) if n is head else n for n in graph.nodes]
        graph.config = replace(graph.config, tie_word_embeddings=False)
    graph = passes.quantize_weights(graph, "auto", lm_head_bits=head_bits)
    for p in passes.PIPELINE[1:]:
        graph = p(graph)
    extra = {"target": "cpu", "source": str(src), "tokenizer": settings.to_dict() if settings else None}
    return write_artifact(graph, out, tok, {k: v for k, v in extra.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    import evaluate as ev  # examples/train_tiny_bitnet/evaluate.py

    import edgestream

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ev.DEFAULT_MODEL)
    ap.add_argument("--stories", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    tok = ev.load_tokenizer(a.model)
    seqs = ev.heldout_ids(tok, a.stories)
    ref = ev.load_ternary_torch(a.model)
    logits = {"transformers": [np.asarray(ev.torch_logits(ref, s), np.float32) for s in seqs]}
    with tempfile.TemporaryDirectory() as td:
        for bits in (8, 4):
            sess = edgestream.load(compile_variant(a.model, Path(td) / f"h{bits}.esa", bits), device="cpu")
            try:
                logits[f"int{bits}"] = [np.asarray(sess.forward(s.tolist()), np.float32) for s in seqs]
            finally:
                sess.close()

    def ppl(name):
        return ev.ppl_of([ev.nll(lg, s) for lg, s in zip(logits[name], seqs, strict=True)])

    def versus(x, y):
        a_, b_ = np.concatenate(logits[x]), np.concatenate(logits[y])
        cos = (a_ * b_).sum(1) / (np.linalg.norm(a_, axis=1) * np.linalg.norm(b_, axis=1))
        return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                "top1_agreement": float((a_.argmax(1) == b_.argmax(1)).mean())}

    rep = {"model": str(a.model), "stories": a.stories, "positions": int(sum(len(s) for s in seqs)),
           "perplexity": {k: ppl(k) for k in logits},
           "int4_vs_int8": versus("int4", "int8"), "int8_vs_transformers": versus("int8", "transformers"),
           "int4_vs_transformers": versus("int4", "transformers"), "source": "measured (CPU executor)"}
    if a.json:
        print(json.dumps(rep, indent=1))
        return 0
    print(f"held-out: {a.stories} stories, {rep['positions']} positions, teacher-forced ({a.model.name})")
    print("| head | perplexity | logit cosine vs transformers (mean / min) | top-1 vs transformers |")
    print("|---|---|---|---|")
    print(f"| transformers (float32 head) | {rep['perplexity']['transformers']:.4f} | 1 | 1 |")
    for b in ("int8", "int4"):
        v = rep[f"{b}_vs_transformers"]
        print(f"| {b} | {rep['perplexity'][b]:.4f} | {v['cosine_mean']:.5f} / {v['cosine_min']:.5f} | "
              f"{v['top1_agreement']:.2%} |")
    v = rep["int4_vs_int8"]
    print(f"int4 against int8: logit cosine {v['cosine_mean']:.5f} (min {v['cosine_min']:.5f}), "
          f"top-1 agreement {v['top1_agreement']:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
