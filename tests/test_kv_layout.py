"""edgestream/kv_layout.py (the host's view of the attention unit's KV region: sizing, and the read/
rewrite of the KV-window shift) against the RTL bench's per-beat layout (sim/es_attn_model.py KvLayout,
what the unit's bench checks the RTL's memory against), for one KV port and for the striped layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgestream.kv_layout import BEAT, KvLayout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
import es_attn_model as bench  # noqa: E402


@pytest.mark.parametrize("kvp", [1, 2, 4])
@pytest.mark.parametrize("d", [16, 64, 96, 128])
def test_region_matches_the_units_layout(kvp, d):
    layers, kvh, slots = 2, 3, 5
    lay = KvLayout(layers, kvh, d, kvp)
    rng = np.random.default_rng(d * 10 + kvp)
    kq = rng.integers(-128, 128, (layers, kvh, slots, d), dtype=np.int8)
    vq = rng.integers(-128, 128, (layers, kvh, slots, d), dtype=np.int8)
    dk = rng.random((layers, kvh, slots), dtype=np.float32)
    dv = rng.random((layers, kvh, slots), dtype=np.float32)
    pos = rng.integers(0, 4096, (layers, kvh, slots), dtype=np.uint32)
    raw = lay.pack(kq, dk, vq, dv, pos)
    size = lay.bytes_for(slots)
    assert len(raw) == size and lay.slots(size) == slots and lay.slots(size + lay.slot_bytes - 1) == slots
    ref = bench.KvLayout(layers, kvh, d, size, kvp)
    assert ref.slots == slots and ref.slot_beats * BEAT == lay.slot_bytes
    for l_ in range(layers):
        for g in range(kvh):
            for s in range(slots):
                o = ref.kbeat(l_, g, s, 0)
                head = np.frombuffer(raw[o:o + BEAT], "<u4")
                assert head[0] == dk[l_, g, s].view("<u4") and head[1] == dv[l_, g, s].view("<u4")
                assert head[2] == pos[l_, g, s] and head[3] == 0
                for b in range(d // BEAT):
                    o = ref.kbeat(l_, g, s, 1 + b)
                    assert raw[o:o + BEAT] == kq[l_, g, s, BEAT * b:BEAT * b + BEAT].tobytes()
                    o = ref.vbeat(l_, g, s, b)
                    assert raw[o:o + BEAT] == vq[l_, g, s, BEAT * b:BEAT * b + BEAT].tobytes()
    back = lay.unpack(raw, slots)
    for a, b in zip(back, (kq, dk, vq, dv, pos), strict=True):
        assert np.array_equal(a, b)
