"""Environment variables fail at once, in one line naming the variable, before any wait."""

import pytest

from sda_lab.core.settings import SettingError, cache_dir, dask_address, extra_audio_dir
from sda_lab.studies.experiments import dask_client
from sda_lab.studies.experiments.store import ResultStore


@pytest.mark.parametrize("read", [cache_dir, extra_audio_dir, lambda: ResultStore()])
def test_a_home_folder_of_an_unknown_user_names_the_variable(monkeypatch, read):
    name = "SDA_LAB_EXTRA_AUDIO" if read is extra_audio_dir else "SDA_LAB_CACHE"
    monkeypatch.setenv(name, "~nosuchuser-sda-lab/x")
    with pytest.raises(SettingError, match=name) as err:
        read()
    text = str(err.value)
    assert "\n" not in text and "nosuchuser-sda-lab" in text and "expected" in text


def test_the_current_users_home_still_expands(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SDA_LAB_CACHE", "~/cache")
    assert cache_dir() == tmp_path / "cache"


@pytest.mark.parametrize("address", ["tcp://host:99999", "tcp://host:65536", "tcp://host:0"])
def test_a_port_outside_1_to_65535_is_refused_before_connecting(monkeypatch, address):
    monkeypatch.setenv("SDA_LAB_DASK_ADDRESS", address)
    with pytest.raises(SettingError, match="SDA_LAB_DASK_ADDRESS.*port") as err:
        dask_address()
    assert "\n" not in str(err.value) and address in str(err.value)
    with pytest.raises(SettingError, match="SDA_LAB_DASK_ADDRESS"):
        dask_client()  # raised before any connection is tried: no timeout to wait for


@pytest.mark.parametrize("address", ["tcp://host:8786", "tcp://10.0.0.1:65535", "tcp://host"])
def test_good_addresses_pass(monkeypatch, address):
    monkeypatch.setenv("SDA_LAB_DASK_ADDRESS", address)
    assert dask_address() == address
