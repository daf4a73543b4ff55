"""Progress bars for every long step: tqdm's bar on a terminal or in a notebook; on any other
stream (a log file, a pipe, ``nohup``) one plain line per update, at most every
:data:`LOG_INTERVAL_S` seconds, where tqdm would redraw one line with carriage returns."""

from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0  # seconds between a bar's lines in a log


class LogLines:
    """A text stream for tqdm that writes each redraw of a bar as a line of its own on
    ``stream``: tqdm's carriage returns dropped, blank redraws (a cleared bar) skipped."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)`` where it can redraw in place (a terminal, a
    notebook); on a stream that is not a terminal (``kwargs["file"]``, default ``sys.stderr``),
    the same bar written through :class:`LogLines` in ASCII, at most one line every
    :data:`LOG_INTERVAL_S` seconds (a larger ``mininterval`` is kept), and its last reading
    left as a line when it closes."""
    from tqdm import std
    from tqdm.auto import tqdm
    from tqdm.autonotebook import tqdm as chosen  # imported by tqdm.auto: std's or the notebook's

    stream = kwargs.get("file") or sys.stderr
    is_terminal = getattr(stream, "isatty", lambda: False)()
    if chosen is std.tqdm and not is_terminal:
        kwargs = {**kwargs, "file": LogLines(stream), "ascii": True, "leave": True,
                  "mininterval": max(kwargs.get("mininterval", 0.0), LOG_INTERVAL_S)}
    return tqdm(iterable, **kwargs)
