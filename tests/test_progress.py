"""Progress bars: redrawn in place on a terminal, written as lines on a log."""

import io
import itertools
import re

from sda_lab.core.progress import LOG_INTERVAL_S, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_bar(stream, n=200, **kwargs):
    bar = progress_bar(total=n, desc="training", unit="step", file=stream, **kwargs)
    for _ in range(n):
        bar.update(1)
    bar.close()
    return stream.getvalue()


def test_a_log_gets_the_first_and_last_readings_as_lines():
    text = run_bar(io.StringIO(), leave=False)  # a bar that a terminal would clear
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    assert len(lines) == 2  # well inside LOG_INTERVAL_S: no reading between
    assert lines[0].startswith("training:   0%") and lines[1].startswith("training: 100%")
    assert "200/200" in lines[1] and text.isascii()


def test_a_long_run_gets_a_line_about_every_interval_and_no_more(monkeypatch):
    clock = itertools.count()
    monkeypatch.setattr("tqdm.std.time", lambda: float(next(clock)))  # a second a reading
    lines = run_bar(io.StringIO(), n=400).splitlines()
    elapsed = [int(m) * 60 + int(s) for m, s in
               (re.search(r"\[(\d+):(\d+)", line).groups() for line in lines)]
    gaps = [b - a for a, b in zip(elapsed[:-1], elapsed[1:-1])]  # the closing line aside
    assert len(gaps) >= 3 and min(gaps) >= LOG_INTERVAL_S


def test_a_terminal_keeps_tqdms_redraws():
    text = run_bar(Terminal(), leave=False)
    assert "\r" in text
