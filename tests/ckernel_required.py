"""The C kernel tests' common gate: the extension loads, or the module skips (which conftest.py turns
into a failure under CI / EDGESTREAM_STRICT=1, so an unbuilt extension never passes silently)."""

from __future__ import annotations

import pytest

from edgestream.host.kernels import c_kernel as ck


def require_c_kernel() -> None:
    try:
        ck.load_library()
    except ck.CKernelUnavailable as err:
        pytest.skip(f"C kernel extension not built: {err}", allow_module_level=True)
