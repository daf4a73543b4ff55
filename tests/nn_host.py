"""Build ``tests/cpp/nn_host.cpp`` (a host that loads a TorchScript file as nn~'s Backend does)
against the libtorch inside the installed torch wheel, once per source, torch and compiler.

The wheel's CMake config (``torch.utils.cmake_prefix_path``) asks for the CUDA toolkit because
the wheel is a CUDA build, so the build is one ``g++`` line instead: the wheel's ``include/``,
``include/torch/csrc/api/include`` and ``lib/`` (``-ltorch -ltorch_cpu -lc10``, rpath to
``lib/``) and ``-D_GLIBCXX_USE_CXX11_ABI`` as ``torch._C._GLIBCXX_USE_CXX11_ABI`` says. The
binary is kept in ``cache_dir()/nn_host/<hash>/`` (:func:`sda_lab.core.settings.cache_dir`),
the hash covering the source, torch's version and the compiler's; later calls reuse it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("cpp") / "nn_host.cpp"


class NoCompiler(RuntimeError):
    """No C++ compiler on PATH (``make install`` installs g++ where apt-get runs as root)."""


def compiler() -> str | None:
    """``$CXX`` or ``g++`` when on PATH, else None."""
    return shutil.which(os.environ.get("CXX", "g++"))


def build_command(cxx: str, out: Path) -> list[str]:
    """The one compiler line."""
    root = Path(torch.__file__).parent
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [cxx, "-std=c++20", "-O2", str(SOURCE), "-o", str(out),
            f"-I{root / 'include'}", f"-I{root / 'include/torch/csrc/api/include'}",
            f"-L{root / 'lib'}", "-ltorch", "-ltorch_cpu", "-lc10",
            f"-Wl,-rpath,{root / 'lib'}", f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]


def build_nn_host(cache: Path | None = None) -> Path:
    """The built harness (built now if its hash is new; about 30-50 s on 2 cores).

    Raises
    ------
    NoCompiler
        No compiler on PATH.
    RuntimeError
        The compiler failed (its last lines).
    """
    cxx = compiler()
    if cxx is None:
        raise NoCompiler("no C++ compiler (g++) on PATH: `make install` installs it with apt "
                         "where run as root")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(SOURCE.read_bytes() + torch.__version__.encode()
                         + version.encode()).hexdigest()[:16]
    if cache is None:
        from sda_lab.core.settings import cache_dir

        cache = cache_dir()
    folder = Path(cache) / "nn_host" / key
    binary = folder / "nn_host"
    if binary.is_file():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"nn_host.{os.getpid()}.tmp"
    done = subprocess.run(build_command(cxx, tmp), capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("building nn_host failed: " + done.stderr[-3000:])
    os.replace(tmp, binary)  # atomic: a parallel build never sees half a binary
    return binary
