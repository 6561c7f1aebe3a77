"""Per-instruction cycles of the vector, row and attention units on the Verilator shell, against the
performance model's terms (compiler/perfmodel.py VEC_CAL, ROW_CAL, ATTN_CAL), and a least-squares refit
of the vector/row constants: what docs/hardware.md "Calibration of the performance model" was made from.

Each unit instruction of one layer (derive_layers: the artifact's layer 0, final norm, LM head) runs
alone in one START (host/accel_bench._Stepper), decode at --context and a MAXTOK prefill tile there, at
each --latencies read latency of the sim device's kv260 DDR model. Models: the 2-layer test model
(edgestream.synth "tiny") and the demo model (edgestream/data/tiny-bitnet), compiled for kv260 with
--hw-config (default: the shipped shell). A refit for a new vector unit (more lanes): build the shell
with it, run this, paste the printed VEC_CAL row for its vec_lanes into compiler/perfmodel.py, and update
the recorded measurements in tests/test_perfmodel.py. The attention constants are fitted with the
es_attn bench's phase split as well (three shapes with H/KVH = 1, 2, 4): this prints their error only.

python benchmarks/calibrate_units_sim.py [--latencies 0,100] [--context 8] [--models tiny,demo] [--json F]
python benchmarks/calibrate_units_sim.py --models 1536x4096x16x16x2048 --latencies 100 --context 128 --hw-config HW.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OPS = ("EMBED", "NORM_QUANT", "ROPE", "ADD", "ACT_MUL", "LAST_ROW", "OUTPUT", "ATTENTION")


def measure(src: Path, work: Path, hw_config: str, latencies: list[int], context: int) -> list[dict]:
    import edgestream
    from edgestream import program as pg
    from edgestream.host.accel_bench import _hw_config, _Stepper, derive_layers

    art = edgestream.compile_model(src, work / "m.esa", target="kv260", hw_config=hw_config)
    one = derive_layers(art, work / "one.esa", 1)
    rows = []
    for lat in latencies:
        sess = edgestream.load(one, device="sim", device_options={"latency": lat})
        try:
            ex = sess.executor
            cfg = _hw_config(sess)
            m = ex.cfg
            ex.reset(context + cfg.max_tok + 1)
            st = _Stepper(ex)
            prog = ex.prog
            last_row = next(i for i, x in enumerate(prog.instrs) if x.op == pg.LAST_ROW)
            for ntok in (1, cfg.max_tok):
                for pc, ins in enumerate(prog.instrs):
                    op = pg.OPNAMES.get(ins.op)
                    # past LAST_ROW a run has one token; LAST_ROW of a tile is charged as at decode
                    if op not in OPS or (ntok > 1 and pc >= last_row):
                        continue
                    c = st.run(pc, pc + 1, ntok, context)
                    rows.append({"model": f"hidden {m.hidden_size}", "op": op, "width": prog.buffers[ins.a].width,
                                 "ntok": ntok, "pos": context, "lat": lat, "gain": bool(ins.flags & pg.F_NORM),
                                 "config": m.to_dict(), "vec_lanes": cfg.vec_lanes, "G": cfg.G,
                                 "cycles": c["attn_cycles"] if op == "ATTENTION" else c["vec_cycles"]})
        finally:
            sess.close()
    return rows


def model_cycles(r: dict) -> float:
    from dataclasses import replace

    from edgestream.compiler import perfmodel as pm
    from edgestream.ir import ModelConfig
    from edgestream.regmap import shell_config

    m = ModelConfig.from_dict(r["config"])
    if r["op"] == "ATTENTION":
        return pm.attn_cycles(m, r["ntok"], r["pos"], r["lat"])
    if r["op"] in ("LAST_ROW", "OUTPUT"):
        return pm.row_cycles(r["op"], r["width"], r["lat"])
    cfg = replace(shell_config(), vec_lanes=r["vec_lanes"], G=r["G"])
    return pm.vec_cycles(cfg, r["op"], r["width"], r["ntok"], r["lat"], r["gain"] or r["op"] != "NORM_QUANT",
                         m.head_dim)


def refit(rows: list[dict]) -> dict:
    """VEC_CAL (a, b, c, d) per opcode and ROW_CAL (a, b, k): the structural element terms of
    compiler/perfmodel.py held, the constants and latency coefficients fitted."""
    from dataclasses import replace

    from edgestream.compiler import perfmodel as pm
    from edgestream.regmap import shell_config

    out = {}
    # NORM_QUANT is not a linear (a, b, c, d) row: its form (perfmodel.norm_quant_cycles, the scalar chain
    # overlapping the next token's fill) is structural; its error is reported beside the others.
    for op in [o for o in OPS[:-1] if o != "NORM_QUANT"]:
        rs = [r for r in rows if r["op"] == op]
        if not rs:
            continue
        A, y = [], []
        for r in rs:
            lanes, W, n, L = r["vec_lanes"], r["width"], r["ntok"], r["lat"]
            D = r["config"]["head_dim"]
            if op in ("LAST_ROW", "OUTPUT"):
                rate = max(1.0, (L + 16) / 128) if op == "OUTPUT" else 1.0
                A.append([1, L, math.ceil(W / 4) * rate])
                y.append(r["cycles"])
                continue
            cfg = replace(shell_config(), vec_lanes=lanes, G=r["G"])
            e_instr, e_tok = pm.vec_elements(cfg, op, W, D, r["gain"] or op != "NORM_QUANT")
            if op in ("ADD", "ACT_MUL"):
                blocks = math.ceil(n * W / pm.VMAX)
                A.append([blocks, blocks * L])
                y.append(r["cycles"] - n * e_tok / lanes)
                continue
            A.append([1, L, n, n * L])
            y.append(r["cycles"] - e_instr / lanes - n * e_tok / lanes)
        coef, *_ = np.linalg.lstsq(np.array(A, float), np.array(y, float), rcond=None)
        out[op] = [round(float(x), 2) for x in coef]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latencies", default="0,100", help="read latencies (cycles) of the sim device's DDR model")
    ap.add_argument("--context", type=int, default=8, help="position of the decode step and the prefill tile")
    ap.add_argument("--models", default="tiny,demo",
                    help="tiny (edgestream.synth), demo (data/tiny-bitnet), or one layer of a shape "
                         "HIDDENxFFNxHEADSxKVHEADSxVOCAB (e.g. 1536x4096x16x16x2048, the 0.73B's widths)")
    ap.add_argument("--hw-config", default="shell", help="--hw-config of the compile (default: the shipped shell)")
    ap.add_argument("--json", default=None, help="write the measured rows here")
    ap.add_argument("--rows", default=None, help="no simulation: the rows of earlier --json files (comma-separated)")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from edgestream.synth import make_checkpoint

    lats = [int(x) for x in a.latencies.split(",")]
    rows = [r for f in a.rows.split(",") for r in json.loads(Path(f).read_text())] if a.rows else []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="es-calib-") as td:
        for name in ([] if a.rows else a.models.split(",")):
            w = Path(td) / name
            w.mkdir()
            if name == "tiny":
                make_checkpoint(w / "ck", "tiny", seed=0)
                src = w / "ck"
            elif name == "demo":
                src = ROOT / "edgestream" / "data" / "tiny-bitnet"
            elif name.count("x") == 4:  # one layer of a shape: hidden x ffn x heads x kv_heads x vocab
                from edgestream.synth import Shape

                h, f, nh, kv, v = (int(x) for x in name.split("x"))
                make_checkpoint(w / "ck", Shape(1, h, f, nh, kv, v, 4096), seed=0)
                src = w / "ck"
            else:
                ap.error(f"--models: {name!r} is not tiny, demo or HIDDENxFFNxHEADSxKVHEADSxVOCAB")
            rows += measure(src, w, a.hw_config, lats, a.context)
    print(f"{len(rows)} instructions measured in {time.perf_counter() - t0:.0f} s")
    print(f"{'model':12} {'op':10} {'width':>6} {'ntok':>4} {'L':>4} {'measured':>9} {'model':>9} {'error':>7}")
    worst = 0.0
    for r in rows:
        got = model_cycles(r)
        err = (got - r["cycles"]) / r["cycles"]
        worst = max(worst, abs(err))
        print(f"{r['model'][:12]:12} {r['op']:10} {r['width']:6} {r['ntok']:4} {r['lat']:4} {r['cycles']:9,} "
              f"{got:9,.0f} {err:+7.1%}")
    print(f"largest |error| of the current constants: {worst:.1%}")
    lanes = sorted({r["vec_lanes"] for r in rows})
    print(f"refit (vec_lanes {lanes}): {json.dumps(refit(rows))}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
