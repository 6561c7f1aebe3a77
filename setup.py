"""Build of edgestream's optional compiled CPU kernels (metadata lives in pyproject.toml).

The C library host/kernels/csrc/eskernel.c is compiled at install with the machine's C compiler
(no prebuilt binaries). It carries every ISA path (scalar, AVX2, AVX-512/VNNI on x86, NEON on
aarch64) behind GCC target attributes and picks one at run time, so no -march flag is used.
-ffp-contract=off is required by the numerics contract (no fused multiply-add). Threads are a small
pthread pool inside the library. If the extension cannot be built (no compiler, no Python headers)
the install still succeeds (optional=True) and edgestream falls back to the numpy kernel.
"""

from setuptools import Extension, setup

_BASE_CFLAGS = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-Wall"]


setup(
    ext_modules=[
        Extension(
            "edgestream.host.kernels._eskernel",
            sources=["host/kernels/csrc/eskernel.c", "host/kernels/csrc/esplan.c", "host/kernels/csrc/pymodule.c"],
            depends=["host/kernels/csrc/eskernel.h"],
            include_dirs=["host/kernels/csrc"],
            extra_compile_args=[*_BASE_CFLAGS, "-pthread"],
            extra_link_args=["-pthread", "-lm"],
            optional=True,
        )
    ],
)
