"""Host-side view of the tlmm_engine streams: command word, activation and weight beats built from
the package's own packed codes (edgestream.formats.ternary.pack_gindex / pack_base3,
edgestream.tlmm.bit_planes) and the expected results from edgestream.tlmm. Shared by the cocotb bench
and benchmarks/bench_tlmm_engine.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgestream.formats.ternary import gindex_bits, pack_base3, pack_gindex
from edgestream.tlmm import bit_planes, dense_matmul, tlmm_bitserial, tlmm_ternary


@dataclass(frozen=True)
class EngineConfig:
    G: int = 5
    T: int = 4
    Q: int = 4
    AW: int = 8
    ACCW: int = 32
    MAXK: int = 64
    MAXTOK: int = 4
    TABLE_BINARY: int = 0
    OFIFO_DEPTH: int = 16
    INT_DENSE: int = 0

    @property
    def CB(self) -> int:   # code slot width
        return self.G if self.TABLE_BINARY else gindex_bits(self.G)

    def params(self) -> dict:
        return dict(G=self.G, T=self.T, Q=self.Q, AW=self.AW, ACCW=self.ACCW, MAXK=self.MAXK,
                    MAXTOK=self.MAXTOK, TABLE_BINARY=self.TABLE_BINARY, OFIFO_DEPTH=self.OFIFO_DEPTH,
                    **({"INT_DENSE": 1} if self.INT_DENSE else {}))


def command_word(k: int, n: int, ntok: int, bitserial: bool = False, bits: int = 8, dense: bool = False) -> int:
    """dense: es_seq's word for an int-dense region (bit-serial flag and bits as the TLMM instruction has
    them, bit 55 set)."""
    return (k | (n << 16) | (ntok << 40) | ((bits if bitserial else 0) << 48) | (int(bitserial) << 52)
            | (int(dense) << 55))


@dataclass
class Job:
    """One engine command with its streams and the reference result."""
    cmd: int
    act_beats: list[int]
    w_beats: list[int]
    expected: np.ndarray          # int32 [ntok, N]
    n: int
    ntok: int
    lookups: int                  # useful lookups (rows x groups x planes x tokens)
    weights: int                  # useful weights (rows x K x planes x tokens)


def _act_beats(cfg: EngineConfig, q: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Token by token, one group of G activations per beat; lanes past K carry garbage (the engine
    must ignore them)."""
    ntok, k = q.shape
    ng = -(-k // cfg.G)
    beats = []
    for t in range(ntok):
        row = np.concatenate([q[t].astype(np.int64), rng.integers(-128, 128, ng * cfg.G - k)])
        for g in range(ng):
            word = 0
            for i, v in enumerate(row[g * cfg.G:(g + 1) * cfg.G]):
                word |= (int(v) & 0xFF) << (i * cfg.AW)
            beats.append(word)
    return beats


def _w_beats(cfg: EngineConfig, planes: np.ndarray, pad_code: int, rng: np.random.Generator,
             garbage_hi: int) -> list[int]:
    """planes [nplanes, N, ng] codes -> beats in the engine's order (row batch, plane, chunk).
    Padding rows get pad_code; padding groups past ng get random valid codes (masked by the engine)."""
    npl, n, ng = planes.shape
    nrb = -(-n // cfg.Q)
    nch = -(-ng // cfg.T)
    full = rng.integers(0, garbage_hi, size=(npl, nrb * cfg.Q, nch * cfg.T))
    full[:, n:, :] = pad_code
    full[:, :n, :ng] = planes
    beats = []
    for rb in range(nrb):
        for p in range(npl):
            for c in range(nch):
                blk = full[p, rb * cfg.Q:(rb + 1) * cfg.Q, c * cfg.T:(c + 1) * cfg.T]   # [Q, T]
                word = 0
                for lane, code in enumerate(blk.reshape(-1)):
                    word |= int(code) << (lane * cfg.CB)
                beats.append(word)
    return beats


def ternary_job(cfg: EngineConfig, q: np.ndarray, trits: np.ndarray, rng: np.random.Generator,
                base3: bool = False) -> Job:
    """q int8 [ntok, K], trits int8 [N, K]. base3: take the codes from the 1.6 bpw base-3 packer
    (G = 5 only) instead of pack_gindex."""
    q = np.atleast_2d(q).astype(np.int8)
    if base3:
        assert cfg.G == 5
        codes = pack_base3(trits).astype(np.int64)
    else:
        codes = pack_gindex(trits, cfg.G).astype(np.int64)
    expected = tlmm_ternary(q, codes, cfg.G)
    assert np.array_equal(expected, dense_matmul(q, trits))   # the reference agrees with itself
    zero = (3**cfg.G - 1) // 2
    n, k = trits.shape
    return Job(command_word(k, n, q.shape[0]), _act_beats(cfg, q, rng),
               _w_beats(cfg, codes[None], zero, rng, 3**cfg.G), expected, n, q.shape[0],
               n * codes.shape[1] * q.shape[0], n * k * q.shape[0])


def bitserial_job(cfg: EngineConfig, q: np.ndarray, w: np.ndarray, bits: int, rng: np.random.Generator) -> Job:
    """q int8 [ntok, K], w int [N, K] in [-2**(bits-1), 2**(bits-1))."""
    q = np.atleast_2d(q).astype(np.int8)
    planes = bit_planes(w, bits, cfg.G).astype(np.int64)
    expected = tlmm_bitserial(q, planes, bits, cfg.G)
    assert np.array_equal(expected, dense_matmul(q, w))
    n, k = w.shape
    return Job(command_word(k, n, q.shape[0], True, bits), _act_beats(cfg, q, rng),
               _w_beats(cfg, planes, 0, rng, 2**cfg.G), expected, n, q.shape[0],
               n * planes.shape[2] * bits * q.shape[0], n * k * bits * q.shape[0])


def dense_job(cfg: EngineConfig, q: np.ndarray, w: np.ndarray, rng: np.random.Generator, bits: int = 8) -> Job:
    """q int8 [ntok, K], w int8 [N, K]: the int-dense beats exactly as the compiler packs an R_INT_DENSE
    region (edgestream.compiler.lowering.dense_beats), with random bytes in the padding slots (padding
    rows and the columns past K: the engine must ignore them)."""
    from edgestream.compiler.lowering import dense_beats

    q = np.atleast_2d(q).astype(np.int8)
    w = np.asarray(w, np.int8)
    n, k = w.shape
    expected = dense_matmul(q, w)
    ng = -(-k // cfg.G)
    nch, nrb = -(-ng // cfg.T), -(-n // cfg.Q)
    # garbage where the packer writes padding zeros (rows >= N, columns >= K): the geometry is the same
    full = rng.integers(-128, 128, size=(nrb * cfg.Q, nch * cfg.T * cfg.G)).astype(np.int8)
    full[:n, :k] = w
    beats = dense_beats(full, cfg.Q, cfg.T, cfg.G)                  # [nbeats, Q*T] int8
    words = [int.from_bytes(b.astype(np.uint8).tobytes(), "little") for b in beats]
    return Job(command_word(k, n, q.shape[0], True, bits, dense=True), _act_beats(cfg, q, rng), words, expected,
               n, q.shape[0], n * ng * cfg.G * q.shape[0], n * k * q.shape[0])


def check_results(cfg: EngineConfig, job: Job, words: list[int], tokens: list[int]) -> None:
    """Result beats (row batch, token) -> compare with job.expected for the real rows."""
    nrb = -(-job.n // cfg.Q)
    assert len(words) == nrb * job.ntok, f"expected {nrb * job.ntok} result beats, got {len(words)}"
    mask = (1 << cfg.ACCW) - 1
    got = np.zeros((job.ntok, nrb * cfg.Q), dtype=np.int64)
    i = 0
    for rb in range(nrb):
        for t in range(job.ntok):
            assert tokens[i] == t, f"result beat {i}: token {tokens[i]}, expected {t}"
            for qq in range(cfg.Q):
                v = (words[i] >> (qq * cfg.ACCW)) & mask
                got[t, rb * cfg.Q + qq] = v - (1 << cfg.ACCW) if v >> (cfg.ACCW - 1) else v
            i += 1
    got = got[:, :job.n]
    if not np.array_equal(got, job.expected):
        bad = np.argwhere(got != job.expected)[:5]
        got_v = [int(got[tuple(b)]) for b in bad]
        want_v = [int(job.expected[tuple(b)]) for b in bad]
        raise AssertionError(f"mismatch at (token, row) {bad.tolist()}: got {got_v}, expected {want_v}")
