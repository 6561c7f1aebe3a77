"""Decoder-LM recognition for ONNX files exported from PyTorch (placeholder: see match_decoder)."""

from __future__ import annotations


def match_decoder(model, src):
    """Returns (decoder IR graph, None) when `model` is a recognized decoder-only LM, else None."""
    return None
