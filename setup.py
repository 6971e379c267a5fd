"""Build script: compiles the Cython core of the EXI codec.

The compiled extensions are mandatory for wheels. A source install that cannot compile it stops
with a plain message instead of silently installing a slow pure-Python engine.
"""
import os
import sys

from setuptools import Extension, setup

# (module name, source) of every compiled module; each has a .pyi beside it.
COMPILED = [
    # The EXI engine: one source (Cython pure-Python mode), compiled under its own module name so
    # that the pure-Python twin (exi._engine, EXI_IMPL=python) stays importable beside it.
    ("exi._cengine", "exi/_engine.py"),
    # The certificate walker of the pki validator (DER parsing and name attributes); the
    # pure-Python twin in pki/_certinfo.py is used only with PLUGCHARGE_PKI_PURE=1.
    ("pki._fastcert", "pki/_fastcert.pyx"),
]


def _extensions():
    if not COMPILED:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # pragma: no cover - build-system requires Cython
        sys.exit("plugcharge: Cython is required to build the compiled EXI engine (pip install Cython)")
    exts = [Extension(name, [src], extra_compile_args=[] if os.name == "nt" else ["-O2"]) for name, src in COMPILED]
    return cythonize(exts, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=_extensions())
