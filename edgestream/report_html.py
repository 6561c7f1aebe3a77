"""`edgestream report ART --html OUT.html / --png OUT.png`: the board report as plots.

The roofline is the classic one (Williams et al.): attainable weight operations per second against
operational intensity (weight operations per DDR byte), with the DDR roof (peak and effective
bandwidth) and the TLMM engine's compute roof (lanes x G weights per cycle). One weight operation is
one weight of a linear layer applied to one token (a ternary add or an integer MAC), so a token costs
`ideal_w` of them whatever the configuration. Points: decode and prefill as the performance model
predicts them (compiler/perfmodel.py, in the artifact's manifest), and, given `edgestream bench
--json` output, the same phases from measured device cycles at the artifact's clock.

The HTML is one file with plotly.js embedded (it works offline); the PNG is drawn with matplotlib.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

from edgestream.errors import InputError

RESOURCES = ("lut", "ff", "dsp", "bram36", "uram")


def load_bench(path: str | Path) -> dict:
    """`edgestream bench --json` output, checked for the fields the plot reads."""
    from edgestream.compiler.perfmodel import read_bench_json

    p = Path(path)
    b = read_bench_json(p)
    for ph in ("prefill", "decode"):
        d = b.get(ph) if isinstance(b, dict) else None
        if not isinstance(d, dict) or not all(isinstance(d.get(k), (int, float)) and d.get(k) > 0
                                              for k in ("tokens", "cycles_per_token", "read_bytes")):
            raise InputError(f"{p}: field {ph!r}: expected `edgestream bench --json` output with tokens, "
                             f"cycles_per_token and read_bytes > 0")
    return b


def roofline(info: dict[str, Any], bench: dict | None = None) -> dict[str, Any]:
    """The numbers behind the roofline plot: roofs and points (intensity in weight ops/byte, performance
    in weight ops/s, and the tok/s each point stands for)."""
    p, cfg = info["perf"], info["hw_config"]
    f = cfg["clock_mhz"] * 1e6
    compute = cfg["T"] * cfg["Q"] * cfg["G"] * f  # weights the engine consumes per second
    ops = compute / p["prefill_compute_roofline_tok_s"]  # weight ops per token (the model's ideal_w)
    pts = [{"name": f"decode, predicted (context {p['context']})", "phase": "decode", "source": "predicted",
            "intensity": ops / p["bytes_per_token"]["total"], "tok_s": p["decode_tok_s"]},
           {"name": f"prefill, predicted (prompt {p['prompt']})", "phase": "prefill", "source": "predicted",
            "intensity": ops / p["prefill_bytes_per_token"], "tok_s": p["prefill_tok_s"]}]
    for row in info.get("perf_table", []):
        if "context" in row and row["context"] != p["context"]:
            pts.append({"name": f"decode, predicted (context {row['context']})", "phase": "decode",
                        "source": "predicted", "intensity": ops / row["bytes_per_token"], "tok_s": row["decode_tok_s"]})
    if bench is not None:
        for ph in ("decode", "prefill"):
            b = bench[ph]
            pts.append({"name": f"{ph}, measured ({bench.get('device', 'device')} cycles at {cfg['clock_mhz']:.0f} MHz"
                                f"{_uncounted(b)})", "phase": ph, "source": "measured",
                        "intensity": ops * b["tokens"] / b["read_bytes"], "tok_s": f / b["cycles_per_token"]})
    for q in pts:
        q["ops_s"] = q["tok_s"] * ops
    return {"ops_per_token": ops, "compute_ops_s": compute, "ddr_peak": p["ddr"]["peak"],
            "ddr_effective": p["ddr"]["effective"], "points": pts}


def _uncounted(phase: dict) -> str:
    """What the measured cycles leave out: units the host ran (0 device cycles), which the predicted
    point includes, so the measured point is an upper bound until the device runs every unit."""
    units = phase.get("cycles_per_token_by_unit") or {}
    host = [u for u, c in units.items() if not c]
    return f"; host ran {', '.join(host)}: not counted" if host else ""


def _ridge_range(r: dict) -> tuple[float, float]:
    xs = [q["intensity"] for q in r["points"]] + [r["compute_ops_s"] / r["ddr_peak"]]
    return min(xs) / 4, max(xs) * 4


def _steps(info: dict) -> list[tuple[str, list[dict]]]:
    p = info["perf"]
    out = []
    if "decode_layer" in p:
        out.append((f"decode, one layer (context {p['context']})", p["decode_layer"]))
    if "prefill_layer" in p:
        out.append((f"prefill, one layer, one tile of {p.get('prefill_layer_tile_tokens', '?')} tokens",
                    p["prefill_layer"]))
    return out


# ---- HTML (plotly)
def figures(info: dict, bench: dict | None = None) -> list:
    import plotly.graph_objects as go

    r = roofline(info, bench)
    lo, hi = _ridge_range(r)
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    roof = go.Figure()
    for bw, name, dash in ((r["ddr_peak"], "DDR peak", "solid"), (r["ddr_effective"], "DDR effective", "dash")):
        roof.add_trace(go.Scatter(x=xs, y=[min(bw * x, r["compute_ops_s"]) for x in xs], mode="lines",
                                  name=f"{name} {bw / 1e9:.1f} GB/s (and compute roof)", line={"dash": dash}))
    roof.add_trace(go.Scatter(x=[lo, hi], y=[r["compute_ops_s"]] * 2, mode="lines", line={"dash": "dot"},
                              name=f"compute roof {r['compute_ops_s'] / 1e9:.1f} G weight-ops/s"))
    symbols = {"predicted": "circle", "measured": "diamond"}
    colors = {"decode": "#d62728", "prefill": "#2ca02c"}
    for q in r["points"]:
        roof.add_trace(go.Scatter(
            x=[q["intensity"]], y=[q["ops_s"]], mode="markers+text", name=q["name"], text=[f"{q['tok_s']:,.0f} tok/s"],
            textposition="top center", marker={"size": 13, "symbol": symbols[q["source"]], "color": colors[q["phase"]],
                                               "line": {"width": 1, "color": "black"}}))
    roof.update_layout(title="Roofline: weight operations per second vs operational intensity",
                       xaxis={"type": "log", "title": "weight operations per DDR byte"},
                       yaxis={"type": "log", "title": "weight operations per second"},
                       height=560, legend={"orientation": "h", "y": -0.2})

    util, budget = info["utilization"], info.get("budget_fraction", {})
    names = [k for k in RESOURCES if k in util]
    res = go.Figure()
    res.add_trace(go.Bar(x=[k.upper() for k in names], y=[100 * util[k] for k in names], name="used (model)",
                         text=[f"{int(info['resources'][k]):,}" for k in names], textposition="outside"))
    res.add_trace(go.Scatter(x=[k.upper() for k in names], y=[100 * budget.get(k, 1.0) for k in names],
                             mode="markers", marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3}},
                             name="budget"))
    res.update_layout(title=f"Resources vs the {info['target']} budget", yaxis={"title": "% of the device",
                                                                                  "range": [0, 110]}, height=420)
    figs = [("roofline", roof), ("resources", res)]
    for title, steps in _steps(info):
        st = go.Figure(go.Bar(y=[s["step"] for s in steps][::-1], x=[s["cycles"] for s in steps][::-1],
                              orientation="h", text=[f"{s['bytes']:,} B" for s in steps][::-1], textposition="auto"))
        st.update_layout(title=f"Cycles per step: {title}", xaxis={"title": "cycles"},
                         height=120 + 26 * len(steps))
        figs.append((title, st))
    return figs


def _table(head: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_html(info: dict, bench: dict | None = None) -> str:
    import plotly.io as pio

    p, cfg = info["perf"], info["hw_config"]
    parts = []
    for i, (_, fig) in enumerate(figures(info, bench)):
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, config={"displaylogo": False}))
    r = roofline(info, bench)
    points = _table(["point", "tok/s", "weight ops/byte", "G weight-ops/s"],
                    [[q["name"], f"{q['tok_s']:,.1f}", f"{q['intensity']:.3f}", f"{q['ops_s'] / 1e9:.2f}"]
                     for q in r["points"]])
    steps = "".join(f"<h3>{html.escape(t)}</h3>" + _table(["step", "DDR bytes", "cycles", "time us"], [
        [s["step"], f"{s['bytes']:,}", f"{s['cycles']:,}", f"{s['time_us']:.2f}"] for s in st])
        for t, st in _steps(info))
    head = (f"{info['target']} ({info.get('part')}), hardware config {info['config_id']}: G={cfg['G']} T={cfg['T']} "
            f"Q={cfg['Q']}, tables in {cfg['table_mem']}, {cfg['axi_ports']}x{cfg['axi_width_bits']}-bit AXI, "
            f"{cfg['clock_mhz']:.0f} MHz")
    summary = (f"predicted decode {p['decode_tok_s']:.1f} tok/s ({p['decode_roofline_frac']:.0%} of the DDR roofline "
               f"{p['decode_roofline_tok_s']:.1f} tok/s, bound by {p['decode_bound']}); prefill "
               f"{p['prefill_tok_s']:.1f} tok/s; TTFT {p['ttft_s']:.3f} s for {p['prompt']} tokens")
    measured = "" if bench is None else (
        f"<p>measured on {html.escape(str(bench.get('device')))}: decode {bench['decode']['cycles_per_token']:,.0f} "
        f"cycles/token, prefill {bench['prefill']['cycles_per_token']:,.0f} cycles/token (device segments)</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgestream report: {html.escape(info['artifact'])}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}table{{border-collapse:collapse;
margin:0.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}
.note{{color:#666}}</style></head><body>
<h1>edgestream report: {html.escape(info['artifact'])}</h1>
<p>{html.escape(head)}</p><p><b>{html.escape(summary)}</b></p>{measured}
<p class="note">{html.escape(info['note'])}</p>
{parts[0]}
{points}
{"".join(parts[1:])}
<h2>Per-step table (model)</h2>
{steps}
</body></html>
"""


def _write_atomic(out: str | Path, data: bytes) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # a report is for reading: not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out


def write_html(info: dict, out: str | Path, bench: dict | None = None) -> Path:
    return _write_atomic(out, render_html(info, bench).encode())


# ---- PNG (matplotlib)
def write_png(info: dict, out: str | Path, bench: dict | None = None) -> Path:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = roofline(info, bench)
    lo, hi = _ridge_range(r)
    steps = _steps(info)
    fig, axes = plt.subplots(1, 2 + len(steps), figsize=(7 + 5 * (1 + len(steps)), 6),
                             gridspec_kw={"width_ratios": [1.6] + [1] * (1 + len(steps))})
    ax = axes[0]
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    for bw, name, ls in ((r["ddr_peak"], "DDR peak", "-"), (r["ddr_effective"], "DDR effective", "--")):
        ax.plot(xs, [min(bw * x, r["compute_ops_s"]) for x in xs], ls, label=f"{name} {bw / 1e9:.1f} GB/s")
    ax.axhline(r["compute_ops_s"], ls=":", color="k", label=f"compute {r['compute_ops_s'] / 1e9:.1f} G ops/s")
    for q in r["points"]:
        ax.plot(q["intensity"], q["ops_s"], "o" if q["source"] == "predicted" else "D",
                color="#d62728" if q["phase"] == "decode" else "#2ca02c", mec="k", ms=9, label=q["name"])
        ax.annotate(f"{q['tok_s']:,.0f} tok/s", (q["intensity"], q["ops_s"]), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="weight operations per DDR byte", ylabel="weight operations per second",
           title="Roofline")
    ax.legend(fontsize=7, loc="lower right")
    util, budget = info["utilization"], info.get("budget_fraction", {})
    names = [k for k in RESOURCES if k in util]
    ax = axes[1]
    ax.bar([k.upper() for k in names], [100 * util[k] for k in names], label="used (model)")
    ax.scatter([k.upper() for k in names], [100 * budget.get(k, 1.0) for k in names], marker="_", s=900, color="k",
               label="budget")
    ax.set(ylim=(0, 110), ylabel="% of the device", title=f"Resources vs the {info['target']} budget")
    ax.legend(fontsize=8)
    for ax, (title, st) in zip(axes[2:], steps, strict=True):
        ax.barh([s["step"] for s in st][::-1], [s["cycles"] for s in st][::-1])
        ax.set(xlabel="cycles", title=title)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"edgestream report: {info['artifact']} ({info['target']}, config {info['config_id']}, "
                 f"{info['hw_config']['clock_mhz']:.0f} MHz; a model, not a board measurement)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return _write_atomic(out, buf.getvalue())
