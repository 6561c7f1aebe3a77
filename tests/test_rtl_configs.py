"""Every shipped target's DSE choice is hardware that exists: `compile --target T` then
`run --device sim` builds the accelerator for the artifact's own configuration (its generated
package, cached per configuration ID) and gives logits bit-identical to `--device cpu`.

Choices whose generated RTL package is the same text apart from ES_CONFIG_ID (they differ only in
what the simulation cannot see: the clock, where the synthesis tool puts the tables) are the same
RTL, and their artifacts are the same program and weight image apart from that ID: one of them runs
in simulation, the others are checked to be that same hardware and program. A full accelerator
build is ~2 minutes of the suite, so this keeps one build per distinct RTL."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import edgestream
from edgestream import regmap as rm
from edgestream.artifact import read_artifact
from edgestream.compiler.dse import HwConfig
from edgestream.compiler.rtl_space import why_not
from edgestream.compiler.targets import list_targets
from edgestream.errors import InputError
from edgestream.program import Program
from edgestream.synth import make_checkpoint

IDS = [0, 5, 17, 42, 99, 7]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("cfg") / "ck", "tiny", packed=True, seed=1)


def rtl_without_id(hw_config: dict) -> str:
    return re.sub(r"ES_CONFIG_ID = 64'h[0-9a-f]+", "ES_CONFIG_ID", rm.render_sv(hw_config))


def program_without_id(art) -> Program:
    return dataclasses.replace(Program.decode((art.path / "program.bin").read_bytes()), config_id="0")


def test_every_target_choice_runs_in_simulation(ckpt, tmp_path):
    ran: dict[str, tuple[str, object]] = {}   # RTL package without its ID -> (target, artifact) simulated
    seen: dict[str, list[str]] = {}
    refused: list[str] = []
    for name in list_targets():
        try:
            path = edgestream.compile_model(ckpt, tmp_path / f"{name}.esa", target=name)
        except InputError as e:
            # nothing the RTL implements fits this target's budget: one clear error, no artifact
            assert "no hardware configuration fits" in str(e) and not (tmp_path / f"{name}.esa").exists()
            refused.append(name)
            continue
        art = read_artifact(path)
        man = art.manifest
        assert man["hw_rtl_implements"] == {"implemented": True, "why_not": None}, name
        assert why_not(HwConfig(**man["hw_config"])) is None
        key = rtl_without_id(man["hw_config"])
        seen.setdefault(key, []).append(name)
        if key in ran:
            # the same RTL as a configuration that ran: the same program and weights, but for the ID
            first = ran[key][1]
            assert program_without_id(art) == program_without_id(first), (name, ran[key][0])
            assert (art.path / "hw_weights.bin").read_bytes() == (first.path / "hw_weights.bin").read_bytes(), name
            continue
        ran[key] = (name, art)
        want = edgestream.load(path).forward(IDS)
        sess = edgestream.load(path, device="sim")
        try:
            assert sess.accel.config_id() == int(man["hw_config_id"], 16)
            assert "lowered" not in sess.device_note  # the artifact's own program.bin ran
            assert sess.accel.units() & 3 == 3, sess.device_note  # vector and attention units on the device
            got = sess.forward(IDS)
        finally:
            sess.close()
        assert np.array_equal(got, want), name
    assert {"kv260", "zcu104", "sim"} <= {t for ts in seen.values() for t in ts}
    # by the Yosys-measured shell (compiler/dse.py SHELL_TERMS) the full accelerator is over the Ultra96-V2's
    # and the generic template's LUT budgets for any engine
    assert sorted(refused) == ["generic", "ultra96v2"]
    # the small model's choices cover both the one-port (T=1, Q=16) and the two-port (Q=32) geometry
    assert {(c["Q"], c["axi_ports"]) for c in (read_artifact(tmp_path / f"{ts[0]}.esa").manifest["hw_config"]
                                              for ts in seen.values())} >= {(16, 1), (32, 2)}
