"""The performance model's unit terms against the RTL they were fitted on, live: every unit instruction of
one layer of the 2-layer test model (and its head) alone in one START on the Verilator shell (the shipped
build, as tests/test_bench_layer.py), decode and a prefill tile; its VEC_CYCLES / ATTN_CYCLES within the
error compiler/perfmodel.py states. An RTL change that moves a unit's timing fails here: refit VEC_CAL /
ROW_CAL / ATTN_CAL (docs/hardware.md "Calibration of the performance model") in the same commit."""

from __future__ import annotations

import pytest
from test_perfmodel import ATTN_ERR, INSTR_ERR, within

import edgestream
from edgestream import program as pg
from edgestream.compiler import perfmodel as pm
from edgestream.synth import make_checkpoint

CONTEXT = 8
UNIT_OPS = {pg.EMBED: "EMBED", pg.NORM_QUANT: "NORM_QUANT", pg.ROPE: "ROPE", pg.ADD: "ADD", pg.ACT_MUL: "ACT_MUL",
            pg.LAST_ROW: "LAST_ROW", pg.OUTPUT: "OUTPUT", pg.ATTENTION: "ATTENTION"}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    from edgestream.host.accel_bench import _hw_config, _Stepper, derive_layers

    d = tmp_path_factory.mktemp("perfmodel_rtl")
    make_checkpoint(d / "ck", "tiny", seed=0)
    art = edgestream.compile_model(d / "ck", d / "m.esa", target="kv260", hw_config="shell")
    sess = edgestream.load(derive_layers(art, d / "one.esa", 1), device="sim")
    try:
        ex = sess.executor
        cfg = _hw_config(sess)
        lat = sess.accel_device.latency
        ex.reset(CONTEXT + cfg.max_tok + 1)
        st = _Stepper(ex)
        prog = ex.prog
        last_row = next(i for i, x in enumerate(prog.instrs) if x.op == pg.LAST_ROW)
        rows = []
        for ntok in (1, cfg.max_tok):
            for pc, ins in enumerate(prog.instrs):
                # past LAST_ROW a run has one token (es_seq's NTOK_eff): the head is measured at decode only
                if ins.op not in UNIT_OPS or (ntok > 1 and pc > last_row):
                    continue
                c = st.run(pc, pc + 1, ntok, CONTEXT)
                rows.append((UNIT_OPS[ins.op], ins, ntok, c))
        return sess.executor.cfg, cfg, prog, lat, rows
    finally:
        sess.close()


def test_unit_instructions_match_the_model(measured):
    m, cfg, prog, lat, rows = measured
    # EMBED and the layer's 10 unit instructions at both token counts, LAST_ROW at both, the final norm and argmax
    assert len(rows) == 2 * 12 + 2
    for op, ins, ntok, c in rows:
        width = prog.buffers[ins.a].width
        if op == "ATTENTION":
            got, meas, bound = pm.attn_cycles(m, ntok, CONTEXT, lat), c["attn_cycles"], ATTN_ERR
        elif op in ("LAST_ROW", "OUTPUT"):
            if ntok > 1:  # LAST_ROW of a prefill tile (once per pass) is charged as at decode
                continue
            got, meas, bound = pm.row_cycles(op, width, lat), c["vec_cycles"], INSTR_ERR
        else:
            got = pm.vec_cycles(cfg, op, width, ntok, lat, bool(ins.flags & pg.F_NORM) or op != "NORM_QUANT",
                                m.head_dim)
            meas, bound = c["vec_cycles"], INSTR_ERR
        assert meas > 0, (op, ntok, c)
        assert within(got, meas, bound), (op, width, ntok, lat, round(got), meas)
