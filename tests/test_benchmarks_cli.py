"""Every benchmark with options answers ``--help`` (argparse's help strings are %-formatted, so
a bare "%" in one crashed ``bench_hearing --help``), and a bad option value is one usage line."""

import importlib

import pytest

WITH_OPTIONS = ["bench_default_model", "bench_explorer", "bench_generalise", "bench_hearing",
                "bench_memory", "bench_nn_tilde", "bench_own_audio", "bench_phase_start",
                "bench_training_speed", "bench_writer"]


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


def test_the_heard_table_judges_stored_rows_by_the_current_rule():
    """Rows written before the verdict read the share of the way say "learned" at 13% of the
    way; the table shows what the figures mean now, with the options each run was given."""
    from benchmarks.bench_own_audio import arm_of, heard_table

    def row(model, extra):
        f = {"file": "a.wav", "clips": 1}
        for path, sc in (("model", model), ("mel_round_trip", 0.17), ("average_sound", 0.98)):
            f.update({f"{path}_spectral_convergence": sc, f"{path}_log_spectral_distance_db": 3.0,
                      f"{path}_level_db": -1.0})
        return {"folder": "/x/instruments", "seed": 1, "extra": extra, "files": [f],
                "steps": 900, "sc_model": model, "sc_mel": 0.17, "sc_average": 0.98,
                "lsd_model": 3.0, "lsd_mel": 3.0, "level_db": -1.0, "level_db_worst": -1.0,
                "val_ratio": 0.4, "verdict": "learned", "active_units": 10, "inversion": "x"}

    table = heard_table([row(0.879, ["--max-steps", "900"]),
                         row(0.3, ["--lr-schedule", "cosine", "--max-steps", "900"])])
    lines = table.splitlines()
    assert "| shipped | 1 |" in lines[2] and "| 0.12 |" in lines[2] and "partly learned" in lines[2]
    assert "| --lr-schedule cosine | 1 |" in lines[3] and lines[3].endswith("| learned |")
    assert arm_of({"extra": ["--max-minutes", "5"]}) == "shipped"
