"""Build script: generates the EXI grammar tables from the XSDs and compiles the Cython cores.

The grammar tables (exi/_generated) are not in the repository: the XSDs they come from are ISO and
DIN material. ``build_py`` runs exi/codegen/_build.py first, which generates them from the XSDs of
``EXI_XSD_DIR``, or keeps those generated before in this checkout, or stops with a plain message.

The compiled extensions are mandatory for wheels. A source install that cannot compile it stops
with a plain message instead of silently installing a slow pure-Python engine.
"""
import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.command.build_py import build_py as _build_py

try:
    from setuptools.errors import CCompilerError, CompileError, ExecError as DistutilsExecError, PlatformError as DistutilsPlatformError
except ImportError:  # pragma: no cover - older setuptools
    from distutils.errors import CCompilerError, CompileError, DistutilsExecError, DistutilsPlatformError

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


class build_ext(_build_ext):
    """build_ext that says plainly what is missing when the C compiler fails."""

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except (CCompilerError, CompileError, DistutilsExecError, DistutilsPlatformError) as exc:
            sys.exit(
                f"plugcharge: could not compile {ext.name} ({exc}).\n"
                "plugcharge needs its compiled extensions: install a C compiler and the Python headers "
                "(e.g. 'apt-get install build-essential python3-dev'), or install a prebuilt wheel."
            )


HERE = os.path.dirname(os.path.abspath(__file__))


class build_py(_build_py):
    """build_py that first makes the EXI grammar tables (exi/codegen/_build.py)."""

    def run(self):  # type: ignore[no-untyped-def]
        script = os.path.join(HERE, "exi", "codegen", "_build.py")  # in an sdist too (MANIFEST.in)
        done = subprocess.run([sys.executable, script, os.path.join(HERE, "exi", "_generated")])
        if done.returncode != 0:
            sys.exit(done.returncode)
        super().run()


setup(ext_modules=_extensions(), cmdclass={"build_ext": build_ext, "build_py": build_py})
