"""The package's public names: every one importable from ``sda_lab``, lazily."""

import subprocess
import sys

import pytest

import sda_lab


@pytest.mark.parametrize("name", sorted(sda_lab._PUBLIC))
def test_public_name_resolves_to_its_module(name):
    obj = getattr(sda_lab, name)
    module = sda_lab._PUBLIC[name]
    assert obj is getattr(__import__(f"sda_lab.{module}", fromlist=[name]), name)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sda_lab.nope


def test_import_is_lazy():
    code = "import sys, sda_lab; print('sda_lab.training.loop' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
