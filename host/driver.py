"""The accelerator driver: one code path for the `cpu` model, the `sim` RTL and a `pynq` board.

It owns the memory layouts the shell reads (docs/registers.md), builds descriptor programs, writes the
registers, starts the sequencer, waits with a timeout, decodes errors into DeviceError, and reads back
INT32 accumulators, or float32 outputs from the shell's dequantize stage (DEQUANT descriptors: the
layer's per-output-channel beta lives next to its weights, the per-token s next to the activations).
`AccelKernel` puts it behind the CPU executor's kernel interface, so every linear layer's integer
matmul runs on the device and everything else (norms, quantization, RoPE, attention, sampling) stays
in the host's numpy code; `AccelExecutor` also moves the linear layers' dequantization onto the
device. Tokens and logits equal the CPU executor's whenever the device's integers (and floats) do.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from edgestream import regmap as rm
from edgestream.errors import DeviceError
from edgestream.formats.ternary import pack_gindex
from edgestream.host.kernels import LinearWeights
from edgestream.tlmm import bit_planes

BEAT = rm.DATA_BYTES
SLOT = 8  # bytes per activation group slot


@dataclass(frozen=True)
class Geometry:
    G: int = rm.SHELL_HW["G"]
    T: int = rm.SHELL_HW["T"]
    Q: int = rm.SHELL_HW["Q"]
    max_k: int = rm.SHELL_HW["max_k"]
    max_tok: int = rm.SHELL_HW["max_tok"]

    @property
    def zero_code(self) -> int:
        return (3**self.G - 1) // 2

    def groups(self, k: int) -> int:
        return -(-k // self.G)

    def chunks(self, k: int) -> int:
        return -(-self.groups(k) // self.T)

    def row_batches(self, n: int) -> int:
        return -(-n // self.Q)

    def act_beats_per_token(self, k: int) -> int:
        return -(-self.groups(k) // (BEAT // SLOT))

    def weight_beats(self, n: int, k: int, planes: int) -> int:
        return self.row_batches(n) * planes * self.chunks(k)


# ---------------------------------------------------------------- layouts
def pack_weights(lw: LinearWeights, geo: Geometry = Geometry()) -> bytes:
    """Weight codes in the engine's beat order: for row batch rb, for plane b, for chunk c, one beat of
    Q*T one-byte code slots, lane q*T + t = code of row rb*Q + q, group c*T + t. Padding rows and
    groups hold the all-zero code (their results are dropped or masked)."""
    if geo.Q * geo.T != BEAT or int(3**geo.G - 1).bit_length() > 8:
        raise DeviceError("the driver packs one 8-bit code slot per lane and Q*T lanes per 16-byte beat")
    n, k = lw.w.shape
    if lw.kind == "ternary":
        planes = pack_gindex(lw.w, geo.G)[None].astype(np.int64)  # [1, N, groups]
        pad = geo.zero_code
    else:
        planes = bit_planes(lw.w, lw.bits, geo.G).astype(np.int64)  # [bits, N, groups]
        pad = 0
    nb, ng = geo.row_batches(n), geo.groups(k)
    full = np.full((planes.shape[0], nb * geo.Q, geo.chunks(k) * geo.T), pad, dtype=np.uint8)
    full[:, :n, :ng] = planes
    # [plane, rb, q, c, t] -> [rb, plane, c, q, t]
    b = full.reshape(planes.shape[0], nb, geo.Q, geo.chunks(k), geo.T).transpose(1, 0, 3, 2, 4)
    return np.ascontiguousarray(b).tobytes()


def pack_activations(q: np.ndarray, geo: Geometry = Geometry()) -> bytes:
    """int8 [T, K] -> per token ceil(groups / 2) beats; group g in the 8-byte slot g, bytes 0..G-1."""
    t, k = q.shape
    ng = geo.groups(k)
    slots = geo.act_beats_per_token(k) * (BEAT // SLOT)
    out = np.zeros((t, slots, SLOT), dtype=np.int8)
    qp = np.zeros((t, ng * geo.G), dtype=np.int8)
    qp[:, :k] = q
    out[:, :ng, : geo.G] = qp.reshape(t, ng, geo.G)
    return out.tobytes()


def unpack_results(raw: bytes, n: int, ntok: int, geo: Geometry = Geometry(), dtype: str = "<i4") -> np.ndarray:
    """Result beats [row batch][token][Q] int32 (or float32: DEQUANT) -> [ntok, N]."""
    nb = geo.row_batches(n)
    a = np.frombuffer(raw, dtype=dtype, count=nb * ntok * geo.Q).reshape(nb, ntok, geo.Q)
    out = np.ascontiguousarray(a.transpose(1, 0, 2).reshape(ntok, nb * geo.Q)[:, :n])
    return out.astype(np.int32 if dtype == "<i4" else np.float32)


def pack_beta(beta: np.ndarray, n: int, geo: Geometry = Geometry()) -> bytes:
    """float32 beta [N] -> one beat of Q float32 per row batch (rows past N: 0)."""
    out = np.zeros(geo.row_batches(n) * geo.Q, dtype="<f4")
    out[:n] = np.broadcast_to(np.asarray(beta, dtype=np.float32), (n,))
    return out.tobytes()


def pack_scales(s: np.ndarray) -> bytes:
    """float32 s [ntok] -> ceil(ntok / 4) beats (the DEQUANT prefix of a tile's activations)."""
    out = np.zeros(-(-len(s) // 4) * 4, dtype="<f4")
    out[:len(s)] = s
    return out.tobytes()


# ---------------------------------------------------------------- program
def desc_header(config_id: int) -> bytes:
    return struct.pack("<QQQQ", rm.OP_HEADER, config_id & (2**64 - 1), 0, 0)


def desc_end() -> bytes:
    return struct.pack("<QQQQ", rm.OP_END, 0, 0, 0)


DEQUANT_BIT = 13  # MATMUL word 0: float32 results through the dequantize stage


def desc_matmul(k: int, n: int, ntok: int, bitserial: bool, bits: int, w_off: int, a_off: int, r_off: int,
                beta_off: int | None = None) -> bytes:
    """MATMUL descriptor; beta_off (from WGT_BASE) selects DEQUANT (float32 results)."""
    w0 = (rm.OP_MATMUL | ((bits if bitserial else 0) & 0xF) << 8 | int(bitserial) << 12 | (ntok & 0xFF) << 16
          | (k & 0xFFFF) << 24 | (n & 0xFFFFFF) << 40 | int(beta_off is not None) << DEQUANT_BIT)
    w2 = (r_off & 0xFFFFFFFF) | ((beta_off or 0) & 0xFFFFFFFF) << 32
    return struct.pack("<QQQQ", w0, (w_off & 0xFFFFFFFF) | (a_off & 0xFFFFFFFF) << 32, w2, 0)


@dataclass
class Layer:
    name: str
    n: int
    k: int
    bitserial: bool
    bits: int
    offset: int  # in the weight region
    nbytes: int
    beta_offset: int | None = None  # float32 beta beats in the weight region (DEQUANT)


def error_message(code_reg: int, info: int) -> str:
    code, idx = code_reg & 0xFF, code_reg >> 16
    name = rm.ERR_NAMES.get(code, f"unknown error {code}")
    text = rm.ERR_TEXT.get(code, "")
    detail = ""
    if code in (rm.ERR["AXI_READ"], rm.ERR["AXI_WRITE"]):
        detail = f" ({ {2: 'SLVERR', 3: 'DECERR'}.get(info, f'RESP={info}') })"
    elif code == rm.ERR["OPCODE"]:
        detail = f" (opcode 0x{info:02x})"
    return f"accelerator error {name} at descriptor {idx}: {text}{detail}"


class AccelDriver:
    """Register-level driver. `expected_config_id` is the configuration the program was built for."""

    def __init__(self, device, expected_config_id: int | None = None, timeout_s: float = 1e-3,
                 geo: Geometry = Geometry()):
        self.dev, self.geo, self.timeout_s = device, geo, timeout_s
        self.expected_config_id = rm.shell_config_id() if expected_config_id is None else expected_config_id
        self.layers: dict[str, Layer] = {}
        self._pending: list[tuple[Layer, bytes]] = []
        self.wgt_base = self.wgt_size = 0
        self.last_counters: dict[str, int] = {}
        self.runs = 0
        self._check_identity()
        # program, activation and result regions, sized for the largest command of a tile
        self.prog_cap = 64
        self.prog = self.dev.alloc(self.prog_cap * rm.DESC_BYTES)
        self.act_cap = self.res_cap = 0
        self.act = self.res = 0

    # ---- identity
    def _check_identity(self) -> None:
        magic = self.dev.read_reg(rm.REG["MAGIC"])
        if magic != rm.MAGIC:
            raise DeviceError(f"{self.dev.name}: no edgestream accelerator at the register window "
                              f"(MAGIC = 0x{magic:08x}, expected 0x{rm.MAGIC:08x})")
        ver = self.dev.read_reg(rm.REG["VERSION"])
        if ver != rm.REGMAP_VERSION:
            raise DeviceError(f"{self.dev.name}: register map version {ver}, this driver speaks {rm.REGMAP_VERSION}")
        cid = self.config_id()
        if cid != self.expected_config_id:
            raise DeviceError(f"{self.dev.name}: the accelerator's configuration ID is {cid:016x} but the program "
                              f"was built for {self.expected_config_id:016x}: load the matching bitstream or "
                              f"recompile for this one")
        self.reset()

    def config_id(self) -> int:
        return self.dev.read_reg(rm.REG["CONFIG_ID_LO"]) | self.dev.read_reg(rm.REG["CONFIG_ID_HI"]) << 32

    def _write64(self, lo: str, hi: str, v: int) -> None:
        self.dev.write_reg(rm.REG[lo], v & 0xFFFFFFFF)
        self.dev.write_reg(rm.REG[hi], v >> 32)

    # ---- weights
    def add_layer(self, lw: LinearWeights) -> Layer:
        if lw.k > self.geo.max_k:
            raise DeviceError(f"layer {lw.name}: K = {lw.k} exceeds the accelerator's MAXK {self.geo.max_k}")
        blob = pack_weights(lw, self.geo)
        off = sum(len(b) + (-len(b)) % 64 for _, b in self._pending) + self.wgt_size
        layer = Layer(lw.name, lw.n, lw.k, lw.kind != "ternary", lw.bits if lw.kind != "ternary" else 0, off,
                      len(blob))
        self.layers[lw.name] = layer
        self._pending.append((layer, blob))
        return layer

    def add_beta(self, name: str, beta: np.ndarray) -> None:
        """Per-output-channel float32 beta of layer `name` (before the upload): its matmuls can then
        dequantize on the device (matmul(..., s=...))."""
        if self.wgt_size:
            raise DeviceError("weights were already uploaded; add every beta before the first matmul")
        layer = self.layers[name]
        blob = pack_beta(beta, layer.n, self.geo)
        layer.beta_offset = sum(len(b) + (-len(b)) % 64 for _, b in self._pending)
        self._pending.append((Layer(name + "/beta", layer.n, 0, False, 0, layer.beta_offset, len(blob)), blob))

    def upload(self) -> None:
        """Write every added layer's codes into one device weight region (once)."""
        if not self._pending:
            return
        if self.wgt_size:
            raise DeviceError("weights were already uploaded; add every layer before the first matmul")
        total = sum(len(b) + (-len(b)) % 64 for _, b in self._pending)
        self.wgt_base = self.dev.alloc(total)
        image = bytearray(total)
        for layer, blob in self._pending:
            image[layer.offset:layer.offset + len(blob)] = blob
        self.dev.write_mem(self.wgt_base, bytes(image))
        self.wgt_size = total
        self._pending.clear()
        self._write64("WGT_BASE_LO", "WGT_BASE_HI", self.wgt_base)
        self.dev.write_reg(rm.REG["WGT_SIZE"], total)

    def _ensure(self, act_bytes: int, res_bytes: int, ndesc: int) -> None:
        if act_bytes > self.act_cap:
            self.act_cap = max(act_bytes, 2 * self.act_cap)
            self.act = self.dev.alloc(self.act_cap)
            self._write64("ACT_BASE_LO", "ACT_BASE_HI", self.act)
            self.dev.write_reg(rm.REG["ACT_SIZE"], self.act_cap)
        if res_bytes > self.res_cap:
            self.res_cap = max(res_bytes, 2 * self.res_cap)
            self.res = self.dev.alloc(self.res_cap)
            self._write64("RES_BASE_LO", "RES_BASE_HI", self.res)
            self.dev.write_reg(rm.REG["RES_SIZE"], self.res_cap)
        if ndesc > self.prog_cap:
            self.prog_cap = max(ndesc, 2 * self.prog_cap)
            self.prog = self.dev.alloc(self.prog_cap * rm.DESC_BYTES)

    # ---- run
    def matmul(self, name: str, q: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """acc int32 [T, N] = q int8 [T, K] x W^T on the device (T split into MAXTOK-token tiles). With the
        per-token scales s float32 [T] (layer with a beta): y float32 [T, N] = float32(acc) * float32(beta * s)
        from the shell's dequantize stage."""
        self.upload()
        layer = self.layers[name]
        q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.int8)
        t, k = q.shape
        if k != layer.k:
            raise DeviceError(f"layer {name}: activations have K = {k}, the weights {layer.k}")
        geo = self.geo
        dq = s is not None
        if dq:
            if layer.beta_offset is None:
                raise DeviceError(f"layer {name}: no beta was added, it cannot dequantize on the device")
            s = np.asarray(s, dtype=np.float32).reshape(t)
        a_tok = geo.act_beats_per_token(k) * BEAT
        r_tok = geo.row_batches(layer.n) * geo.Q * 4
        tiles = [(t0, min(geo.max_tok, t - t0)) for t0 in range(0, t, geo.max_tok)]
        # DEQUANT: each tile's activations are preceded by its s[t] beats
        s_room = -(-geo.max_tok // 4) * BEAT if dq else 0
        a_off = [i * s_room + t0 * a_tok for i, (t0, _) in enumerate(tiles)]
        self._ensure(t * a_tok + len(tiles) * s_room, t * r_tok, len(tiles) + 2)
        descs = [desc_header(self.expected_config_id)]
        for (t0, nt), ao in zip(tiles, a_off, strict=True):
            descs.append(desc_matmul(k, layer.n, nt, layer.bitserial, layer.bits, layer.offset, ao, t0 * r_tok,
                                     layer.beta_offset if dq else None))
        descs.append(desc_end())
        if dq:
            image = bytearray(t * a_tok + len(tiles) * s_room)
            for (t0, nt), ao in zip(tiles, a_off, strict=True):
                sb = pack_scales(s[t0:t0 + nt])
                image[ao:ao + len(sb)] = sb
                acts = pack_activations(q[t0:t0 + nt], geo)
                image[ao + len(sb):ao + len(sb) + len(acts)] = acts
            self.dev.write_mem(self.act, bytes(image))
        else:
            self.dev.write_mem(self.act, pack_activations(q, geo))
        self.run_program(b"".join(descs))
        raw = self.dev.read_mem(self.res, t * r_tok)
        out = np.empty((t, layer.n), dtype=np.float32 if dq else np.int32)
        for t0, nt in tiles:
            out[t0:t0 + nt] = unpack_results(raw[t0 * r_tok:(t0 + nt) * r_tok], layer.n, nt, geo,
                                             "<f4" if dq else "<i4")
        return out

    def run_program(self, program: bytes, timeout_s: float | None = None) -> dict[str, int]:
        """Write `program` (descriptors), run it, wait; returns the performance counters."""
        n = len(program) // rm.DESC_BYTES
        self._ensure(0, 0, n)
        self.dev.write_mem(self.prog, program)
        self._write64("PROG_BASE_LO", "PROG_BASE_HI", self.prog)
        self.dev.write_reg(rm.REG["PROG_LEN"], n)
        return self.start_and_wait(timeout_s)

    def start_and_wait(self, timeout_s: float | None = None) -> dict[str, int]:
        st = self.dev.read_reg(rm.REG["STATUS"])
        if st & (rm.STATUS_BUSY | rm.STATUS_RESETTING):
            raise DeviceError(f"{self.dev.name}: the accelerator is busy (STATUS 0x{st:x}); reset it first")
        self.dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)
        self.runs += 1
        self.wait(timeout_s)
        self.last_counters = self.counters()
        return self.last_counters

    def wait(self, timeout_s: float | None = None) -> None:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        t0 = self.dev.now()
        step = min(timeout / 4, 2e-5)
        while True:
            st = self.dev.read_reg(rm.REG["STATUS"])
            if st & rm.STATUS_ERROR:
                code = self.dev.read_reg(rm.REG["ERR_CODE"])
                info = self.dev.read_reg(rm.REG["ERR_INFO"])
                raise DeviceError(f"{self.dev.name}: {error_message(code, info)}")
            if st & rm.STATUS_DONE and not st & rm.STATUS_BUSY:
                return
            waited = self.dev.now() - t0
            if waited >= timeout:
                msg = (f"{self.dev.name}: the accelerator did not finish within {timeout * 1e3:.3f} ms "
                       f"(STATUS 0x{st:x}); ")
                try:
                    self.reset(timeout_s=timeout)
                except DeviceError as e:
                    raise DeviceError(msg + f"and did not come back from a soft reset ({e})") from None
                raise DeviceError(msg + "it was soft-reset")
            self.dev.wait(min(step, timeout - waited))
            step = min(step * 2, timeout / 4)

    def reset(self, timeout_s: float | None = None) -> None:
        """SOFT_RESET: abort the program, drain the bus, clear the status. Raises when it does not finish."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self.dev.write_reg(rm.REG["CTRL"], rm.CTRL_SOFT_RESET)
        t0 = self.dev.now()
        while True:
            st = self.dev.read_reg(rm.REG["STATUS"])
            if not st & (rm.STATUS_BUSY | rm.STATUS_RESETTING):
                return
            if self.dev.now() - t0 >= timeout:
                raise DeviceError(f"{self.dev.name}: still resetting after {timeout * 1e3:.3f} ms "
                                  f"(STATUS 0x{st:x}): the memory system does not answer")
            self.dev.wait(timeout / 16)

    def counters(self) -> dict[str, int]:
        r = self.dev.read_reg
        c = {name.lower(): r(rm.REG[name]) for name in ("RD_BEATS", "WR_BEATS", "STALL_WGT", "STALL_ACT", "STALL_RES",
                                                         "SEQ_CYCLES", "WGT_BEATS", "DESC_COUNT")}
        c["cycles"] = r(rm.REG["CYCLES_LO"]) | r(rm.REG["CYCLES_HI"]) << 32
        return c


class AccelKernel:
    """The CPU executor's kernel interface (prepare/matmul) backed by the accelerator driver."""

    def __init__(self, driver: AccelDriver, name: str):
        self.driver, self.name = driver, name
        self.log: list[tuple[str, int, dict[str, int]]] = []  # (layer, tokens, counters) per matmul
        self.record = False

    def prepare(self, lw: LinearWeights) -> str:
        self.driver.add_layer(lw)
        return lw.name

    def matmul(self, q: np.ndarray, prepared: str) -> np.ndarray:
        out = self.driver.matmul(prepared, q)
        if self.record:
            self.log.append((prepared, int(np.atleast_2d(q).shape[0]), dict(self.driver.last_counters)))
        return out

    def matmul_dequant(self, q: np.ndarray, s: np.ndarray, prepared: str) -> np.ndarray:
        """y float32 [T, N] = float32(q x W^T) * float32(beta * s), dequantized by the device."""
        out = self.driver.matmul(prepared, q, s)
        if self.record:
            self.log.append((prepared, int(np.atleast_2d(q).shape[0]), dict(self.driver.last_counters)))
        return out


def accel_executor(artifact, kernel: AccelKernel):
    """A CPU executor whose linear layers (integer matmul and dequantization) both run on the device
    through DEQUANT descriptors; results are bit-identical to the CPU executor's (docs/numerics.md)."""
    from edgestream.host.executor import CpuExecutor

    class AccelExecutor(CpuExecutor):
        def __init__(self, artifact, kernel):
            super().__init__(artifact, kernel)
            for prepared, members in self._group.values():
                kernel.driver.add_beta(prepared, np.concatenate([self.linear[m][2] for m in members]))

        def _op_qlinear(self, n, q, s):
            if n.name in self._group:
                prepared, members = self._group[n.name]
                y = self.kernel.matmul_dequant(q, s, prepared)
                for m in members:
                    row0, rows, _ = self.linear[m]
                    self._acc[m] = y[:, row0:row0 + rows]
            return self._acc.pop(n.name)

    return AccelExecutor(artifact, kernel)


def open_accel(device: str, artifact=None, **device_kwargs):
    """Open `device` ('cpu', 'sim', 'pynq') and return (driver, device). The expected configuration ID is
    the artifact's (manifest 'hw_config'/'config_id', written by hardware lowering) when it has one,
    else the shell's own configuration (weights are laid out by the driver at load)."""
    from edgestream.host.devices import open_device

    expected = None
    if artifact is not None:
        m = artifact.manifest
        cid = m.get("config_id") or (m.get("hw_config") or {}).get("config_id")
        if cid:
            expected = int(cid, 16)
    dev = open_device(device, **device_kwargs)
    try:
        return AccelDriver(dev, expected_config_id=expected), dev
    except BaseException:
        dev.close()
        raise


def predicted_cycles(n: int, k: int, ntok: int, planes: int, geo: Geometry = Geometry(), latency: int = 100) -> int:
    """The shell's analytic cycle model of one single-descriptor MATMUL program (benchmarks compare it
    with the simulation): program fetch, activation ingest, weight streaming, result drain."""
    fetch = 3 * (latency + 6)  # header, matmul and end descriptors (prefetched: one latency + beats)
    ingest = ntok * geo.groups(k)
    lookups = geo.weight_beats(n, k, planes) * ntok
    stream = geo.weight_beats(n, k, planes)
    drain = geo.row_batches(n) * ntok
    return int(fetch + latency + ingest + max(lookups, stream) + 12 + math.ceil(drain / 16) * 4 + latency // 4)


# ---------------------------------------------------------------- bench
def _perf_model_cycles(n: int, k: int, ntok: int, planes: int, latency: int) -> tuple[str, int]:
    """Cycles the compiler's performance model charges for one TLMM command (engine + issue), with the
    shell's own analytic model as fallback when compiler.perfmodel cannot be imported."""
    try:
        from edgestream.compiler.perfmodel import ISSUE_CYCLES, command_cost

        cfg = rm.shell_config()
        kind, bits = ("int", planes) if planes > 1 else ("ternary", 2)
        c = command_cost(cfg, n, k, kind, bits, ntok)
        return "compiler.perfmodel.command_cost", int(c["engine_cycles"] + ISSUE_CYCLES)
    except Exception:  # the lowering engineer's module may be mid-change
        return "driver.predicted_cycles", predicted_cycles(n, k, ntok, planes, latency=latency)


def bench_session(sess, prompt_ids: list[int], decode_tokens: int = 2, latency: int | None = None) -> dict:
    """Prefill `prompt_ids` and run `decode_tokens` greedy decode steps on an accelerator session;
    per phase: cycles per token, AXI read-bus utilization (bytes moved per cycle / bus peak), stalls,
    and the performance model's error against the measured cycles (raw and after calibrating one
    fixed per-command overhead: the median of measured - model)."""
    import time

    kernel = sess.executor.kernel
    if not isinstance(kernel, AccelKernel):
        raise DeviceError("bench needs an accelerator device (--device sim or pynq)")
    lat = latency if latency is not None else getattr(sess.accel_device, "latency", 100)
    planes = {name: (lay.bits if lay.bitserial else 1) for name, lay in sess.accel.layers.items()}
    ex = sess.executor
    ex.reset(len(prompt_ids) + decode_tokens + 1)
    kernel.record = True
    kernel.log.clear()
    t0 = time.perf_counter()
    logits = ex.forward(np.array(prompt_ids))[-1]
    wall_prefill = time.perf_counter() - t0
    n_pre = len(kernel.log)
    wall_decode = []
    for _ in range(decode_tokens):
        tok = int(np.argmax(logits))
        t1 = time.perf_counter()
        logits = ex.forward(np.array([tok]))[-1]
        wall_decode.append(time.perf_counter() - t1)
    kernel.record = False
    log = kernel.log
    source = None
    rows = []
    for name, ntok, c in log:
        lay = sess.accel.layers[name]
        source, model = _perf_model_cycles(lay.n, lay.k, ntok, planes[name], lat)
        rows.append((name, ntok, c, model))
    # one fixed shell overhead per MATMUL descriptor (a command of ntok tokens is ceil(ntok / MAXTOK) tiles)
    tiles = [-(-t // sess.accel.geo.max_tok) for _, t, _, _ in rows]
    overhead = float(np.median([(c["cycles"] - m) / d for (_, _, c, m), d in zip(rows, tiles, strict=True)])) \
        if rows else 0.0

    def phase(sel, tokens, wall):
        cyc = sum(c["cycles"] for _, _, c, _ in sel)
        model = sum(m for _, _, _, m in sel)
        tot = {k: sum(c[k] for _, _, c, _ in sel) for k in ("rd_beats", "wr_beats", "stall_wgt", "stall_act",
                                                            "stall_res", "seq_cycles", "wgt_beats")}
        div = max(cyc, 1)
        return {"tokens": tokens, "commands": len(sel), "cycles": cyc, "cycles_per_token": cyc / max(tokens, 1),
                "read_bytes": tot["rd_beats"] * BEAT, "read_bus_util": tot["rd_beats"] / div,
                "weight_bus_util": tot["wgt_beats"] / div,
                "stall_wgt_frac": tot["stall_wgt"] / div, "stall_act_frac": tot["stall_act"] / div,
                "stall_res_frac": tot["stall_res"] / div, "seq_frac": tot["seq_cycles"] / div,
                "model_cycles": model, "model_err": (model - cyc) / div,
                "model_err_calibrated": (model + overhead * sum(-(-t // sess.accel.geo.max_tok) for _, t, _, _ in sel)
                                 - cyc) / div,
                "wall_s_per_token": wall / max(tokens, 1), **tot}

    raw = [abs(m - c["cycles"]) / c["cycles"] for _, _, c, m in rows]
    cal = [abs(m + overhead * d - c["cycles"]) / c["cycles"] for (_, _, c, m), d in zip(rows, tiles, strict=True)]
    return {
        "device": sess.device,
        "latency_cycles": lat,
        "prefill": phase(rows[:n_pre], len(prompt_ids), wall_prefill),
        "decode": phase(rows[n_pre:], decode_tokens, sum(wall_decode)),
        "decode_wall_s": wall_decode,
        "perf_model": {"source": source, "overhead_cycles": overhead,
                       "mean_abs_err_raw": float(np.mean(raw)) if raw else 0.0,
                       "mean_abs_err_calibrated": float(np.mean(cal)) if cal else 0.0,
                       "max_abs_err_calibrated": float(np.max(cal)) if cal else 0.0},
        "commands": [{"layer": n, "ntok": t, "cycles": c["cycles"], "model": m} for n, t, c, m in rows],
    }
