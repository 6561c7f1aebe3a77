"""Every shipped target's DSE choice is hardware that exists: `compile --target T` then
`run --device sim` builds the accelerator for the artifact's own configuration (its generated
package, cached per configuration ID) and gives logits bit-identical to `--device cpu`."""

from __future__ import annotations

import numpy as np
import pytest

import edgestream
from edgestream.compiler.rtl_space import why_not
from edgestream.compiler.targets import list_targets
from edgestream.errors import InputError
from edgestream.synth import make_checkpoint

IDS = [0, 5, 17, 42, 99, 7]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("cfg") / "ck", "tiny", packed=True, seed=1)


def test_every_target_choice_runs_in_simulation(ckpt, tmp_path):
    ran: dict[str, list[str]] = {}
    for name in list_targets():
        try:
            art = edgestream.compile_model(ckpt, tmp_path / f"{name}.esa", target=name)
        except InputError as e:
            # nothing the RTL implements fits this target's budget: one clear error, no artifact
            assert "no hardware configuration fits" in str(e) and not (tmp_path / f"{name}.esa").exists()
            continue
        man = edgestream.load(art).artifact.manifest
        assert man["hw_rtl_implements"] == {"implemented": True, "why_not": None}, name
        from edgestream.compiler.dse import HwConfig

        assert why_not(HwConfig(**man["hw_config"])) is None
        ran.setdefault(man["hw_config_id"], []).append(name)
        if len(ran[man["hw_config_id"]]) > 1:
            continue  # the same configuration already ran
        want = edgestream.load(art).forward(IDS)
        sess = edgestream.load(art, device="sim")
        try:
            assert sess.accel.config_id() == int(man["hw_config_id"], 16)
            assert "lowered" not in sess.device_note  # the artifact's own program.bin ran
            got = sess.forward(IDS)
        finally:
            sess.close()
        assert np.array_equal(got, want), name
    assert {"kv260", "zcu104", "ultra96v2"} <= {t for ts in ran.values() for t in ts}
