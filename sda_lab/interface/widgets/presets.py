"""The explorer's preset row: save the current state under a name, pick one of the run's presets
and load it (:meth:`LatentExplorer.save_preset
<sda_lab.interface.widgets.explorer.LatentExplorer.save_preset>` and
:meth:`~sda_lab.interface.widgets.explorer.LatentExplorer.load_preset`;
the file format: :mod:`sda_lab.studies.presets`). An error is shown in the row's status line,
one line, and changes nothing."""

from __future__ import annotations

import html

import ipywidgets as W

from ...studies.presets import list_presets

__all__ = ["PresetRow"]


class PresetRow:
    """A name box, "save" (with "replace" for an existing name), a menu of the run's presets
    and "load", over an explorer opened with ``from_run``; :attr:`widget` is the row."""

    def __init__(self, explorer) -> None:
        self.explorer = explorer
        self.name = W.Text(placeholder="preset name", description="preset",
                           layout=W.Layout(width="220px"))
        self.replace = W.Checkbox(value=False, description="replace", indent=False,
                                  layout=W.Layout(width="80px"))
        self.save_button = W.Button(description="save", icon="save", layout=W.Layout(width="80px"))
        self.menu = W.Dropdown(options=[], description="presets", layout=W.Layout(width="220px"))
        self.load_button = W.Button(description="load", icon="folder-open",
                                    layout=W.Layout(width="80px"))
        self.status = W.HTML()
        self.save_button.on_click(lambda _: self.save())
        self.load_button.on_click(lambda _: self.load())
        self.refresh()
        self.widget = W.VBox([W.HBox([self.name, self.replace, self.save_button]),
                              W.HBox([self.menu, self.load_button]), self.status])

    def refresh(self) -> None:
        """Re-read the run's presets into the menu (keeping the choice where it still exists)."""
        names = list_presets(self.explorer.run_dir)
        keep = self.menu.value if self.menu.value in names else (names[0] if names else None)
        self.menu.options = names
        self.menu.value = keep

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00" if error else "#555"
        self.status.value = f"<small style='color:{colour}'>{html.escape(text)}</small>"

    def save(self) -> None:
        """Save the explorer's state under the name in the box (what "save" does)."""
        try:
            path = self.explorer.save_preset(self.name.value, overwrite=self.replace.value)
        except (OSError, ValueError) as exc:
            self._say(str(exc), error=True)
            return
        self.refresh()
        self.menu.value = self.name.value
        self._say(f"saved {path}")

    def load(self) -> None:
        """Load the preset chosen in the menu (what "load" does)."""
        if self.menu.value is None:
            self._say("the run has no presets yet: save one first", error=True)
            return
        try:
            preset = self.explorer.load_preset(self.menu.value)
        except (OSError, ValueError) as exc:
            self._say(str(exc), error=True)
            return
        note = f": {preset.note}" if preset.note else ""
        self._say(f"loaded {self.menu.value}{note}")
