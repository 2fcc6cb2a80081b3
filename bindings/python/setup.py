"""Build hooks for the wavesync wheel (metadata is in pyproject.toml).

The wheel carries the built extension, a native shared library, so:

* ``build_py`` copies it into the package: ``$WAVESYNC_LIB`` if set, else
  ``<repo>/dist/wavesync.so`` (built by ``make ext``). A build without it fails with the fix.
* ``bdist_wheel`` tags the wheel for the platform (``py3-none-<platform>``): the library does
  not use Python's C API, so any Python 3 on that platform can use it, but only there.
"""

import os
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - older setuptools with the `wheel` package
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent


def built_extension() -> Path:
    env = os.environ.get("WAVESYNC_LIB")
    lib = Path(env) if env else HERE.parent.parent / "dist" / "wavesync.so"
    if not lib.is_file():
        raise SystemExit(
            f"wavesync: the built extension {lib} is missing.\n"
            "Build it first with `make ext` at the repository root, or point WAVESYNC_LIB "
            "at a built wavesync shared library."
        )
    return lib


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = built_extension()
        # Keep the library's own suffix (.so/.dylib/.dll); wavesync.path() looks for each.
        target = Path(self.build_lib) / "wavesync" / ("wavesync" + lib.suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(lib), str(target))


class BinaryDistribution(Distribution):
    """Contains a native library: platlib install, platform-specific wheel."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildPy, "bdist_wheel": PlatformWheel})
