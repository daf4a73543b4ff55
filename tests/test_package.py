"""The package's public names: every one importable from ``sda_lab``, and ``import sda_lab``
loads no widget or plotting library."""

import subprocess
import sys

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


def test_importing_sets_passive_openmp_threads_unless_set():
    """``import sda_lab`` (so ``python -m sda_lab``) sets OMP_WAIT_POLICY=PASSIVE before torch
    loads, and leaves a value the user set."""
    import os
    import subprocess
    import sys

    probe = "import os, sda_lab; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        run_env = env if given is None else {**env, "OMP_WAIT_POLICY": given}
        out = subprocess.run([sys.executable, "-c", probe], env=run_env, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == expected
