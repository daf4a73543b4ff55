"""The package's public names: every one importable from ``sda_lab``, and ``import sda_lab``
loads no widget or plotting library."""

import subprocess
import sys

from pathlib import Path

import pytest

import sda_lab


@pytest.mark.parametrize("name", sorted(set(sda_lab.__all__) - {"__version__"}))
def test_public_name_is_the_object_of_its_module(name):
    obj = getattr(sda_lab, name)
    module = getattr(obj, "__module__", None) or type(obj).__module__
    assert module.startswith("sda_lab.") and getattr(sys.modules[module], name, obj) is obj


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sda_lab.nope  # noqa: B018


def test_import_loads_no_widget_or_plotting_library():
    code = ("import sys, sda_lab; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'matplotlib', 'ipywidgets', 'bqplot', 'IPython'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]"]


def test_python_m_sda_lab_sets_passive_openmp_threads_unless_set(tmp_path):
    """``python -m sda_lab`` (and any ``python -m sda_lab.x``) sets OMP_WAIT_POLICY=PASSIVE
    before torch loads, and leaves a value the user set; ``import sda_lab`` changes nothing."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    probe = tmp_path / "probe.py"  # run as python -m: prints the policy the process got
    probe.write_text("import os\nprint(os.environ.get('OMP_WAIT_POLICY'))\n")
    pkg = Path(__file__).resolve().parents[1]
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        run_env = {**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{pkg}"}
        if given is not None:
            run_env["OMP_WAIT_POLICY"] = given
        out = subprocess.run([sys.executable, "-c", "import runpy, sys; sys.argv[0] = '-m'; "
                              "import sda_lab; runpy.run_module('probe', run_name='__main__')"],
                             env=run_env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected, out.stderr[-300:]
    out = subprocess.run([sys.executable, "-c", "import os, sda_lab; "
                          "print(os.environ.get('OMP_WAIT_POLICY'))"], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
