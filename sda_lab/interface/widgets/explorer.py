"""The latent explorer: one slider per latent dimension over a start point, dimensions ranked by
how much information they carry, with the decoded mel, the waveform, an audio player and the
latent map, redrawn while a slider is dragged (:mod:`.lanes`).

Playing a clip is an explicit action (:meth:`LatentExplorer.pick`, :meth:`~LatentExplorer.place`,
``play=True``): its audio goes out in one message with ``autoplay`` set for that value only, and
afterwards only a genuine user move renders again. The browser's echoes of values the kernel set
are recognised as such (:class:`.sliders.KernelValues`) and never redraw or replace what plays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from ...model.vae import ConvVAE
from ...representation.inverter import Inverter
from ...representation.spectrogram import AudioSpectrogram
from ...studies.dimensions import dimension_effects, rank_dimensions
from ...training.config import TrainConfig
from ...training.posterior import heard_means
from .clips import check_explorer_mels, mels_for, run_clips
from .lanes import LatestValueWorker, Preview, Renderer
from .latent_map import LatentMap
from .naming import DescriptorNaming
from .sliders import KernelValues, set_slider

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STARTS", "SLIDER_STEPS", "LatentExplorer"]

STARTS = ("clip", "prior", "zero")
SLIDER_STEPS = 100  # a slider's step is its range / 100: an arrow key moves 1 %, not 0.01 units


class LatentExplorer(DescriptorNaming):
    """Sliders over latent dimensions with the decoded mel, waveform, audio and a latent map.

    Parameters
    ----------
    model : ConvVAE
        A trained model (:func:`sda_lab.training.cache.load_or_train_default`, :meth:`from_run`,
        :meth:`from_checkpoint`).
    spec : AudioSpectrogram
        The representation the model was trained on (inverts decoded mels to audio).
    mels : Tensor
        ``(N >= 2, 1, n_mels, T)`` data used to rank dimensions, set slider ranges, offer start
        clips and draw the map; ``n_mels`` and ``T`` must fit the model.
    labels : sequence of str, optional
        One per clip, shown in the start menu and map (grouped by file for ``"f.wav@2s"``).
    n_shown : int
        Sliders in the main panel (highest-KL dimensions); the rest sit in an accordion below.
    sd_range : float
        Each slider spans ``start +- sd_range`` standard deviations of the aggregate posterior
        of its dimension, ``sqrt(Var_x[mu] + E_x[sigma^2])``; its step is 1/100 of that span.
    live : bool
        True: sliders update while dragged, through the two coalescing lanes. False: each
        change renders synchronously in the observer.
    show_map : bool
        Draw the latent map (bqplot).
    preview : Preview or None
        The audio lane's cheap inversion while values keep coming (the full one follows when
        they stop); None renders every audio update in full.
    name_dimensions : bool
        Call :meth:`name_dimensions` (a descriptor traversal: slow on the full model) and show
        :meth:`descriptor_controls` under the start menu.
    inverter : Inverter or None
        The full audio path (:class:`~sda_lab.representation.inverter.Inverter`); None: the
        spectrogram's own inversion. :meth:`from_run` passes the run's own
        (:meth:`Inverter.for_run <sda_lab.representation.inverter.Inverter.for_run>`).
    train_config : TrainConfig or None
        The run's: where its ``posterior_steps`` is not 0, a clip chosen as the start is placed
        at its posterior mean refined on its own loss
        (:func:`~sda_lab.training.posterior.heard_means`, once per clip), where ``listen
        --through vae`` and the run's audio figures place it; the sliders' ranges and the
        dimensions' ranking stay the encoder's. :meth:`from_checkpoint` passes the
        checkpoint's. None: the encoder's mean.

    Raises
    ------
    ValueError
        ``start`` not in :data:`STARTS`, or ``mels`` empty, of one clip, or not the model's
        ``(n_mels, frames)``; ``inverter`` built on another spectrogram config than ``spec``.
    """

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, mels: torch.Tensor,
                 labels: Sequence[str] | None = None, n_shown: int = 8, sd_range: float = 3.0,
                 start: str = "clip", clip_index: int = 0, seed: int = 0, live: bool = True,
                 show_map: bool = True, preview: Preview | None = Preview(),
                 name_dimensions: bool = False, inverter: Inverter | None = None,
                 train_config: TrainConfig | None = None) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        check_explorer_mels(model, mels)
        if labels is not None and len(labels) != len(mels):
            raise ValueError(f"labels must have one entry per clip: {len(mels)} clips, "
                             f"{len(labels)} labels")
        if not 0 <= clip_index < len(mels):
            raise ValueError(f"clip_index must be in [0, {len(mels)}), got {clip_index}")
        self.renderer = Renderer(model, spec, seed, preview, inverter)
        self.model = model
        self.spec = spec
        self.live = live
        self.labels = list(labels) if labels is not None else [f"clip {i}" for i in range(len(mels))]
        self.mels = mels
        # ranked dims, KL (D,), posterior means (N, D), aggregate std (D,): the ranking the
        # descriptor traversal uses too
        self.order, self.kl_per_dim, self.mu, self.scale = rank_dimensions(model, mels)
        self.train_config = train_config
        self._refined: dict[int, torch.Tensor] = {}  # clip -> its refined posterior mean (D,)
        self.sd_range = sd_range
        self.generator = torch.Generator().manual_seed(seed)
        D = model.latent_dim

        start_options = [(f"clip: {lab}", ("clip", i)) for i, lab in enumerate(self.labels)]
        start_options += [("prior sample", ("prior", 0)), ("zero", ("zero", 0)),
                          ("place on the map", ("map", 0))]
        initial = ("clip", clip_index) if start == "clip" else (start, 0)
        self.start_menu = W.Dropdown(options=start_options, value=initial, description="start")
        self.reset_button = W.Button(description="reset", icon="undo")
        self.random_button = W.Button(description="randomise", icon="random")
        self.sliders: list[W.FloatSlider] = []
        for rank, d in enumerate(self.order):
            self.sliders.append(W.FloatSlider(
                value=0.0, min=-1.0, max=1.0, step=0.02, continuous_update=live,
                description=f"#{rank + 1} z{d}", readout_format=".2f",
                tooltip=f"latent dimension {d}, KL {self.kl_per_dim[d]:.2f} nats",
                layout=W.Layout(width="380px"),
            ))
        self.kernel_values = KernelValues(len(self.sliders))
        self.echoes = 0  # slider values recognised as the browser's echoes (not moves)
        self.moves: deque[tuple[int, float, float]] = deque(maxlen=16)  # (rank, old, new)
        self._suspend = False
        self._moved = 0  # rank of the slider moved last (named in the status line)
        self.start_z = torch.zeros(D)
        self._map_z = torch.zeros(D)
        self.last_seconds = 0.0
        self.picture_lane = LatestValueWorker(self._render_picture_job, "picture")
        self.audio_lane = LatestValueWorker(self._render_preview_job, "audio",
                                            settle=self._render_audio_job)
        self.map = (LatentMap(self.mu, self.labels, on_pick=self.pick, on_place=self.place)
                    if show_map else None)
        if self.map is not None:
            self.renderer.on_picture = self.map.show
        self.set_start(initial)
        for rank, s in enumerate(self.sliders):
            s.observe(lambda ch, r=rank: self._on_slider(r, ch), names="value")
        self.start_menu.observe(self._on_start_menu, names="value")
        self.reset_button.on_click(lambda _: self.set_start(self.start_menu.value))
        self.random_button.on_click(lambda _: self.randomise())

        shown, rest = self.sliders[:n_shown], self.sliders[n_shown:]
        children = [W.HBox([self.start_menu, self.reset_button, self.random_button]),
                    W.HTML(f"<b>latent dimensions, most informative first</b> (range: start "
                           f"&plusmn; {sd_range:g} std, step 1/{SLIDER_STEPS} of the range)"),
                    *shown]
        if rest:
            more = W.Accordion(children=[W.VBox(rest)],
                               titles=(f"dimensions ranked {n_shown + 1}-{D} (less informative)",))
            more.selected_index = None
            children.append(more)
        if self.map is not None:
            children.append(self.map.widget)
        from .longer import LongerRow

        self.longer_row = LongerRow(self)
        children.append(self.longer_row.widget)
        self._prior = None  # the Gaussian mixture on self.mu, fitted on the first longer()
        self.widget = W.HBox([W.VBox(children), self.renderer.output_box()])
        self._directions = None  # descriptors.Directions, computed on first use
        self._controls: W.HBox | None = None
        self.dimension_names: list[str] | None = None  # labels[d] once named
        if name_dimensions:
            self.name_dimensions()
            panel = self.widget.children[0]
            panel.children = (panel.children[0], self.descriptor_controls(), *panel.children[1:])

    # -- construction from a checkpoint or a run ---------------------------------------------

    @classmethod
    def from_checkpoint(cls, checkpoint, mels_or_folder=None, labels: Sequence[str] | None = None,
                        spec: AudioSpectrogram | None = None, **kwargs) -> "LatentExplorer":
        """An explorer on a saved model.

        Parameters
        ----------
        checkpoint : str, Path or Checkpoint
            A file from ``python -m sda_lab train`` /
            :func:`sda_lab.training.checkpoint.save_checkpoint`, or what
            :func:`sda_lab.training.checkpoint.load_checkpoint` returned.
        mels_or_folder : Tensor, AudioClips, str, Path or None
            The clips to explore (see :func:`.clips.mels_for`); None takes the default data set.
        spec : AudioSpectrogram, optional
            Defaults to the checkpoint's own
            (:meth:`sda_lab.training.checkpoint.Checkpoint.spectrogram`).
        **kwargs
            Passed to the constructor (``train_config`` defaults to the checkpoint's).

        Raises
        ------
        FileNotFoundError, ValueError
            Missing or unreadable checkpoint; clips that do not fit the model.
        """
        from ...training.checkpoint import Checkpoint, load_checkpoint

        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        spec = spec or ckpt.spectrogram()
        model = ckpt.model.eval()
        mels, labels = mels_for(model, spec, mels_or_folder, labels)
        kwargs.setdefault("train_config", ckpt.train_config)
        return cls(model, spec, mels, labels, **kwargs)

    @classmethod
    def from_run(cls, run: str | Path, data=None, **kwargs) -> "LatentExplorer":
        """An explorer on a run folder of ``python -m sda_lab train FOLDER --out RUN``
        (:class:`~sda_lab.training.rundir.RunDir`).

        Opens :meth:`~sda_lab.training.rundir.RunDir.run_checkpoint`: ``RUN/best.pt`` (lowest
        validation error), else ``RUN/checkpoint.pt`` (the last). ``data``: None explores the
        run's own files in its recorded training folder; a folder (the training folder moved)
        explores the run's own files there; mels, waveforms or clips are explored as given
        (:func:`.clips.mels_for`). Files of a folder are checked against the run's fingerprints
        (:func:`sda_lab.studies.run_files.run_files`): each difference is one warning line. The
        full audio goes through the run's own inversion, :meth:`Inverter.for_run
        <sda_lab.representation.inverter.Inverter.for_run>` (its learned inverse mel
        ``RUN/inverse_mel.pt``, the start it kept, or the NNLS start; PGHI and fast Griffin-Lim),
        unless ``inverter`` is given (``inverter=None`` keeps the spectrogram's own).

        Raises
        ------
        FileNotFoundError
            One line: ``run`` is not a folder or holds neither checkpoint; the run's training
            folder is gone or moved and no ``data`` was given (pass ``data=`` pointing at it);
            ``data`` is not a folder; none of the run's training files is in it unchanged.
        ValueError
            What :meth:`Inverter.for_run <sda_lab.representation.inverter.Inverter.for_run>`
            raises: an unreadable ``inverse_mel.pt``, or one trained on another spectrogram
            config.
        """
        from ...training.checkpoint import load_checkpoint
        from ...training.rundir import RunDir

        rd = RunDir(run)
        ckpt = load_checkpoint(rd.run_checkpoint())
        if "inverter" not in kwargs:
            if kwargs.get("spec") is None:
                kwargs["spec"] = ckpt.spectrogram()
            kwargs["inverter"] = Inverter.for_run(rd.path, kwargs["spec"])
        if data is None or isinstance(data, (str, Path)):
            data = run_clips(rd, ckpt, rd.find_data(data))
        explorer = cls.from_checkpoint(ckpt, data, **kwargs)
        explorer.run_dir = rd.path
        from .presets import PresetRow

        explorer.presets = PresetRow(explorer)  # under the start menu
        panel = explorer.widget.children[0]
        panel.children = (panel.children[0], explorer.presets.widget, *panel.children[1:])
        return explorer

    # -- longer sounds (sda_lab.studies.continuation; the row: .longer.LongerRow) ----------

    def longer(self, seconds: float, seed: int = 0) -> tuple[torch.Tensor, str]:
        """The sound at :attr:`z` continued to ``seconds``
        (:func:`sda_lab.studies.continuation.continue_from`, the next windows drawn from a
        Gaussian mixture fitted on the explorer's posterior means, seeded by ``seed``), through
        the explorer's inverter (a run's own, else the spectrogram's NNLS start + PGHI). Returns
        the waveform ``(1, samples)`` and one line saying how it was continued; ``ValueError``
        (one line) for ``seconds`` out of range."""
        from ...studies.continuation import continue_from, describe
        from ...studies.prior import fit_gmm_prior

        inverter = self.renderer.inverter or Inverter(self.spec)
        if self._prior is None:
            self._prior = fit_gmm_prior(self.mu.float(), seed=seed)
        wave, _ = continue_from(self.model, self._prior, self.z.float(), seconds, inverter,
                                torch.Generator().manual_seed(seed))  # (1, 1, samples)
        return wave[0], f"{seconds:g} s: {describe(self.model.config)}"

    # -- presets (sda_lab.studies.presets; the row: .presets.PresetRow) ----------------------

    run_dir: Path | None = None  # the run folder of from_run, where presets are kept

    def slider_values(self) -> dict[str, float]:
        """``{name: value}`` of every slider, named by its dimension's label (``"z{d}"``, or
        its descriptor name after :meth:`name_dimensions`)."""
        names = self.dimension_names or [f"z{d}" for d in range(self.model.latent_dim)]
        return {names[d]: float(s.value) for s, d in zip(self.sliders, self.order)}

    def _preset_run(self, what: str) -> Path:
        if self.run_dir is None:
            raise ValueError(f"{what}: presets belong to a run; open the explorer with "
                             "LatentExplorer.from_run(RUN)")
        return self.run_dir

    def save_preset(self, name: str, note: str = "", overwrite: bool = False) -> Path:
        """Save :attr:`z` and :meth:`slider_values` as ``RUN/presets/NAME.json``
        (:func:`sda_lab.studies.presets.save_preset`, whose one-line errors it raises; a
        ``ValueError`` for an explorer not opened with :meth:`from_run`)."""
        from ...studies.presets import save_preset

        run = self._preset_run("save_preset")
        self.wait()
        return save_preset(run, name, self.z, self.slider_values(), note=note,
                           overwrite=overwrite)

    def load_preset(self, name_or_path: str | Path, play: bool = False):
        """Read a preset of this run (:func:`sda_lab.studies.presets.load_preset`, whose
        one-line errors it raises) and start from it (the start menu's "place on the map":
        "reset" comes back to it); sliders whose name the preset holds get that value, the
        others the preset's ``z``. Returns the :class:`~sda_lab.studies.presets.Preset`."""
        from ...studies.presets import load_preset

        preset = load_preset(self._preset_run("load_preset"), name_or_path)
        z = preset.z[0].double()  # (D,)
        for name, d in zip(self.slider_values(), self.order):
            if name in preset.sliders and float(torch.tensor(preset.sliders[name])) == z[d]:
                z[d] = preset.sliders[name]  # the slider's own value, not its float32 rounding
        self._map_z = z
        self.set_start(("map", 0), play=play)
        return preset

    # -- state -------------------------------------------------------------------------------

    @property
    def z(self) -> torch.Tensor:
        """The latent the sliders describe, ``(D,)``."""
        z = torch.zeros(self.model.latent_dim)
        for s, d in zip(self.sliders, self.order):
            z[d] = s.value
        return z

    def clip_latent(self, i: int) -> torch.Tensor:
        """Where clip ``i`` starts, ``(D,)``: its posterior mean, refined where the explorer has
        a ``train_config`` with ``posterior_steps`` (computed once per clip)."""
        steps = self.train_config.posterior_steps if self.train_config is not None else 0
        if not steps:
            return self.mu[i].clone()
        if i not in self._refined:
            self._refined[i] = heard_means(self.model, self.mels[i:i + 1], self.train_config,
                                           self.spec.mel_magnitude)[0]  # (D,)
        return self._refined[i].clone()

    def _start_point(self, choice: tuple[str, int]) -> torch.Tensor:
        kind, i = choice
        if kind == "clip":
            return self.clip_latent(i)
        if kind == "prior":
            return torch.randn(self.model.latent_dim, generator=self.generator)
        if kind == "map":
            return self._map_z.clone()
        return torch.zeros(self.model.latent_dim)

    def _on_start_menu(self, change) -> None:
        if not self._suspend:
            self.set_start(change["new"])

    def set_start(self, choice: tuple[str, int], play: bool = False) -> None:
        """Centre every slider on a start point and render it once, synchronously; with
        ``play`` its audio autoplays (and keeps playing until a genuine user move)."""
        self.wait()
        if self.start_menu.value != choice:
            self._suspend = True
            try:
                self.start_menu.value = choice
            finally:
                self._suspend = False
        self.start_z = self._start_point(choice)
        self._set_values(self.start_z, recentre=True)
        self._render_now(play)

    def pick(self, index: int, play: bool = True) -> None:
        """Start from clip ``index`` (what clicking it on the map does) and play it."""
        if not 0 <= index < len(self.mu):
            raise ValueError(f"clip index must be in [0, {len(self.mu)}), got {index}")
        self.set_start(("clip", index), play=play)

    def place(self, z: torch.Tensor, play: bool = True) -> None:
        """Start from latent ``z`` ``(D,)`` (what dropping the map's cross does) and play it."""
        self._map_z = z.detach().float().cpu().reshape(self.model.latent_dim).clone()
        self.set_start(("map", 0), play=play)

    def randomise(self) -> None:
        """Draw every dimension from its aggregate posterior N(mean, std) and redraw."""
        self.wait()
        z = self.mu.mean(0) + self.scale * torch.randn(self.model.latent_dim,
                                                       generator=self.generator)
        self._set_values(z, recentre=False)
        self._render_now(False)

    def _set_values(self, z: torch.Tensor, recentre: bool) -> None:
        """Set every slider to ``z`` ``(D,)`` (and its range around it with ``recentre``), each
        in one message, and record what was sent so the browser's echoes are known as such."""
        self._suspend = True
        try:
            for rank, (s, d) in enumerate(zip(self.sliders, self.order)):
                bounds = {}
                if recentre:
                    lo = float(z[d] - self.sd_range * self.scale[d])
                    hi = float(z[d] + self.sd_range * self.scale[d])
                    if not hi > lo:  # a dimension with no spread: keep a usable slider
                        lo, hi = lo - 1.0, hi + 1.0
                    bounds = {"lo": lo, "hi": hi, "step": (hi - lo) / SLIDER_STEPS}
                self.kernel_values.record(rank, set_slider(s, float(z[d]), **bounds))
        finally:
            self._suspend = False

    def set_dimension(self, rank: int, value: float, wait: bool = True) -> float:
        """Move the slider of the ``rank``-th most informative dimension (0-based), as a user
        would (through the slider's observer); with ``wait``, block until it is drawn and heard.
        Returns the last audio render's seconds (the picture comes earlier)."""
        self.sliders[rank].value = value  # fires _on_slider
        if wait:
            self.wait()
        return self.last_seconds

    def move_effect(self, rank: int, n_sd: float = 2.0) -> float:
        """Mean absolute change of the decoded mel when the ``rank``-th dimension moves ``n_sd``
        aggregate-posterior standard deviations from the start point (through the real slider
        path). The explorer is left back at its start point."""
        self.set_start(self.start_menu.value)
        before = self.mel.clone()
        d = self.order[rank]
        self.set_dimension(rank, self.sliders[rank].value + n_sd * float(self.scale[d]))
        change = float((self.mel - before).abs().mean())
        self.set_start(self.start_menu.value)
        return change

    def dimension_effects(self, n_sd: float = 2.0) -> torch.Tensor:
        """:func:`sda_lab.studies.dimensions.dimension_effects` from every clip's posterior mean:
        ``(N clips, latent_dim)``, columns in the sliders' order (most informative first). The
        same move as :meth:`move_effect` without the slider's rounding to its step."""
        return dimension_effects(self.model, self.mu, self.order, self.scale, n_sd)

    def measure_latency(self, moves: int = 10, step: float | None = None,
                        steps: int = 3) -> list[float]:
        """:func:`.drag.measure_latency` on this explorer."""
        from .drag import measure_latency

        return measure_latency(self, moves, step, steps)

    def simulate_drag(self, rank: int = 0, changes: int = 40, rate_hz: float = 30.0,
                      span: float = 0.8):
        """:func:`.drag.simulate_drag` on this explorer; returns its :class:`.drag.DragStats`."""
        from .drag import simulate_drag

        return simulate_drag(self, rank, changes, rate_hz, span)

    # -- slider changes and renders ------------------------------------------------------------

    def _caption(self) -> str:
        s = self.sliders[self._moved]
        value = format(s.value, s.readout_format)
        return f"<span class='sda-rendered'>{s.description} = {value}</span>"

    def _on_slider(self, rank: int, change: dict | None = None) -> None:
        if self._suspend:
            return
        if change is not None and self.kernel_values.is_echo(rank, float(change["new"])):
            # the browser sending back a value the kernel set: no move, nothing redrawn, and
            # what plays keeps playing. A late echo of an older state is answered with the
            # newest one, so kernel and browser agree on the slider.
            self.echoes += 1
            if not self.kernel_values.is_latest(rank, float(change["new"])):
                self._suspend = True
                try:
                    self.sliders[rank].value = self.kernel_values.latest(rank).value
                finally:
                    self._suspend = False
            return
        self.kernel_values.forget(rank)
        if change is not None:
            self.moves.append((rank, float(change["old"]), float(change["new"])))
        self._moved = rank
        if not self.live:
            self._render_now(False)
            return
        job = (self.z, self._caption())
        self.picture_lane.submit(job)
        self.audio_lane.submit(job)

    def _render_picture_job(self, job) -> None:
        self._guard(self.renderer.render_picture, *job)

    def _render_preview_job(self, job) -> None:
        self.last_seconds = self._guard(self.renderer.render_audio, *job, False, True)

    def _render_audio_job(self, job) -> None:
        self.last_seconds = self._guard(self.renderer.render_audio, *job, False, False)

    def _guard(self, fn, *args) -> float:
        try:
            return fn(*args)
        except Exception as exc:
            self.renderer._show_status(error=f"{type(exc).__name__}: {exc}")
            raise

    def _render_now(self, play: bool) -> None:
        self.wait()
        self.last_seconds = self.renderer.render(self.z, self._caption(), play=play)

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until both lanes are idle (every slider value so far drawn and heard in full)."""
        return self.picture_lane.wait(timeout) & self.audio_lane.wait(timeout)

    def update(self) -> float:
        """Decode the current latent and redraw picture and full audio synchronously (no
        autoplay); returns the seconds it took."""
        self._render_now(False)
        return self.last_seconds

    @property
    def mel(self) -> torch.Tensor:
        """The last drawn mel, ``(1, 1, n_mels, T)``."""
        return self.renderer.last_mel

    @property
    def audio(self) -> W.Audio:
        return self.renderer.audio

    # -- what a reader without a kernel sees, and what a user keeps -----------------------------

    def snapshot(self) -> Figure:
        """A static figure of the current state: mel, waveform and latent map (for committed
        notebooks: a reader without a running kernel sees this instead of live widgets)."""
        from .export import explorer_figure

        self.wait()
        s = self.sliders[self._moved]
        return explorer_figure(self, f"start {self.start_menu.label}, {s.description} = "
                                     f"{format(s.value, s.readout_format)}")

    def snapshot_image(self):
        """:meth:`snapshot` as an ``IPython.display.Image`` (PNG), for ``display()``."""
        from IPython.display import Image as IPImage

        from .images import figure_png

        return IPImage(data=figure_png(self.snapshot()), format="png")

    def export(self, folder: str | Path, name: str = "explorer") -> dict[str, Path]:
        """Write the current state's audio (full inversion, ``NAME.wav``) and its
        :meth:`snapshot` (``NAME.png``) into ``folder``; see :func:`.export.export_explorer`."""
        from .export import export_explorer

        return export_explorer(self, folder, name)

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"LatentExplorer: {len(self.sliders)} latent sliders over "
                                f"{len(self.mu)} clips (a live widget: run the notebook)")
        return bundle
