"""`edgestream report ART --html/--png`: the plots render in a real browser (headless Chromium from
Debian: `make sysdeps` installs it) and in matplotlib.

tests/data/bench_tiny_sim.json is `edgestream bench ART --device sim --prompt-ids 1,2,3 --decode-tokens 1
--json` of the artifact this test compiles (synth "tiny", seed 0, --target sim --hw-config shell),
measured on the Verilator build of the shipped RTL; it gives the measured points.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import edgestream
from edgestream import cli
from edgestream.report_html import load_bench, roofline
from edgestream.synth import make_checkpoint

BENCH = Path(__file__).parent / "data" / "bench_tiny_sim.json"


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    make_checkpoint(d / "ck", "tiny", seed=0)
    return edgestream.compile_model(d / "ck", d / "m.esa", target="sim", hw_config="shell")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed (`make sysdeps` installs Debian's chromium)"
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--hide-scrollbars", "--virtual-time-budget=10000", *args],
                          capture_output=True, text=True, timeout=180)


def test_report_html_renders_in_chromium(art, tmp_path):
    out, png = tmp_path / "r.html", tmp_path / "r.png"
    assert cli.main(["report", str(art), "--html", str(out), "--png", str(png), "--bench", str(BENCH)]) == 0
    page = out.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is embedded: the page works offline

    dom = _chromium("--dump-dom", out.as_uri()).stdout
    # plotly drew every figure (roofline, resources, two step charts) as SVG, with legends and markers
    assert dom.count('class="plot-container plotly"') == 4 and dom.count('<svg class="main-svg"') >= 2 * 4
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', dom)
    for want in ("DDR peak", "DDR effective", "compute roof", "decode, predicted (context 128)",
                 "prefill, predicted (prompt 128)", "decode, measured (sim cycles at 250 MHz",
                 "prefill, measured"):
        assert any(t.startswith(want) for t in legend), (want, legend)
    assert len(re.findall(r'<path class="point"', dom)) >= 5 + 5  # roofline markers + resource bars

    shot = tmp_path / "shot.png"
    _chromium("--window-size=1280,1400", f"--screenshot={shot}", out.as_uri())
    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[:2] == (1400, 1280)
    assert (img < 0.9).any(axis=-1).mean() > 0.05  # not a blank page
    # the decode (red) and prefill (green) markers of the roofline are on screen
    for rgb in ((0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C)):
        assert (np.abs(img - np.array(rgb) / 255).max(axis=-1) < 0.03).sum() > 50, rgb

    p = matplotlib.image.imread(png)
    assert p.shape[0] > 400 and p.shape[1] > 1500 and (p[..., :3] < 0.9).any(axis=-1).mean() > 0.03


def test_roofline_numbers(art):
    info = cli._hw_report(art)
    r = roofline(info, load_bench(BENCH))
    p, cfg = info["perf"], info["hw_config"]
    assert r["compute_ops_s"] == cfg["T"] * cfg["Q"] * cfg["G"] * cfg["clock_mhz"] * 1e6
    dec = next(q for q in r["points"] if q["name"].startswith("decode, predicted (context 128)"))
    # a point's performance is its tok/s times the weight operations of one token
    assert dec["ops_s"] == pytest.approx(p["decode_tok_s"] * r["ops_per_token"])
    assert dec["ops_s"] <= min(r["compute_ops_s"], r["ddr_peak"] * dec["intensity"]) * (1 + 1e-9)  # under the roofs
    meas = next(q for q in r["points"] if q["name"].startswith("decode, measured"))
    b = load_bench(BENCH)["decode"]
    assert meas["tok_s"] == pytest.approx(cfg["clock_mhz"] * 1e6 / b["cycles_per_token"])
    assert "host ran vector, attention: not counted" in meas["name"]


def test_report_errors(art, tmp_path, capsys):
    cpu = edgestream.compile_model(Path(art).parent / "ck", tmp_path / "cpu.esa")
    assert cli.main(["report", str(cpu), "--html", str(tmp_path / "a.html")]) == 2
    assert "needs an artifact compiled for a board" in capsys.readouterr().err
    assert cli.main(["report", str(art), "--html", str(tmp_path / "b.html"), "--bench", str(tmp_path / "no.json")]) == 2
    assert "no.json: no such file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"prefill": {"tokens": 3}}')
    assert cli.main(["report", str(art), "--png", str(tmp_path / "c.png"), "--bench", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json: field 'prefill': expected `edgestream bench --json` output" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("*.png"))
