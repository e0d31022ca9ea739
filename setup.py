"""loadmaster's two compiled parts, both optional: the arithmetic of resource bags and the
fast engine's key re-reads.

Everything else is in pyproject.toml. Without a C compiler the build skips them and the same
operations run in Python (same results, slower): see docs/performance.md.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "loadmaster._bags",
            sources=["src/loadmaster/_bags.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "loadmaster.scheduling._rereads",
            sources=["src/loadmaster/scheduling/_rereads.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
