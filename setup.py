"""Build of edgestream's optional compiled CPU kernels (metadata lives in pyproject.toml).

The C library host/kernels/csrc/eskernel.c is compiled at install with the machine's C compiler
(no prebuilt binaries). It carries every ISA path (scalar, AVX2, AVX-512/VNNI on x86, NEON on
aarch64) behind GCC target attributes and picks one at run time, so no -march flag is used.
-ffp-contract=off is required by the numerics contract (no fused multiply-add). OpenMP is used for
threads when the compiler has it; a compiler without it gets a single-threaded build. If the
extension cannot be built at all the install still succeeds and edgestream falls back to numpy.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_BASE_CFLAGS = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-Wall"]


class _BuildExt(build_ext):
    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as err:  # compiler without OpenMP: retry single-threaded
            if "-fopenmp" not in ext.extra_compile_args:
                raise
            print(
                f"edgestream: building {ext.name} without OpenMP ({err}): the C kernel runs single-threaded"
            )
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a != "-fopenmp"]
            ext.extra_link_args = [a for a in ext.extra_link_args if a != "-fopenmp"]
            super().build_extension(ext)


setup(
    ext_modules=[
        Extension(
            "edgestream.host.kernels._eskernel",
            sources=["host/kernels/csrc/eskernel.c"],
            depends=["host/kernels/csrc/eskernel.h"],
            include_dirs=["host/kernels/csrc"],
            extra_compile_args=[*_BASE_CFLAGS, "-fopenmp"],
            extra_link_args=["-fopenmp", "-lm"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": _BuildExt},
)
