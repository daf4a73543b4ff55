"""Every benchmark with options answers ``--help`` (argparse's help strings are %-formatted, so
a bare "%" in one crashed ``bench_hearing --help``), and a bad option value is one usage line."""

import importlib

import pytest

WITH_OPTIONS = ["bench_default_model", "bench_explorer", "bench_generalise", "bench_hearing",
                "bench_memory", "bench_nn_tilde", "bench_own_audio", "bench_phase_start",
                "bench_training_speed"]


@pytest.mark.parametrize("name", WITH_OPTIONS)
def test_help_prints_usage(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


def test_explorer_bench_refuses_a_bad_repeat_count_in_one_line(capsys):
    from benchmarks import bench_explorer

    with pytest.raises(SystemExit) as done:
        bench_explorer.main(["0"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("repeats must be at least 1, got 0")
