"""Exact definitions of the general-graph ops that the compiler folds and the host executes the same way
(docs/onnx.md): QONNX Quant's rounding modes, inference BatchNormalization's float32 order, and the
data movement around convolutions (im2col, max pooling) with ONNX's padding rules."""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def qonnx_round(v: np.ndarray, mode: str) -> np.ndarray:
    """QONNX Quant's rounding (qonnx intquant.resolve_rounding_mode) in the input's float type, as qonnx
    computes it: HALF_UP's |v| + 0.5 is an add in that type, so 0.49999997 rounds to 1 as in qonnx."""
    v = np.asarray(v)
    if mode == "ROUND":  # numpy's round: half to even
        return np.rint(v)
    if mode == "CEIL":
        return np.ceil(v)
    if mode == "FLOOR":
        return np.floor(v)
    if mode == "DOWN":
        return np.trunc(v)
    half = v.dtype.type(0.5)
    a = np.abs(v)
    mag = {"UP": lambda: np.ceil(a), "HALF_UP": lambda: np.floor(a + half), "HALF_DOWN": lambda: np.ceil(a - half)}
    return (np.sign(v) * mag[mode]()).astype(v.dtype)


def batchnorm_affine(scale, bias, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Inference BatchNormalization as onnxruntime's CPU kernel computes it, all float32:
    inv = 1 / sqrt(var + eps); a = scale * inv; b = bias - mean * a; then y = x * a + b (two roundings
    per element, no fused multiply-add). Measured bit-identical to onnxruntime 1.32 on random data."""
    s, b, m, v = (np.asarray(t, F32).reshape(-1) for t in (scale, bias, mean, var))
    inv = (F32(1.0) / np.sqrt((v + F32(eps)).astype(F32))).astype(F32)
    a = (s * inv).astype(F32)
    return a, (b - (m * a).astype(F32)).astype(F32)


def conv_pads(in_hw, kernel, strides, dilations, pads, auto_pad: str, ceil_mode: int = 0) -> tuple[list, list]:
    """ONNX Conv/MaxPool padding: (pads [top, left, bottom, right] with any ceil_mode extra at the end,
    output [OH, OW]). auto_pad SAME_UPPER/SAME_LOWER: output ceil(H / s), the odd pad at the end/start."""
    out, begin, end = [], [], []
    for i, h in enumerate(in_hw):
        k, s, d = kernel[i], strides[i], dilations[i]
        ek = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-h // s)
            total = max((o - 1) * s + ek - h, 0)
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            pb, pe = lo, total - lo
        elif auto_pad == "VALID":
            pb, pe = 0, 0
            o = (h - ek) // s + 1
        else:
            pb, pe = pads[i], pads[i + len(in_hw)]
            span = h + pb + pe - ek
            o = (math.ceil(span / s) if ceil_mode else span // s) + 1
            if ceil_mode and (o - 1) * s >= h + pb:  # a last window starting in the end pad is dropped
                o -= 1
            pe = max(pe, (o - 1) * s + ek - h - pb)  # ceil_mode's extra reach is padding too
        if o < 1:
            raise ValueError(f"kernel {ek} (dilated) does not fit input dim {h} with pads {pb}/{pe}")
        out.append(o)
        begin.append(pb)
        end.append(pe)
    return begin + end, out


def _windows(x: np.ndarray, kernel, strides, dilations, pads, out_hw, fill) -> np.ndarray:
    """[N, C, OH, OW, kh, kw] windows of x [N, C, H, W] padded with `fill`."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    w = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    w = w[:, :, ::sh, ::sw, ::dh, ::dw]
    return w[:, :, : out_hw[0], : out_hw[1]]


def im2col(x: np.ndarray, fill, kernel, strides, dilations, pads, auto_pad: str) -> np.ndarray:
    """x [N, C, H, W] -> columns [N, OH, OW, C*kh*kw], K ordered (c, i, j) as Conv's weight [M, C, kh, kw]
    flattens; the pad is `fill` (the activation's zero point, so a padded element dequantizes to 0)."""
    p, out = conv_pads(x.shape[2:], kernel, strides, dilations, pads, auto_pad)
    w = _windows(x, kernel, strides, dilations, p, out, fill)
    n, c = x.shape[:2]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1, 4, 5)).reshape(n, out[0], out[1], -1)


def maxpool2d(x: np.ndarray, kernel, strides, dilations, pads, auto_pad: str, ceil_mode: int) -> np.ndarray:
    """ONNX MaxPool on [N, C, H, W]: padded elements never win (-inf, or the integer type's minimum,
    which no window made only of padding can reach: ONNX requires pads < kernel)."""
    p, out = conv_pads(x.shape[2:], kernel, strides, dilations, pads, auto_pad, ceil_mode)
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    return _windows(x, kernel, strides, dilations, p, out, fill).max(axis=(4, 5))
