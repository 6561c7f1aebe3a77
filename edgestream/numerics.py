"""The exact arithmetic of the quantized path (contract: docs/numerics.md, version NUMERICS_VERSION).

Every function here is the golden definition that the C kernels and the RTL implement bit for bit.
Rules that make that possible:
  * every reduction (dot products, sums of squares, softmax sums) is done in integers, so its
    order does not matter;
  * float work is IEEE float32, one rounding per listed operation, in the listed order, no fused
    multiply-add; per-token scalars are float64 and rounded to float32 once, where stated;
  * transcendental functions come from tables stored in the artifact (RoPE) or from the exp2
    table below, never from a libm.
"""

from __future__ import annotations

import numpy as np

NUMERICS_VERSION = 1

F32 = np.float32
ACT_QMAX = 127
ACT_EPS = F32(1e-5)  # floor of the absmax, as BitNet's activation quantizer
RMS_FRAC_BITS = 15  # block fixed point of the sum of squares: |z| <= 2**15
EXP2_TABLE_BITS = 8  # 256-entry table of 2**(i/256) with linear interpolation
EXP_MIN = F32(-64.0)  # exponents below this give exactly 0
LOG2E = F32(1.4426950408889634)
PROB_FRAC_BITS = 15  # attention weights as integers <= 2**15
ATTN_W_QMAX = 32767


def _exp2_tables() -> tuple[np.ndarray, np.ndarray]:
    n = 1 << EXP2_TABLE_BITS
    t = np.exp2(np.arange(n + 1, dtype=np.float64) / n).astype(F32)
    return t[:n].copy(), (t[1:] - t[:-1]).astype(F32)


EXP2_T, EXP2_D = _exp2_tables()


def quant_act(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row INT8 absmax quantization of float32 rows.

    m = max(max|u|, 1e-5);  c = float32(127) / m;  q = clamp(rint(u * c), -128, 127)
    Returns (q int8 [..., K], m float32 [...]) -- m, not c, is what dequantization needs.
    """
    u = np.asarray(u, dtype=F32)
    m = np.maximum(np.max(np.abs(u), axis=-1), ACT_EPS).astype(F32)
    c = (F32(ACT_QMAX) / m).astype(F32)
    q = np.clip(np.rint(u * c[..., None]), -128, 127).astype(np.int8)
    return q, m


def rms_factor(x: np.ndarray, eps: float) -> np.ndarray:
    """r = 1/sqrt(mean(x^2) + eps) per row, with the sum of squares in block fixed point.

    e = exponent with max|x| = f * 2**e, f in [0.5, 1);  z_i = rint(x_i * 2**(15 - e)) (|z_i| <= 2**15);
    S = sum z_i^2 in int64 (exact, any order);  ms = float64(S) * 2**(2(e - 15)) / K;
    r = 1 / sqrt(ms + float64(eps))  (float64).
    """
    x = np.asarray(x, dtype=F32)
    k = x.shape[-1]
    amax = np.max(np.abs(x), axis=-1)
    _, e = np.frexp(amax)
    e = np.where(amax == 0, 0, e).astype(np.int32)
    z = np.rint(np.ldexp(x, (RMS_FRAC_BITS - e)[..., None])).astype(np.int64)
    s = np.sum(z * z, axis=-1)
    ms = np.ldexp(s.astype(np.float64), 2 * (e - RMS_FRAC_BITS)) / np.float64(k)
    return 1.0 / np.sqrt(ms + np.float64(eps))


def norm_quant(x: np.ndarray, g: np.ndarray | None, eps: float | None) -> tuple[np.ndarray, np.ndarray]:
    """RMSNorm (optional) fused with INT8 activation quantization.

    u = x * g (float32; u = x when there is no norm);  (q, m) = quant_act(u);
    r = rms_factor(x, eps) (r = 1 without a norm);  s = float32(float64(m) / 127 * r).
    RMSNorm's 1/rms is a positive per-row factor, so it changes only the scale, never q.
    Returns (q int8, s float32 per row): the real input of the next linear is s * q.
    """
    x = np.asarray(x, dtype=F32)
    u = x * np.asarray(g, dtype=F32) if g is not None else x
    q, m = quant_act(u)
    s = m.astype(np.float64) / np.float64(ACT_QMAX)
    if g is not None:
        s = s * rms_factor(x, eps)
    return q, s.astype(F32)


def dequant(acc: np.ndarray, s_tok: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y[t, o] = float32(acc[t, o]) * float32(beta[o] * s_tok[t]).

    acc int32 [T, N]; s_tok float32 [T]; beta float32 [N] (per-tensor scales are broadcast).
    """
    f = (np.asarray(beta, dtype=F32)[None, :] * np.asarray(s_tok, dtype=F32)[:, None]).astype(F32)
    return (acc.astype(F32) * f).astype(F32)


def rope_tables(head_dim: int, max_pos: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [max_pos, head_dim/2] computed in float64 and rounded once to float32 (stored in the
    artifact, so executors never evaluate a trig function)."""
    half = head_dim // 2
    inv = 1.0 / (np.float64(theta) ** (np.arange(0, half, dtype=np.float64) * 2.0 / head_dim))
    ang = np.arange(max_pos, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate-half RoPE (HF convention) on x [T, H, D] with cos/sin [T, D/2]:
    lo' = lo*cos - hi*sin ; hi' = hi*cos + lo*sin, each product rounded, then the add."""
    half = x.shape[-1] // 2
    lo, hi = x[..., :half], x[..., half:]
    c, s = cos[:, None, :], sin[:, None, :]
    return np.concatenate([(lo * c) - (hi * s), (hi * c) + (lo * s)], axis=-1).astype(F32)


def exp2_neg(z: np.ndarray) -> np.ndarray:
    """2**z for float32 z <= 0 (z < -64 gives 0; NaN gives NaN).

    n = floor(z); f = float32(z - n) (rounded; 1.0 carries into n); i = floor(f * 256);
    r = f * 256 - i (exact);
    p = T[i] + D[i] * r (one mul, one add); result = p * 2**n.
    """
    z = np.asarray(z, dtype=F32)
    nan = np.isnan(z)  # propagates (an inf - inf score upstream), never indexes the table
    zero = z < EXP_MIN
    z = np.where(nan, F32(0), np.maximum(z, EXP_MIN))
    n = np.floor(z)
    f = (z - n).astype(F32)
    # for -2**-25 <= z < 0, z - n (n = -1) rounds to 1.0: carry it into n, so the table index stays
    # in 0..255 and the result is 1.0 (2**z correctly rounded); the RTL's es_exp2neg does the same
    one = f == F32(1)
    n = np.where(one, n + 1, n)
    f = np.where(one, F32(0), f).astype(F32)
    fs = (f * F32(1 << EXP2_TABLE_BITS)).astype(F32)
    i = np.floor(fs).astype(np.int64)
    r = (fs - i.astype(F32)).astype(F32)
    p = (EXP2_T[i] + (EXP2_D[i] * r).astype(F32)).astype(F32)
    out = np.ldexp(p, n.astype(np.int32)).astype(F32)
    return np.where(nan, F32(np.nan), np.where(zero, F32(0), out)).astype(F32)


def exp_neg(t: np.ndarray) -> np.ndarray:
    """e**t for float32 t <= 0 as exp2_neg(t * log2(e))."""
    return exp2_neg((np.asarray(t, dtype=F32) * LOG2E).astype(F32))


def quant_heads(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """INT8 per-(token, head) absmax for Q, K and V: returns (q int8 [T, H, D], d float32 [T, H]) with
    d = m / 127 (float32 division), the real value being d * q."""
    q, m = quant_act(x)
    return q, (m / F32(ACT_QMAX)).astype(F32)


def attention(
    qq: np.ndarray,
    dq: np.ndarray,
    kq: np.ndarray,
    dk: np.ndarray,
    vq: np.ndarray,
    dv: np.ndarray,
    q_pos: np.ndarray,
    scale: np.float32,
) -> np.ndarray:
    """Causal attention with an INT8 KV cache, for any leading batch dims (e.g. heads).

    qq [..., T, D] int8, dq [..., T]; kq, vq [..., S, D] int8, dk, dv [..., S]; q_pos [T] (absolute
    positions; key j is visible to query t when j <= q_pos[t]); scale = float32(1/sqrt(D)).
      dot[t, j] = sum_d qq*kq                                          (integer, exact)
      s[t, j]   = float32(dot) * ((dq[t] * dk[j]) * scale)             (float32)
      e[t, j]   = exp_neg(s - max_j s)                                 (masked keys: 0)
      E[t, j]   = rint(e * 2**15)                                      (integer, <= 2**15)
      a[t, j]   = float32(E) * dv[j]                                   (float32)
      A[t, j]   = rint(a * (32767 / max_j a))                          (integer <= 32767)
      num[t, d] = sum_j A * vq[j, d];  den[t] = sum_j E                (integer, exact)
      o[t, d]   = float32(num) * float32(float64(max_j a) / 32767 / float64(den))
    The integer sums run through float64 matmuls, exact because every partial sum is < 2**53.
    Returns o float32 [..., T, D].
    """
    dot = np.matmul(qq.astype(np.float64), np.swapaxes(kq.astype(np.float64), -1, -2))
    c = ((dq[..., :, None] * dk[..., None, :]).astype(F32) * scale).astype(F32)
    s = (dot.astype(F32) * c).astype(F32)
    mask = np.arange(kq.shape[-2])[None, :] <= np.asarray(q_pos)[:, None]
    s = np.where(mask, s, F32(-np.inf))
    smax = np.max(s, axis=-1, keepdims=True)
    e = np.where(mask, exp_neg(np.where(mask, s - smax, F32(0))), F32(0))
    big_e = np.rint(np.ldexp(e, PROB_FRAC_BITS))
    a = (big_e.astype(F32) * dv[..., None, :]).astype(F32)
    amax = np.max(a, axis=-1)
    amax_safe = np.where(amax > 0, amax, F32(1)).astype(F32)
    big_a = np.rint(a * (F32(ATTN_W_QMAX) / amax_safe)[..., None].astype(F32)).astype(np.float64)
    num = np.matmul(big_a, vq.astype(np.float64))
    den = np.sum(big_e.astype(np.int64), axis=-1)
    f = (amax.astype(np.float64) / np.float64(ATTN_W_QMAX) / den.astype(np.float64)).astype(F32)
    return (num.astype(F32) * f[..., None]).astype(F32)


def relu2_mul(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """BitNet FFN: r = max(gate, 0); h = (r * r) * up."""
    r = np.maximum(np.asarray(gate, F32), F32(0))
    return ((r * r).astype(F32) * up).astype(F32)


def silu_mul(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """SwiGLU: e = exp_neg(-|g|); sigma = 1/(1+e) for g >= 0, e/(1+e) for g < 0;
    h = (g * sigma) * up."""
    g = np.asarray(gate, F32)
    e = exp_neg(-np.abs(g))
    den = (F32(1) + e).astype(F32)
    sig = np.where(g >= 0, F32(1) / den, e / den).astype(F32)
    return ((g * sig).astype(F32) * up).astype(F32)
