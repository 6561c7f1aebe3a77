"""The decoder-LM float graph that checkpoint frontends (HF, GGUF) build: one definition of the block
structure (pre-norm attention with RoPE and GQA, optional BitNet sub-layer norms, ReLU^2 or SwiGLU
FFN, residuals, final norm, LM head); each frontend only says where its weights live."""

from __future__ import annotations

from collections.abc import Callable

from edgestream.ir import Graph, ModelConfig, Node, Tensor

# The most positions a model may declare: the artifact stores cos/sin RoPE tables of max_position
# rows (2 x 4 x head_dim/2 bytes each; 512 MB at head_dim 128), so a corrupt or absurd context length
# must stop the compile, not allocate it. 2**20 holds every published context length up to 1M tokens.
MAX_POSITION = 1 << 20

# roles of a layer's weights; a frontend maps (layer, role) to its own module name
ROLES = ("attn_norm", "q", "k", "v", "attn_sub_norm", "o", "ffn_norm", "gate", "up", "ffn_sub_norm", "down")


def build_decoder(
    cfg: ModelConfig,
    name: Callable[[int, str], str],
    norm_gain: Callable[[str, int], Tensor],
    linear: Callable[[str, str, int, int], Tensor],
    embedding: Tensor,
    final_norm: str,
    lm_head: Callable[[], Tensor] | None,
    act: str | None = None,
) -> Graph:
    """name(layer, role) -> module name; norm_gain(module, size) -> the gain tensor;
    linear(module, role, rows, cols) -> the weight tensor; lm_head None means tied embeddings; act
    overrides the FFN activation of the architecture ("relu2" | "silu": a GGUF may say).
    Node names are the module names (plus "embed", "lm_head"), so errors and reports name the
    checkpoint's own tensors."""
    h, ffn = cfg.hidden_size, cfg.intermediate_size
    qd, kvd = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    tensors: dict[str, Tensor] = {}
    nodes: list[Node] = []

    def add(t: Tensor) -> str:
        tensors[t.name] = t
        return t.name

    def norm(module: str, size: int, x: str, out: str) -> None:
        nodes.append(Node("rmsnorm", module, [x], [out], {"gain": add(norm_gain(module, size)),
                                                          "eps": cfg.rms_norm_eps}))

    def lin(i: int, role: str, n: int, k: int, x: str, out: str) -> None:
        module = name(i, role)
        nodes.append(Node("linear", module, [x], [out], {"weight": add(linear(module, role, n, k))}))

    emb = add(embedding)
    nodes.append(Node("embed", "embed", ["ids"], ["x0"], {"table": emb}))
    x = "x0"
    for i in range(cfg.num_layers):
        p = f"L{i}"
        norm(name(i, "attn_norm"), h, x, f"{p}.xn")
        for role, n in (("q", qd), ("k", kvd), ("v", kvd)):
            lin(i, role, n, h, f"{p}.xn", f"{p}.{role}")
        nodes.append(Node("rope", f"{p}.rope_q", [f"{p}.q"], [f"{p}.qr"], {"heads": cfg.num_heads}))
        nodes.append(Node("rope", f"{p}.rope_k", [f"{p}.k"], [f"{p}.kr"], {"heads": cfg.num_kv_heads}))
        nodes.append(Node("attention", f"{p}.attn", [f"{p}.qr", f"{p}.kr", f"{p}.v"], [f"{p}.ao"], {"layer": i}))
        ao = f"{p}.ao"
        if cfg.sub_norms:
            norm(name(i, "attn_sub_norm"), h, ao, f"{p}.aon")
            ao = f"{p}.aon"
        lin(i, "o", h, qd, ao, f"{p}.o")
        nodes.append(Node("add", f"{p}.res1", [x, f"{p}.o"], [f"{p}.h"]))
        norm(name(i, "ffn_norm"), h, f"{p}.h", f"{p}.hn")
        lin(i, "gate", ffn, h, f"{p}.hn", f"{p}.gate")
        lin(i, "up", ffn, h, f"{p}.hn", f"{p}.up")
        nodes.append(Node(f"{act or cfg.act}_mul", f"{p}.ffn_act", [f"{p}.gate", f"{p}.up"], [f"{p}.f"]))
        f_in = f"{p}.f"
        if cfg.sub_norms:
            norm(name(i, "ffn_sub_norm"), ffn, f_in, f"{p}.fn")
            f_in = f"{p}.fn"
        lin(i, "down", h, ffn, f_in, f"{p}.d")
        nodes.append(Node("add", f"{p}.res2", [f"{p}.h", f"{p}.d"], [f"{p}.out"]))
        x = f"{p}.out"
    norm(final_norm, h, x, "xf")
    if lm_head is None:
        nodes.append(Node("linear", "lm_head", ["xf"], ["logits"], {"weight": emb, "tied": True}))
    else:
        nodes.append(Node("linear", "lm_head", ["xf"], ["logits"], {"weight": add(lm_head())}))
    return Graph(cfg, nodes, tensors)
