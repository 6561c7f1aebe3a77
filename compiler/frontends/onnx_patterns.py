"""Decoder-LM recognition for ONNX files exported from PyTorch (docs/onnx.md, "Decoder-only LMs").

`match_decoder(model, path)` recognizes a Llama/BitNet-style decoder exported by `torch.onnx.export`
(input_ids -> logits, no KV-cache outputs), float or dynamically quantized by onnxruntime
(`quantize_dynamic`: DynamicQuantizeLinear + MatMulInteger weights, a DequantizeLinear embedding), and
returns the same float decoder IR the Hugging Face frontend builds (compiler/frontends/hf.py). The walk
follows the residual stream, by structure only (node names are never trusted):

    Gather(table, input_ids) -> per layer:
      RMSNorm -> q/k/v linears -> RoPE (rotate-half: Slice/Neg/Concat, cos/sin) -> QK^T -> scale -> mask
      -> Softmax -> PV -> [attn_sub_norm] -> o linear -> residual Add ->
      RMSNorm -> gate/up linears -> SiLU(gate)*up | ReLU(gate)^2*up -> [ffn_sub_norm] -> down -> Add
    -> RMSNorm -> lm_head linear -> logits

RMSNorm is Pow(x, 2) -> ReduceMean(-1) -> Add(eps) -> Sqrt -> Div(1, .)|Reciprocal -> Mul(x, .) ->
Mul(gain), or one SimplifiedLayerNormalization / RMSNormalization node (Casts are looked through).
A linear is MatMul(x, W constant [K, N]) (float: quantized later by the normal passes), or
onnxruntime's dynamic form DynamicQuantizeLinear(x) -> MatMulInteger(W int8) -> Cast -> Mul(scale):
those integers are used as they are (an int8 tensor with its per-tensor or per-channel scale).

Dimensions come from weight shapes; head_dim and rope theta from the rotary inverse-frequency constant
(or the q Reshape's constant head size); heads = q rows / head_dim. Anything that cannot be read from
the graph may be given as metadata_props `edgestream.<field>` (e.g. `edgestream.head_dim`,
`edgestream.rope_theta`, `edgestream.max_position`, `edgestream.bos_token_id`,
`edgestream.eos_token_ids` as "1,2"); without them the error says which one is missing.

A graph that is not LM-like (no Gather of a float table by an integer graph input, or no Softmax) is
left to the general-graph builder (returns None). An LM-like graph that does not match raises an
InputError naming the node where matching failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgestream.errors import InputError
from edgestream.ir import Graph, ModelConfig, Node, Tensor, verify

LAYOUT = ("Transpose", "Reshape", "Cast", "Identity", "Unsqueeze", "Squeeze")
MAX_POSITION_DEFAULT = 2048


class _NoMatch(Exception):
    def __init__(self, node, why: str):
        super().__init__(why)
        self.node, self.why = node, why


class _Matcher:
    def __init__(self, model, path: Path):
        from onnx import helper, numpy_helper

        self.helper, self.nh = helper, numpy_helper
        self.model, self.path = model, path
        g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.nodes = list(g.node)
        self.producer: dict[str, object] = {}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for o in n.output:
                self.producer[o] = n
            for v in n.input:
                self.consumers.setdefault(v, []).append(n)
        for n in self.nodes:  # Constant nodes and Identity of constants are constants too
            if n.op_type == "Constant":
                a = self.attrs(n)
                if "value" in a:
                    self.consts[n.output[0]] = numpy_helper.to_array(a["value"])
        for n in self.nodes:
            if n.op_type == "Identity" and n.input[0] in self.consts:
                self.consts[n.output[0]] = self.consts[n.input[0]]
        self.outputs = [o.name for o in g.output]
        self.hints = {p.key[len("edgestream."):]: p.value for p in model.metadata_props
                      if p.key.startswith("edgestream.")}

    # ---- helpers
    def attrs(self, node) -> dict:
        return {a.name: self.helper.get_attribute_value(a) for a in node.attribute}

    def fail(self, node, why: str):
        raise _NoMatch(node, why)

    def cons(self, v: str, op: str | None = None) -> list:
        """Consumers of v (op_type op), looking through Cast/Identity."""
        out = []
        for c in self.consumers.get(v, []):
            if c.op_type in ("Cast", "Identity") and c.input[0] == v:
                out += self.cons(c.output[0], op)
            elif op is None or c.op_type == op:
                out.append(c)
        return out

    def src(self, v: str) -> str:
        """v with Cast/Identity producers looked through."""
        p = self.producer.get(v)
        while p is not None and p.op_type in ("Cast", "Identity") and p.input[0] not in self.consts:
            v = p.input[0]
            p = self.producer.get(v)
        return v

    def const(self, v: str):
        v2 = self.src(v)
        return self.consts.get(v, self.consts.get(v2))

    def scalar(self, v: str) -> float | None:
        c = self.const(v)
        if c is None or c.size != 1:
            return None
        return float(np.asarray(c, np.float64).reshape(()))

    def other(self, node, v: str) -> str:
        ins = [i for i in node.input]
        srcs = [self.src(i) for i in ins]
        if srcs[0] == self.src(v):
            return ins[1]
        return ins[0]

    def one(self, node, lst: list, what: str):
        if len(lst) != 1:
            self.fail(node, f"expected one {what}, found {len(lst)}")
        return lst[0]

    # ---- RMSNorm starting at x: returns (out value, gain array, eps, first node)
    def norm(self, x: str, where):
        for op in ("SimplifiedLayerNormalization", "RMSNormalization"):
            for n in self.cons(x, op):
                gain = self.const(n.input[1])
                if gain is None:
                    self.fail(n, "the norm gain is not a constant")
                return n.output[0], np.asarray(gain, np.float32).reshape(-1), \
                    float(self.attrs(n).get("epsilon", 1e-5)), n
        pows = [n for n in self.cons(x, "Pow") if self.scalar(n.input[1]) == 2.0]
        pows += [n for n in self.cons(x, "Mul") if self.src(n.input[0]) == self.src(n.input[1]) == self.src(x)]
        if not pows:
            self.fail(where, f"expected an RMSNorm (Pow(x, 2) -> ReduceMean -> Add(eps) -> Sqrt -> Div -> Mul) "
                             f"of {x!r}")
        p = pows[0]
        rm = self.one(p, self.cons(p.output[0], "ReduceMean"), "ReduceMean after Pow")
        axes = self.attrs(rm).get("axes")
        if axes is None and len(rm.input) > 1:
            axes = self.const(rm.input[1])
        if axes is None or [int(a) for a in np.asarray(axes).reshape(-1)] not in ([-1], [2]):
            self.fail(rm, f"RMSNorm ReduceMean must reduce the last axis, got axes {axes}")
        add = self.one(rm, self.cons(rm.output[0], "Add"), "Add(eps) after ReduceMean")
        eps = self.scalar(self.other(add, rm.output[0]))
        if eps is None:
            self.fail(add, "RMSNorm epsilon is not a constant scalar")
        sq = self.one(add, self.cons(add.output[0], "Sqrt"), "Sqrt after Add(eps)")
        inv = self.cons(sq.output[0], "Reciprocal") + [
            n for n in self.cons(sq.output[0], "Div") if self.scalar(n.input[0]) == 1.0]
        if len(inv) == 1:
            inv_out = inv[0].output[0]
            mul = self.one(inv[0], [n for n in self.cons(inv_out, "Mul")
                                    if self.src(self.other(n, inv_out)) == self.src(x)], "Mul(x, 1/rms)")
        else:  # Div(x, sqrt)
            mul = self.one(sq, [n for n in self.cons(sq.output[0], "Div") if self.src(n.input[0]) == self.src(x)],
                           "Reciprocal/Div after Sqrt")
        gmul = self.one(mul, self.cons(mul.output[0], "Mul"), "Mul(gain) after the RMSNorm")
        gain = self.const(self.other(gmul, mul.output[0]))
        if gain is None:
            self.fail(gmul, "the RMSNorm gain is not a constant")
        return gmul.output[0], np.asarray(gain, np.float32).reshape(-1), float(eps), p

    # ---- linears reading activation x: list of (out value, node, Tensor)
    def linears(self, x: str) -> list:
        out = []
        for n in self.cons(x, "MatMul"):
            w = self.const(n.input[1])
            if w is not None and self.src(n.input[0]) == self.src(x):
                if w.ndim != 2:
                    self.fail(n, f"weight {n.input[1]!r} has shape {list(w.shape)}, expected [K, N]")
                if not np.all(np.isfinite(w)):
                    self.fail(n, f"weight {n.input[1]!r} contains NaN or Inf")
                out.append((n.output[0], n, Tensor(n.input[1], "float32",
                                                   np.ascontiguousarray(np.asarray(w, np.float32).T))))
        for dq in self.cons(x, "DynamicQuantizeLinear"):
            for n in self.consumers.get(dq.output[0], []):
                if n.op_type != "MatMulInteger":
                    continue
                out.append(self.matmul_integer(n, dq))
        return out

    def matmul_integer(self, n, dq):
        wq = self.const(n.input[1])
        if wq is None or wq.ndim != 2:
            self.fail(n, f"weight {n.input[1]!r} must be a constant [K, N] integer matrix")
        wz = self.const(n.input[3]) if len(n.input) > 3 and n.input[3] else np.zeros(1, np.int64)
        if wz is None:
            self.fail(n, f"weight zero point {n.input[3]!r} is not a constant")
        w = wq.astype(np.int64) - np.asarray(wz, np.int64).reshape(1, -1)  # [K, N]
        if w.min() < -128 or w.max() > 127:
            self.fail(n, f"weight {n.input[1]!r} minus its zero point spans {w.min()}..{w.max()}, beyond int8 "
                         "(quantize with symmetric int8 weights: QuantType.QInt8)")
        cast = self.one(n, [c for c in self.consumers.get(n.output[0], []) if c.op_type == "Cast"],
                        "Cast after MatMulInteger")
        mul = self.one(cast, self.cons(cast.output[0], "Mul"), "Mul(scale) after MatMulInteger")
        sv = self.other(mul, cast.output[0])
        sm = self.producer.get(sv)
        if sm is None or sm.op_type != "Mul" or dq.output[1] not in sm.input:
            self.fail(mul, "expected Mul(activation scale, weight scale) as the dequantization scale")
        ws = self.const(sm.input[1] if sm.input[0] == dq.output[1] else sm.input[0])
        n_out = w.shape[1]
        if ws is None or ws.size not in (1, n_out) or not np.all(np.asarray(ws) > 0):
            self.fail(sm, f"weight scale must be a positive constant per tensor or per output channel ({n_out})")
        scale = np.broadcast_to(np.asarray(ws, np.float32).reshape(-1), (n_out,)).astype(np.float32).copy()
        t = Tensor(n.input[1], "int8", np.ascontiguousarray(w.T.astype(np.int8)), scale)
        return mul.output[0], n, t

    # ---- forward reach (values), not crossing weight linears
    def reach(self, v: str, limit: int = 400) -> tuple[set, list]:
        seen_v, nodes, todo = {v}, [], [v]
        while todo and len(nodes) < limit:
            u = todo.pop()
            for c in self.consumers.get(u, []):
                if c.op_type in ("Shape",) or (c.op_type == "MatMul" and self.const(c.input[1]) is not None):
                    continue
                if c.op_type in ("DynamicQuantizeLinear", "MatMulInteger"):
                    continue
                if c in nodes:
                    continue
                nodes.append(c)
                for o in c.output:
                    if o not in seen_v:
                        seen_v.add(o)
                        todo.append(o)
        return seen_v, nodes

    # ---- the walk
    def run(self):
        g = self.model.graph
        inits = set(self.consts)
        ins = [i for i in g.input if i.name not in inits]
        if len(ins) != 1 or ins[0].type.tensor_type.elem_type not in (6, 7):
            return None
        ids = ins[0].name
        gathers = [n for n in self.consumers.get(ids, []) if n.op_type == "Gather" and n.input[1] == ids]
        if not gathers or not any(n.op_type == "Softmax" for n in self.nodes):
            return None
        emb_node = gathers[0]
        table = self.const(emb_node.input[0])
        x = emb_node.output[0]
        if table is not None and table.dtype.kind in "iu":  # quantize_dynamic: Gather(uint8) -> DequantizeLinear
            dq = self.one(emb_node, self.consumers.get(x, []), "DequantizeLinear after the quantized Gather")
            s, z = self.const(dq.input[1]), self.const(dq.input[2]) if len(dq.input) > 2 else 0
            if dq.op_type != "DequantizeLinear" or s is None or z is None or np.asarray(s).size != 1:
                self.fail(dq, "a quantized embedding table needs a per-tensor DequantizeLinear")
            table = ((table.astype(np.int64) - np.asarray(z, np.int64).reshape(())).astype(np.float32)
                     * np.asarray(s, np.float32).reshape(())).astype(np.float32)
            x = dq.output[0]
        if table is None or table.ndim != 2:
            self.fail(emb_node, "the embedding table is not a constant [vocab, hidden] matrix")
        vocab, hidden = table.shape
        tensors: dict[str, Tensor] = {"model.embed_tokens.weight": Tensor("model.embed_tokens.weight", "float32",
                                                                         np.asarray(table, np.float32))}
        nodes = [Node("embed", "embed", ["ids"], ["x0"], {"table": "model.embed_tokens.weight"})]
        names = {x: "x0"}  # ONNX residual value -> IR value
        eps_seen, arch, dims = [], None, {}

        def norm_node(name, onnx_x, ir_x, ir_out, where):
            out, gain, eps, first = self.norm(onnx_x, where)
            tensors[name + ".weight"] = Tensor(name + ".weight", "float32", gain)
            nodes.append(Node("rmsnorm", name, [ir_x], [ir_out], {"gain": name + ".weight", "eps": eps}))
            eps_seen.append(float(f"{eps:.6g}"))  # a float32 constant: back to its decimal
            return out, first

        def lin_node(name, lin, ir_x, ir_out):
            out, node, t = lin
            t.name = name + ".weight"
            tensors[t.name] = t
            nodes.append(Node("linear", name, [ir_x], [ir_out], {"weight": t.name}))

        layer = 0
        while True:
            p = f"model.layers.{layer}"
            xn, _, _, first = self.norm(x, self.producer.get(x) or emb_node)
            lins = self.linears(xn)
            if len(lins) == 1:  # final norm + lm_head
                break
            if len(lins) != 3:
                self.fail(first, f"layer {layer}: the input norm feeds {len(lins)} linears, expected 3 (q, k, v) "
                                 "or 1 (lm_head)")
            norm_node(f"{p}.input_layernorm", x, names[x], f"{p}.xn", None)
            q, k, v, scores, pv = self.attention(lins, first, layer)
            for proj, lin in (("q", q), ("k", k), ("v", v)):
                lin_node(f"{p}.self_attn.{proj}_proj", lin, f"{p}.xn", f"{p}.{proj}")
            dq_, dk_ = q[2].shape[0], k[2].shape[0]
            if layer == 0:
                dims.update(self.head_dim(q, scores, dq_, dk_))
            hd = dims["head_dim"]
            nodes.append(Node("rope", f"{p}.self_attn.rope_q", [f"{p}.q"], [f"{p}.qr"], {"heads": dq_ // hd}))
            nodes.append(Node("rope", f"{p}.self_attn.rope_k", [f"{p}.k"], [f"{p}.kr"], {"heads": dk_ // hd}))
            nodes.append(Node("attention", f"{p}.self_attn.attn", [f"{p}.qr", f"{p}.kr", f"{p}.v"], [f"{p}.ao"],
                              {"layer": layer}))
            self.check_scale(scores, self.softmax, hd)
            # PV -> layout ops -> [attn_sub_norm] -> o_proj
            ao, sub_a = self.to_linear_input(pv.output[0], pv)
            ir_ao = f"{p}.ao"
            if sub_a:
                _, _ = norm_node(f"{p}.self_attn.attn_sub_norm", ao, ir_ao, f"{p}.aon", pv)
                ao, ir_ao = sub_a, f"{p}.aon"
            o = self.one(pv, self.linears(ao), "o_proj linear after the attention")
            lin_node(f"{p}.self_attn.o_proj", o, ir_ao, f"{p}.o")
            h = self.residual(x, o)
            names[h] = f"{p}.h"
            nodes.append(Node("add", f"{p}.res1", [names[x], f"{p}.o"], [f"{p}.h"]))
            # MLP
            hn, _, _, first2 = self.norm(h, self.producer[h])
            norm_node(f"{p}.post_attention_layernorm", h, f"{p}.h", f"{p}.hn", None)
            gu = self.linears(hn)
            if len(gu) != 2:
                self.fail(first2, f"layer {layer}: the post-attention norm feeds {len(gu)} linears, expected 2 "
                                  "(gate, up)")
            act, gate, up, f = self.mlp_act(gu, first2)
            if arch is None:
                arch = "llama" if act == "silu" else "bitnet"
            elif arch != ("llama" if act == "silu" else "bitnet"):
                self.fail(self.producer[f], f"layer {layer}: activation {act} differs from layer 0's")
            lin_node(f"{p}.mlp.gate_proj", gate, f"{p}.hn", f"{p}.gate")
            lin_node(f"{p}.mlp.up_proj", up, f"{p}.hn", f"{p}.up")
            nodes.append(Node(f"{act}_mul", f"{p}.mlp.act", [f"{p}.gate", f"{p}.up"], [f"{p}.f"]))
            f_in, sub_f = self.to_linear_input(f, self.producer[f])
            ir_f = f"{p}.f"
            if sub_f:
                norm_node(f"{p}.mlp.ffn_sub_norm", f_in, ir_f, f"{p}.fn", self.producer[f])
                f_in, ir_f = sub_f, f"{p}.fn"
            if bool(sub_a) != (arch == "bitnet") or bool(sub_f) != (arch == "bitnet"):
                self.fail(self.producer[f], f"layer {layer}: sub-layer norms (attn_sub_norm, ffn_sub_norm) go with "
                                            "the ReLU^2 (BitNet) MLP and only with it")
            d = self.one(self.producer[f], self.linears(f_in), "down_proj linear after the MLP activation")
            lin_node(f"{p}.mlp.down_proj", d, ir_f, f"{p}.d")
            x = self.residual(h, d)
            names[x] = f"{p}.out"
            nodes.append(Node("add", f"{p}.res2", [f"{p}.h", f"{p}.d"], [f"{p}.out"]))
            layer += 1
        if layer == 0:
            self.fail(first, "no decoder layer before the final norm")
        norm_node("model.norm", x, names[x], "xf", None)
        head = lins[0]
        out = head[0]
        while out not in self.outputs:
            nxt = [c for c in self.consumers.get(out, []) if c.op_type in ("Cast", "Identity")]
            if len(nxt) != 1:
                self.fail(head[1], f"the lm_head output {head[0]!r} is not the graph output (expected logits)")
            out = nxt[0].output[0]
        if head[2].shape != (vocab, hidden):
            self.fail(head[1], f"lm_head weight has shape {list(head[2].shape)} (as [N, K]), expected "
                               f"[{vocab}, {hidden}]")
        lin_node("lm_head", head, "xf", "logits")
        inter = next(t.shape[0] for n, t in ((n, tensors.get(n.attrs.get("weight", ""))) for n in nodes)
                     if n.op == "linear" and n.name.endswith("gate_proj"))
        hd = dims["head_dim"]
        qrows = tensors["model.layers.0.self_attn.q_proj.weight"].shape[0]
        krows = tensors["model.layers.0.self_attn.k_proj.weight"].shape[0]
        if len(set(eps_seen)) != 1:
            self.fail(first, f"the RMSNorms use different epsilons {sorted(set(eps_seen))}")
        cfg = ModelConfig(
            arch=arch, vocab_size=int(vocab), hidden_size=int(hidden), intermediate_size=int(inter),
            num_layers=layer, num_heads=qrows // hd, num_kv_heads=krows // hd, head_dim=hd,
            rms_norm_eps=eps_seen[0], rope_theta=dims["rope_theta"],
            max_position=int(self.hints.get("max_position", MAX_POSITION_DEFAULT)),
            bos_token_id=int(self.hints["bos_token_id"]) if "bos_token_id" in self.hints else None,
            eos_token_ids=[int(e) for e in self.hints.get("eos_token_ids", "").split(",") if e.strip()])
        if cfg.num_heads % cfg.num_kv_heads or cfg.num_heads * hd != qrows or cfg.num_kv_heads * hd != krows:
            self.fail(first, f"q rows {qrows} and k rows {krows} are not multiples of head_dim {hd} with "
                             "heads a multiple of kv heads")
        return verify(Graph(cfg, nodes, tensors))

    def attention(self, lins, where, layer):
        """Tells q, k, v apart by where they flow: q -> A and k -> B of the scores MatMul before the
        Softmax; v -> B of the MatMul after it."""
        reach = [self.reach(lin[0]) for lin in lins]
        soft = [[n for n in r[1] if n.op_type == "Softmax"] for r in reach]
        if sum(1 for s in soft if s) != 2:
            self.fail(where, f"layer {layer}: expected two of the three projections (q, k) to reach a Softmax")
        sm = next(s[0] for s in soft if s)
        # scores MatMul: an activation MatMul upstream of the Softmax
        v_i = next(i for i, s in enumerate(soft) if not s)
        scores = None
        n = sm
        for _ in range(12):
            n = self.producer.get(n.input[0])
            if n is None:
                break
            if n.op_type == "MatMul":
                scores = n
                break
        if scores is None or self.const(scores.input[1]) is not None:
            self.fail(sm, "expected the attention scores MatMul(q, k^T) before the Softmax")
        qk = [i for i in range(3) if i != v_i]
        q_i = next((i for i in qk if scores.input[0] in reach[i][0] and scores.input[1] not in reach[i][0]), None)
        if q_i is None:
            self.fail(scores, "cannot tell q from k: the scores MatMul does not read one projection per side")
        k_i = next(i for i in qk if i != q_i)
        if scores.input[1] not in reach[k_i][0]:
            self.fail(scores, "the scores MatMul's second input does not come from the k projection")
        for i, what in ((q_i, "q"), (k_i, "k")):
            if not any(n.op_type == "Neg" for n in reach[i][1]):
                self.fail(scores, f"no rotary embedding (rotate-half Neg) on the {what} path")
        pv = [c for c in self.consumers.get(sm.output[0], []) if c.op_type == "MatMul"]
        pv = pv or [c for c in reach[v_i][1] if c.op_type == "MatMul"]
        if len(pv) != 1 or pv[0].input[1] not in reach[v_i][0]:
            self.fail(sm, "expected MatMul(softmax, v) after the Softmax")
        masked = False
        n = sm
        while n is not scores:
            n = self.producer.get(n.input[0])
            masked |= n.op_type in ("Add", "Where")
        if not masked:
            self.fail(sm, "no causal mask (Add/Where) between the scores and the Softmax")
        self.softmax = sm
        return lins[q_i], lins[k_i], lins[v_i], scores, pv[0]

    def check_scale(self, scores, sm, hd):
        """The product of constant Mul/Div factors between QK^T and Softmax must be 1/sqrt(head_dim)."""
        scale = 1.0
        n = self.producer.get(sm.input[0])
        while n is not None and n is not scores:
            c = [self.scalar(i) for i in n.input]
            if n.op_type == "Mul" and any(v is not None for v in c):
                scale *= next(v for v in c if v is not None)
            elif n.op_type == "Div" and len(c) > 1 and c[1] is not None:
                scale /= c[1]
            n = self.producer.get(n.input[0])
        # q/k may each carry sqrt(scale) (HF SDPA export): also accept factors before the scores MatMul
        for i in scores.input:
            p = self.producer.get(i)
            for _ in range(4):
                if p is None:
                    break
                if p.op_type == "Mul" and self.scalar(p.input[1]) is not None:
                    scale *= self.scalar(p.input[1])
                p = self.producer.get(p.input[0])
        if abs(scale * np.sqrt(hd) - 1.0) > 1e-5:
            self.fail(scores, f"attention scale {scale:.6g} is not 1/sqrt(head_dim) = {1 / np.sqrt(hd):.6g}")

    def head_dim(self, q, scores, dq_, dk_) -> dict:
        hints = {}
        if "head_dim" in self.hints:
            hints["head_dim"] = int(self.hints["head_dim"])
        if "rope_theta" in self.hints:
            hints["rope_theta"] = float(self.hints["rope_theta"])
        inv = None
        for n in self.nodes:
            if n.op_type == "Cos":
                inv = self.inv_freq(n)
                break
        if inv is not None and "head_dim" not in hints:
            hints["head_dim"] = 2 * inv.size
        if inv is not None and "rope_theta" not in hints:
            d = 2 * inv.size
            i = np.arange(inv.size)
            theta = float(np.exp(-np.mean(np.log(inv[1:]) / (2 * i[1:] / d)))) if inv.size > 1 else 10000.0
            want = theta ** (-(2 * i / d))
            if not np.allclose(inv, want, rtol=1e-4):
                self.fail(q[1], "rotary inverse frequencies are not theta**(-2i/d) (rope scaling is not supported)")
            hints["rope_theta"] = float(f"{theta:.6g}")  # float32 frequencies: 6 digits
        if "head_dim" not in hints:  # q Reshape [b, t, -1, D] with a constant head size
            for c in self.reach(q[0])[1]:
                if c.op_type == "Reshape":
                    shp = self.concat_const_last(c.input[1])
                    if shp:
                        hints["head_dim"] = shp
                    break
        for k in ("head_dim", "rope_theta"):
            if k not in hints:
                raise InputError(f"{self.path}: cannot infer {k} from the graph (no rotary cos/sin constants); "
                                 f"add metadata_props edgestream.{k}")
        hd = int(hints["head_dim"])
        if hd <= 0 or hd % 2 or dq_ % hd or dk_ % hd:
            self.fail(q[1], f"head_dim {hd} does not divide q/k rows {dq_}/{dk_} (or is odd)")
        return {"head_dim": hd, "rope_theta": float(hints["rope_theta"])}

    def inv_freq(self, cos) -> np.ndarray | None:
        """The [D/2] constant multiplied with the positions upstream of Cos."""
        todo, seen = [cos], 0
        while todo and seen < 20:
            n = todo.pop()
            seen += 1
            for i in n.input:
                c = self.const(i)
                if c is not None and c.dtype.kind == "f" and c.size > 1 and n.op_type in ("Mul", "MatMul"):
                    return np.asarray(c, np.float64).reshape(-1)
                p = self.producer.get(i)
                if p is not None:
                    todo.append(p)
        return None

    def concat_const_last(self, v):
        c = self.const(v)
        if c is not None:
            return int(c.reshape(-1)[-1]) if c.size and c.reshape(-1)[-1] > 0 else None
        p = self.producer.get(v)
        if p is not None and p.op_type == "Concat":
            last = self.const(p.input[-1])
            if last is not None and last.size == 1 and int(last.reshape(-1)[0]) > 0:
                return int(last.reshape(-1)[0])
        return None

    def to_linear_input(self, v, where):
        """Follows layout ops from v to the value a linear reads. Returns (value, sub-norm output or
        None): when the value feeds an RMSNorm instead, (the norm input, the norm output)."""
        for _ in range(8):
            if self.linears(v):
                return v, None
            real = [c for c in self.consumers.get(v, []) if c.op_type != "Shape"]
            try:
                out, _, _, _ = self.norm(v, where)
                return v, out
            except _NoMatch:
                pass
            if len(real) != 1 or real[0].op_type not in LAYOUT or real[0].input[0] != v:
                self.fail(real[0] if real else where, f"expected a linear (or an RMSNorm then a linear) to read "
                                                      f"{v!r}")
            v = real[0].output[0]
        self.fail(where, f"no linear reads {v!r}")

    def residual(self, x, lin):
        out = lin[0]
        adds = [n for n in self.cons(out, "Add") if self.src(self.other(n, out)) == self.src(x)]
        return self.one(lin[1], adds, f"residual Add of the linear's output and {x!r}").output[0]

    def mlp_act(self, gu, where):
        for gi in (0, 1):
            g, u = gu[gi], gu[1 - gi]
            gout, uout = g[0], u[0]
            for sg in self.cons(gout, "Sigmoid"):  # SiLU: g * sigmoid(g)
                for m in self.cons(sg.output[0], "Mul"):
                    if self.src(self.other(m, sg.output[0])) == self.src(gout):
                        for m2 in self.cons(m.output[0], "Mul"):
                            if self.src(self.other(m2, m.output[0])) == self.src(uout):
                                return "silu", g, u, m2.output[0]
            for r in self.cons(gout, "Relu"):  # ReLU^2: relu(g)^2
                sq = [n for n in self.cons(r.output[0], "Mul") if self.src(n.input[0]) == self.src(n.input[1])]
                sq += [n for n in self.cons(r.output[0], "Pow") if self.scalar(n.input[1]) == 2.0]
                for s in sq:
                    for m2 in self.cons(s.output[0], "Mul"):
                        if self.src(self.other(m2, s.output[0])) == self.src(uout):
                            return "relu2", g, u, m2.output[0]
        self.fail(where, "the MLP is neither SiLU(gate) * up (SwiGLU) nor ReLU(gate)^2 * up")


def match_decoder(model, src):
    """Returns (decoder IR graph, None) when `model` is a recognized decoder-only LM, None when it is
    not LM-like (a general graph); raises InputError naming the node where an LM-like graph failed."""
    m = _Matcher(model, Path(src))
    try:
        graph = m.run()
    except _NoMatch as e:
        n = e.node
        name = repr(n.name) if n is not None and n.name else (f"(unnamed, output {n.output[0]!r})" if n else "?")
        op = f" ({n.op_type})" if n is not None else ""
        raise InputError(f"{src}: decoder LM pattern not matched at node {name}{op}: {e.why}") from None
    return None if graph is None else (graph, None)
