"""The one compiled part of loadmaster: the fast engine's key re-reads (optional).

Everything else is in pyproject.toml. Without a C compiler the build skips the extension and
the fast engine re-reads keys in Python instead (same decisions, slower): see
docs/performance.md.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "loadmaster.scheduling._rereads",
            sources=["src/loadmaster/scheduling/_rereads.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
