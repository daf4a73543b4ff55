"""A trained run as a streaming TorchScript file for nn~ (Max, Pure Data) and libtorch hosts.

nn~ (acids-ircam/nn_tilde, ``src/backend/backend.cpp``) loads a TorchScript file, lists its
methods (``get_methods()``, else every method with a ``<method>_params`` buffer), reads each
method's ``<method>_params = [in_channels, in_ratio, out_channels, out_ratio]`` and calls the
method block after block on ``(batch, in_channels, block / in_ratio)``, expecting
``(batch, out_channels, block / out_ratio)`` back; attributes are ``get_attributes()`` with a
``get_<name>``/``set_<name>`` pair and a ``<name>_params`` type list each (2: float), and the
inlets and outlets are named by ``<method>_input_labels``/``<method>_output_labels``.
:class:`NNTildeVAE` is such a module, the way RAVE's export registers its methods:

- ``forward``: audio ``(B, 1, n)`` -> audio ``(B, 1, n)``, params ``[1, 1, 1, 1]``;
- ``encode``: audio ``(B, 1, n)`` -> ``(B, K, n / ratio)``, params ``[1, 1, K, ratio]``;
- ``decode``: ``(B, K, n / ratio)`` -> audio ``(B, 1, n)``, params ``[K, ratio, 1, 1]``.

The K latent channels are the dimensions the explorer ranks highest (mean KL on the run's
clips, :func:`sda_lab.studies.dimensions.rank_dimensions`), in aggregate posterior standard
deviations from the clips' mean posterior (the explorer's slider unit); the others stay at
that mean in ``decode``. Each of the K is also a float attribute that moves ``forward``'s
latent by that many standard deviations, named as the explorer names the dimension
("z33 · brighter ↑" -> ``z33_brighter``; the labels keep the explorer's words).

How it streams (state carried across calls, separately for each method): the model works on
clips of ``clip`` samples. Every ``hop = clip // 2`` samples the last clip (a ring buffer of
the input) is encoded, decoded and inverted; the waveform is weighted by a periodic Hann window
of ``2 * hop`` samples (the windows sum to 1) and overlap-added. The work on one clip is spread
over the calls of the next ``hop`` samples, in steps (encode, decode, NNLS chunks, harmonic
chunks, the learned inverse, one Griffin-Lim iteration each, the inverse STFT) in proportion to
their cost measured at export, so no single block carries a whole inversion. Hence the latency:
``forward`` returns the input's reconstruction ``clip + hop`` samples late; ``decode`` starts a
latent's clip ``hop`` samples after the hop boundary that picked it up (latents are read once
per hop, so a change waits up to another hop); ``encode``'s frames hold the latent of the last
clip completed (an input shows up to ``hop`` samples later). ``get_latency(method)``, the
``<method>_latency`` attributes and the archive's ``sda_lab.json`` give these numbers. Output
does not depend on the block size (the work is the same, only its timing moves).

The inversion is the run's :class:`~sda_lab.representation.inverter.Inverter` compiled
(:class:`sda_lab.representation.scripted.ScriptedInverter`): its learned inverse mel where it has
one (else the start it kept, NNLS or harmonic) and Griffin-Lim started from the phase of the
previous clip's waveform where the clips overlap (zero elsewhere): PGHI, the start
``listen`` uses, cannot be scripted (numba). ``benchmarks/bench_nn_tilde.py`` measures what
that costs in spectral convergence, and the real-time factor per block size.

Inputs are checked inside the file: float32, finite, ``(B, 1, n)`` (``(B, K, frames)`` for
``decode``), ``n`` a multiple of the ratio for ``encode``, and no sample beyond ``MAX_ABS``
(integer PCM cast to float, values in the thousands, is refused, not played); a batch size
other than the last call's starts the method's state afresh. ``set_sample_rate`` (nn~ calls
it on load) refuses a rate other than the model's: nn~ does not resample.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import nn

from ..representation.scripted import MAX_ABS, check_audio, check_input, trace_method

__all__ = ["NN_TILDE_FORMAT", "MAX_ABS", "RATIO", "GL_ITERS", "NNTildeVAE", "build_nn_tilde",
           "attribute_name", "export_nn_tilde", "export_run_nn_tilde"]

NN_TILDE_FORMAT = 1
RATIO = 2048  # samples per latent frame of encode/decode: nn~ buffers are powers of 2 >= it
# Griffin-Lim iterations per clip: from the previous clip's phase, 32 cost +0.016 in SC per
# clip against PGHI + 64 (the Python path) and overlap-add better than 64 do (benchmarks/
# RESULTS.md, "nn~ streaming"), at half the time
GL_ITERS = 32
NNLS_CHUNK = 10  # FISTA steps per work step
HARMONIC_CHUNK = 3  # multiplicative updates per work step


class _Stream:
    """One method's state: the input ring, the clock, the overlap-add buffer, the clip in
    progress (its step and tensors) and the previous clip's waveform (carried phase)."""

    def __init__(self, batch: int, clip: int, delay: int, channels: int):
        self.batch = batch
        self.clock = 0  # samples received
        self.ring = torch.zeros(batch, clip)  # (B, clip): the last clip of input
        self.latent = torch.zeros(batch, channels)  # (B, K): decode's latest latent frame
        self.hold = torch.zeros(batch, channels)  # (B, K): encode's latest latent
        self.acc = torch.zeros(batch, 0)  # (B, m): overlap-add, acc[:, 0] at acc_start
        self.acc_start = -delay  # synthesis time of acc[:, 0]
        self.job_at = -1  # the hop boundary the clip in progress was taken at; -1: none
        self.job_step = 0
        self.job_clip = torch.zeros(0)  # (B, clip) forward's input clip
        self.job_z = torch.zeros(0)  # (B, D)
        self.job_mel = torch.zeros(0)  # (B, 1, n_mels, T)
        self.job_power = torch.zeros(0)  # (B, n_mels, T) mel power
        self.job_target = torch.zeros(0)  # (n_mels, B*T)
        self.job_x = torch.zeros(0)  # (n_stft, B*T)
        self.job_y = torch.zeros(0)  # (n_stft, B*T)
        self.job_t = 1.0
        self.job_num = torch.zeros(0)  # (B, n_stft, T)
        self.job_p = torch.zeros(0)  # (B, n_stft, T)
        self.job_mag = torch.zeros(0)  # (B, n_stft, T)
        self.job_angles = torch.zeros(0, dtype=torch.complex64)  # (B, n_stft, T)
        self.job_prev = torch.zeros(0, dtype=torch.complex64)  # (B, n_stft, T)
        self.prev_wave = torch.zeros(batch, clip)  # (B, clip): the last clip's Griffin-Lim


class NNTildeVAE(nn.Module):
    """The streaming module; build it with :func:`build_nn_tilde` (module docstring).

    Parameters
    ----------
    model : ConvVAE
        The trained VAE (eval mode is set).
    spec : AudioSpectrogram
        Its representation.
    inverter : Inverter
        The run's inversion (:meth:`Inverter.for_run
        <sda_lab.representation.inverter.Inverter.for_run>`); its magnitude is compiled.
    dims : list of int
        The K latent dimensions exposed, most informative first.
    centre, scale : Tensor
        ``(D,)`` the clips' mean posterior and aggregate posterior standard deviation.
    names, labels : list of str
        K attribute names (identifiers) and the explorer's labels.
    gl_iters : int, optional
        Griffin-Lim iterations per clip (default :data:`GL_ITERS`).

    Raises
    ------
    ValueError
        ``dims`` empty, repeated or outside the latent, or ``names``/``labels`` not one per
        dimension (one line naming what came)."""

    def __init__(self, model, spec, inverter, dims: List[int], centre: torch.Tensor,
                 scale: torch.Tensor, names: List[str], labels: List[str],
                 gl_iters: int | None = None) -> None:
        super().__init__()
        from ..studies.descriptors import clip_length

        mc, c = model.config, spec.config
        D, K = int(mc.latent_dim), len(dims)
        if K < 1 or any(not 0 <= d < D for d in dims) or len(set(dims)) != K:
            raise ValueError(f"dims must be 1 or more distinct latent dimensions in [0, {D}), "
                             f"got {dims}")
        if len(names) != K or len(labels) != K:
            raise ValueError(f"need one name and one label per dimension ({K}), got "
                             f"{len(names)} names and {len(labels)} labels")
        model = model.eval().cpu()
        self.sr = int(c.sample_rate)
        self.clip = int(clip_length(spec, mc.n_frames))
        self.hop = self.clip // 2
        self.ratio = RATIO
        self.latent_dim, self.n_latents = D, K
        self.max_abs = MAX_ABS
        self.register_buffer("encode_params", torch.tensor([1, 1, K, RATIO]))
        self.register_buffer("decode_params", torch.tensor([K, RATIO, 1, 1]))
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.forward_latency = self.clip + self.hop
        self.decode_latency = self.hop
        self.encode_latency = self.hop
        self._methods = ["forward", "encode", "decode"]
        self._attributes = list(names)
        for name in names:
            self.register_buffer(f"{name}_params", torch.tensor([2]))  # nn~'s type id: float
        self.encode_input_labels = ["(signal) audio in"]
        self.encode_output_labels = [f"(signal) #{r + 1} {lab}" for r, lab in enumerate(labels)]
        self.decode_input_labels = list(self.encode_output_labels)
        self.decode_output_labels = ["(signal) audio out"]
        self.forward_input_labels = ["(signal) audio in"]
        self.forward_output_labels = ["(signal) audio out"]
        self.register_buffer("dims", torch.tensor(dims, dtype=torch.long))  # (K,)
        self.register_buffer("centre", centre.detach().float().clone())  # (D,)
        self.register_buffer("scale", scale.detach().float().clamp(min=1e-6).clone())  # (D,)
        self.register_buffer("offsets", torch.zeros(K))  # (K,) forward's moves, in sd
        window = torch.hann_window(2 * self.hop, periodic=True)  # (2 * hop,): sums to 1
        pad = torch.zeros(self.clip - 2 * self.hop)  # an odd clip's last sample
        self.register_buffer("ola_window", torch.cat([window, pad]))  # (clip,)
        self.analysis = trace_method(spec.waveform_to_mel, torch.zeros(2, 1, self.clip))
        mel = spec.waveform_to_mel(torch.zeros(2, 1, self.clip))  # (2, 1, n_mels, T)
        self.encoder = trace_method(model.encoder, mel)
        self.decoder = trace_method(model.decoder, torch.zeros(2, D))
        self.inv = inverter.scripted(GL_ITERS if gl_iters is None else gl_iters)
        self.gl_iters = int(self.inv.gl_iters)
        self.nnls_chunk, self.harm_chunk = NNLS_CHUNK, HARMONIC_CHUNK
        self.n_nnls = -(-self.inv.nnls_iters // NNLS_CHUNK)
        self.harmonic = self.inv.start == "harmonic"
        self.n_harm = -(-self.inv.h_sizes[2] // HARMONIC_CHUNK) if self.harmonic else 0
        # step indices of one clip's work: 0 encode (forward only), 1 decode, NNLS chunks,
        # [harmonic start, harmonic chunks], magnitude, Griffin-Lim iterations, finish
        self.i_nnls = 2
        self.i_harm = self.i_nnls + self.n_nnls
        self.i_mag = self.i_harm + (1 + self.n_harm if self.harmonic else 0)
        self.i_gl = self.i_mag + 1
        self.i_fin = self.i_gl + self.gl_iters
        self.n_steps = self.i_fin + 1
        self.cum_cost: List[float] = [float(j + 1) for j in range(self.n_steps)]
        self.fwd = _Stream(1, self.clip, self.clip + self.hop, K)
        self.enc = _Stream(1, self.clip, 0, K)
        self.dec = _Stream(1, self.clip, self.hop, K)

    # -- nn~'s protocol ----------------------------------------------------------------------

    @torch.jit.export
    def get_methods(self) -> List[str]:
        return self._methods

    @torch.jit.export
    def get_attributes(self) -> List[str]:
        return self._attributes

    @torch.jit.export
    def get_sample_rate(self) -> int:
        return self.sr

    @torch.jit.export
    def set_sample_rate(self, sample_rate: int) -> int:
        """nn~ calls this on load with the host's rate; another rate than the model's is
        refused (nn~ does not resample: the model would play at the wrong pitch)."""
        if sample_rate != self.sr:
            raise ValueError("this model runs at " + str(self.sr) + " Hz, the host at "
                             + str(sample_rate) + " Hz: set the host to " + str(self.sr) + " Hz")
        return 0

    @torch.jit.export
    def get_latency(self, method: str) -> int:
        """Samples between an input and its effect on the output, per method (module
        docstring); -1 for an unknown method."""
        if method == "forward":
            return self.forward_latency
        if method == "decode":
            return self.decode_latency
        if method == "encode":
            return self.encode_latency
        return -1

    def _set_offset(self, k: int, value: float) -> int:
        """Move latent ``k`` of ``forward`` by ``value`` sd; -1 (nn~: "setter returned -1")
        and no change for a value that is not finite."""
        if not math.isfinite(value):
            return -1
        self.offsets[k] = value
        return 0

    @torch.jit.export
    def reset(self) -> None:
        """Forget every method's state (silence in, as after loading)."""
        self.fwd = _Stream(1, self.clip, self.clip + self.hop, self.n_latents)
        self.enc = _Stream(1, self.clip, 0, self.n_latents)
        self.dec = _Stream(1, self.clip, self.hop, self.n_latents)

    # -- input checks ------------------------------------------------------------------------

    def _check(self, x: torch.Tensor, channels: int, what: str) -> None:
        check_input(x, channels, what)

    def _check_audio(self, x: torch.Tensor, what: str) -> None:
        check_audio(x, what, self.max_abs)

    # -- one clip's work -------------------------------------------------------------------

    def _latent_of(self, values: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` channel values in sd -> latent ``(B, D)``, the rest at the centre."""
        z = self.centre.unsqueeze(0).repeat(values.shape[0], 1)  # (B, D)
        moved = self.centre[self.dims] + values * self.scale[self.dims]  # (B, K)
        return z.index_copy(1, self.dims, moved)  # (B, D)

    def _encode_clip(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, clip)`` -> posterior mean ``(B, D)``."""
        mu, _ = self.encoder(self.analysis(clip.unsqueeze(1)))  # (B, D)
        return mu

    def _step(self, s: _Stream, j: int) -> None:
        """Step ``j`` of the clip in progress of stream ``s``."""
        if j == 0:
            mu = self._encode_clip(s.job_clip)  # (B, D)
            s.job_z = mu.index_add(1, self.dims, self.offsets.unsqueeze(0).repeat(
                mu.shape[0], 1) * self.scale[self.dims])  # (B, D)
        elif j == 1:
            s.job_mel = self.decoder(s.job_z)  # (B, 1, n_mels, T)
            s.job_power = self.inv.mel_power(s.job_mel)  # (B, n_mels, T)
            target, x = self.inv.nnls_begin(s.job_power)  # (n_mels, B*T), (n_stft, B*T)
            s.job_target, s.job_x, s.job_y, s.job_t = target, x, x, 1.0
        elif j < self.i_harm:
            n = min(self.nnls_chunk, self.inv.nnls_iters - (j - self.i_nnls) * self.nnls_chunk)
            s.job_x, s.job_y, s.job_t = self.inv.nnls_steps(s.job_target, s.job_x, s.job_y,
                                                            s.job_t, n)
        elif j < self.i_mag:
            if j == self.i_harm:
                power = self.inv.columns_to_frames(s.job_x, s.batch)  # (B, n_stft, T)
                s.job_num, s.job_p = self.inv.harmonic_begin(s.job_power, power)
            else:
                done = (j - self.i_harm - 1) * self.harm_chunk
                n = min(self.harm_chunk, self.inv.h_sizes[2] - done)
                s.job_p = self.inv.harmonic_steps(s.job_num, s.job_p, n)
        elif j == self.i_mag:
            if self.harmonic:
                power = s.job_p
            else:
                power = self.inv.columns_to_frames(s.job_x, s.batch)  # (B, n_stft, T)
            s.job_mag = self.inv.finish_magnitude(s.job_mel, power)  # (B, n_stft, T)
            # the previous clip's waveform where the two overlap, zeros after it
            tail = torch.cat([s.prev_wave[:, self.hop:],
                              torch.zeros(s.batch, self.hop)], 1)  # (B, clip)
            s.job_angles = self.inv.angles_of(tail)  # (B, n_stft, T)
            s.job_prev = torch.zeros_like(s.job_angles)
        elif j < self.i_fin:
            s.job_angles, s.job_prev = self.inv.gl_steps(s.job_mag, s.job_angles, s.job_prev,
                                                         1, self.clip)
        else:
            wave = self.inv.waveform(s.job_mag, s.job_angles, self.clip)  # (B, clip)
            s.prev_wave = wave
            self._overlap_add(s, wave * self.ola_window)
            s.job_at = -1

    def _overlap_add(self, s: _Stream, wave: torch.Tensor) -> None:
        """Add a windowed clip ``(B, clip)`` at its synthesis time: the clip's own input time
        (forward) or its hop boundary (decode)."""
        at = s.job_at - self.clip if s.job_clip.numel() > 0 else s.job_at
        offset = at - s.acc_start
        if offset < 0:
            raise RuntimeError("internal: a clip finished after its output was due")
        need = offset + self.clip - s.acc.shape[1]
        if need > 0:
            s.acc = torch.cat([s.acc, torch.zeros(s.batch, need)], 1)  # (B, m)
        # out of place: a host may call in and out of torch's inference mode
        s.acc = torch.cat([s.acc[:, :offset], s.acc[:, offset:offset + self.clip] + wave,
                           s.acc[:, offset + self.clip:]], 1)  # (B, m)

    def _advance(self, s: _Stream, target: float) -> None:
        """Do the clip's steps whose cumulative cost share is at most ``target`` in [0, 1]."""
        if s.job_at < 0:
            return
        first = 0 if s.job_clip.numel() > 0 else 1
        base = self.cum_cost[first - 1] if first > 0 else 0.0
        total = self.cum_cost[self.n_steps - 1] - base
        while s.job_at >= 0 and s.job_step < self.n_steps:
            if s.job_step < first:
                s.job_step = first
            share = (self.cum_cost[s.job_step] - base) / total
            if share > target + 1e-9:
                break
            self._step(s, s.job_step)
            s.job_step += 1

    def _begin(self, s: _Stream, at: int, clip: torch.Tensor, z: torch.Tensor) -> None:
        """Finish the clip in progress, then take the next at boundary ``at``."""
        self._advance(s, 1.0)
        s.job_at = at
        s.job_step = 0
        s.job_clip = clip
        s.job_z = z

    def _progress(self, s: _Stream) -> None:
        if s.job_at >= 0:
            self._advance(s, min(1.0, float(s.clock - s.job_at) / float(self.hop)))

    def _emit(self, s: _Stream, n: int) -> torch.Tensor:
        """The next ``n`` output samples ``(B, n)``."""
        if s.acc.shape[1] < n:
            s.acc = torch.cat([s.acc, torch.zeros(s.batch, n - s.acc.shape[1])], 1)
        out = s.acc[:, :n].clone()  # (B, n)
        s.acc = s.acc[:, n:]
        s.acc_start += n
        return out

    def _fresh(self, s: _Stream, batch: int, delay: int) -> _Stream:
        if s.batch != batch:
            return _Stream(batch, self.clip, delay, self.n_latents)
        return s

    # -- the three methods -------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Audio ``(B, 1, n)`` -> its reconstruction ``(B, 1, n)``, ``forward_latency``
        samples late, moved by the slider attributes."""
        self._check_audio(x, "forward")
        with torch.no_grad():
            self.fwd = self._fresh(self.fwd, x.shape[0], self.forward_latency)
            s = self.fwd
            n = x.shape[2]
            pos = 0
            while pos < n:
                boundary = (s.clock // self.hop + 1) * self.hop
                take = min(n - pos, boundary - s.clock)
                s.ring = torch.cat([s.ring[:, take:], x[:, 0, pos:pos + take]], 1)  # (B, clip)
                s.clock += take
                pos += take
                if s.clock == boundary:
                    self._begin(s, boundary, s.ring.clone(), torch.zeros(0))
            self._progress(s)
            return self._emit(s, n).unsqueeze(1)  # (B, 1, n)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Audio ``(B, 1, n)`` (``n`` a multiple of ``ratio``) -> latent channels
        ``(B, K, n / ratio)`` in sd from the centre: each frame holds the last clip's."""
        self._check_audio(x, "encode")
        if x.shape[2] % self.ratio != 0:
            raise ValueError("encode expects a multiple of " + str(self.ratio)
                             + " samples, got " + str(x.shape[2]))
        with torch.no_grad():
            self.enc = self._fresh(self.enc, x.shape[0], 0)
            s = self.enc
            frames: List[torch.Tensor] = []
            for f in range(x.shape[2] // self.ratio):
                pos = f * self.ratio
                end = pos + self.ratio
                while pos < end:
                    boundary = (s.clock // self.hop + 1) * self.hop
                    take = min(end - pos, boundary - s.clock)
                    s.ring = torch.cat([s.ring[:, take:], x[:, 0, pos:pos + take]], 1)
                    s.clock += take
                    pos += take
                    if s.clock == boundary:
                        mu = self._encode_clip(s.ring)  # (B, D)
                        moved = mu[:, self.dims] - self.centre[self.dims]  # (B, K)
                        s.hold = moved / self.scale[self.dims]
                frames.append(s.hold)
            return torch.stack(frames, 2)  # (B, K, n / ratio)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent channels ``(B, K, frames)`` in sd from the centre -> audio
        ``(B, 1, frames * ratio)``; a latent is read at each hop boundary."""
        self._check(z, self.n_latents, "decode")
        with torch.no_grad():
            self.dec = self._fresh(self.dec, z.shape[0], self.decode_latency)
            s = self.dec
            n = z.shape[2] * self.ratio
            pos = 0
            while pos < n:
                boundary = (s.clock // self.hop + 1) * self.hop
                take = min(n - pos, boundary - s.clock)
                s.latent = z[:, :, (pos + take - 1) // self.ratio]  # (B, K)
                s.clock += take
                pos += take
                if s.clock == boundary:
                    self._begin(s, boundary, torch.zeros(0), self._latent_of(s.latent))
            self._progress(s)
            return self._emit(s, n).unsqueeze(1)  # (B, 1, n)


# -- building and exporting --------------------------------------------------------------------

def attribute_name(label: str) -> str:
    """An explorer label -> an nn~ attribute name: ``"z33 · brighter ↑"`` -> ``"z33_brighter"``,
    ``"z3 · softer attack ↑"`` -> ``"z3_softer_attack"``, ``"z5"`` -> ``"z5"``."""
    words = re.sub(r"[^0-9A-Za-z]+", "_", label.replace("↑", "")).strip("_")
    return words if re.match(r"[A-Za-z_]", words) else f"z_{words}"


_SLIDER_METHODS = '''
    @torch.jit.export
    def get_{name}(self) -> Tuple[float]:
        return (float(self.offsets[{k}]),)

    @torch.jit.export
    def set_{name}(self, value: float) -> int:
        return self._set_offset({k}, value)
'''


def _with_attributes(names: List[str], folder: Path) -> type:
    """A subclass of :class:`NNTildeVAE` with ``get_<name>``/``set_<name>`` for every name,
    written as source into ``folder`` (TorchScript compiles methods from their source)."""
    body = "".join(_SLIDER_METHODS.format(name=name, k=k) for k, name in enumerate(names))
    source = ("from typing import Tuple\nimport torch\n"
              "from sda_lab.interface.nn_tilde import NNTildeVAE\n\n\n"
              f"class NNTildeVAEWithAttributes(NNTildeVAE):\n    pass\n{body}")
    path = folder / "nn_tilde_attributes.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("nn_tilde_attributes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("nn_tilde_attributes", None)
    spec.loader.exec_module(module)
    return module.NNTildeVAEWithAttributes


def _measure_costs(module: NNTildeVAE) -> List[float]:
    """CPU seconds of each step of one clip (eager, on silence): the schedule's weights. The
    least of two timed passes after a warm-up, then one median for the steps of a kind (the
    NNLS chunks, the harmonic chunks, the Griffin-Lim iterations), so a step another process
    interrupted does not skew the schedule."""
    s = _Stream(1, module.clip, module.clip + module.hop, module.n_latents)
    s.job_at, s.job_clip = 0, torch.zeros(1, module.clip)
    costs = [math.inf] * module.n_steps
    with torch.no_grad():
        for rep in range(3):  # the first pass warms up (allocations, traced graphs)
            for j in range(module.n_steps):
                t0 = time.thread_time()
                module._step(s, j)
                if rep > 0:
                    costs[j] = min(costs[j], max(time.thread_time() - t0, 1e-6))
            s.job_at = 0
    for lo, hi in ((module.i_nnls, module.i_harm), (module.i_harm + 1, module.i_mag),
                   (module.i_gl, module.i_fin)):
        if hi > lo:
            costs[lo:hi] = [statistics.median(costs[lo:hi])] * (hi - lo)
    return costs


def build_nn_tilde(model, spec, inverter, mels: torch.Tensor, n_latents: int = 8,
                   gl_iters: int | None = None, labels: List[str] | None = None,
                   **traverse_kwargs) -> Tuple[torch.jit.ScriptModule, Dict]:
    """Script the streaming module of ``model`` (a ConvVAE) on ``spec`` with the learned
    ``inverter``'s magnitude (an :class:`~sda_lab.representation.inverter.Inverter`), its latent
    channels ranked and named on ``mels``
    ``(N >= 2, 1, n_mels, T)`` as the explorer does.

    ``labels`` (one per latent dimension, the explorer's ``dimension_labels``) skips the
    descriptor traversal that names the dimensions (``traverse_kwargs`` go to it:
    :func:`sda_lab.studies.descriptors.dimension_labels`, with the explorer's ``n_clips=2``,
    ``f0=False``).
    Returns ``(scripted module, metadata)``; the metadata is what :func:`export_nn_tilde`
    writes into the file.

    Raises
    ------
    ValueError
        ``n_latents`` outside ``1 .. latent_dim``, or ``mels`` that do not fit the model.
    """
    from ..studies.descriptors import dimension_labels
    from ..studies.dimensions import rank_dimensions

    D = model.latent_dim
    if not 1 <= n_latents <= D:
        raise ValueError(f"--latents: expected 1 to {D} (the model's latent), got {n_latents}")
    model = model.eval().cpu()
    order, kl, mu, scale = rank_dimensions(model, mels)
    centre = mu.mean(0)  # (D,)
    dims = order[:n_latents]
    if labels is None:
        kwargs = {"n_clips": 2, "f0": False, **traverse_kwargs, "n_dims": n_latents}
        labels = dimension_labels(model, spec, mels, **kwargs)
    picked = [labels[d] for d in dims]
    names = [attribute_name(lab) for lab in picked]
    with tempfile.TemporaryDirectory() as tmp:
        cls = _with_attributes(names, Path(tmp))
        module = cls(model, spec, inverter, dims, centre, scale, names, picked, gl_iters)
        costs = _measure_costs(module)
        module.cum_cost = [float(v) for v in torch.tensor(costs).cumsum(0)]
        with warnings.catch_warnings():  # torch.jit's deprecation notice
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(module)
    meta = {
        "format": NN_TILDE_FORMAT, "kind": "sda_lab.nn_tilde", "torch": torch.__version__,
        "sample_rate": module.sr, "clip_samples": module.clip, "hop_samples": module.hop,
        "ratio": RATIO,
        "latency_samples": {"forward": module.forward_latency, "decode": module.decode_latency,
                            "encode": module.encode_latency},
        "methods": {"forward": [1, 1, 1, 1], "encode": [1, 1, n_latents, RATIO],
                    "decode": [n_latents, RATIO, 1, 1]},
        "latents": [{"dim": int(d), "label": lab, "attribute": name, "kl": float(kl[d]),
                     "centre": float(centre[d]), "scale": float(scale[d])}
                    for d, lab, name in zip(dims, picked, names)],
        "inversion": {"start": module.inv.start, "learned": bool(module.inv.learned),
                      "nnls_iters": module.inv.nnls_iters, "griffin_lim_iters": module.gl_iters,
                      "phase_start": "the previous clip's phase where clips overlap, else zero"},
        "step_seconds_at_export": costs,
        "max_abs": MAX_ABS,
    }
    return scripted, meta


def export_nn_tilde(model, spec, inverter, mels: torch.Tensor, path: str | Path,
                    n_latents: int = 8, gl_iters: int | None = None,
                    labels: List[str] | None = None, info: Dict | None = None,
                    **traverse_kwargs) -> Path:
    """:func:`build_nn_tilde` written atomically to ``path``, with its metadata (plus ``info``)
    as the archive's extra file ``sda_lab.json`` (``torch.jit.load(path, _extra_files=...)``;
    in C++ ``torch::jit::load(path, device, extra_files)``) and beside it as ``path.json``.

    Raises
    ------
    sda_lab.core._io.WriteError
        ``path``'s folder cannot be written.
    """
    from ..core._io import atomic_write, atomic_write_json

    path = Path(path)
    scripted, meta = build_nn_tilde(model, spec, inverter, mels, n_latents, gl_iters, labels,
                                    **traverse_kwargs)
    meta.update(info or {}, file=path.name)
    extra = {"sda_lab.json": json.dumps(meta)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atomic_write(path, lambda f: torch.jit.save(scripted, f, _extra_files=extra))
    atomic_write_json(path.with_name(path.name + ".json"), meta)
    return path


def _run_folder(run: Path, ckpt) -> str | None:
    """The run's training folder as the explorer finds it (the checkpoint's record, else
    metrics.json's), when it still exists."""
    candidates = [ckpt.extra.get("folder")]
    metrics = run / "metrics.json"
    if metrics.is_file():
        try:
            candidates.append(json.loads(metrics.read_text()).get("folder"))
        except (OSError, ValueError):
            pass
    for folder in candidates:
        if folder and Path(folder).is_dir():
            return str(folder)
    return None


def export_run_nn_tilde(run: str | Path, out: str | Path, n_latents: int = 8,
                        gl_iters: int | None = None) -> Path:
    """Export a run folder of ``python -m sda_lab train`` (``best.pt`` preferred) for nn~:
    the run's learned inverse mel (``inverse_mel.pt``) where it has one, the latent channels
    ranked and named on the run's training folder as the explorer does (the default data set
    when the folder is gone, as the explorer; the metadata's ``ranked_on`` says which).

    Raises
    ------
    FileNotFoundError
        ``run`` is no run folder (one line).
    ValueError
        Unreadable checkpoint or inverse mel, ``n_latents`` outside the latent, ``out`` a folder.
    sda_lab.core._io.WriteError
        ``out``'s folder cannot be written.
    """
    from ..core._io import check_writable_dir
    from ..representation.inverter import Inverter
    from ..training.rundir import RunDir
    from ..training.checkpoint import load_checkpoint
    from .widgets.clips import mels_for

    ckpt_path = RunDir(run).run_checkpoint()
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out: expected a file name, got a folder: {out}")
    check_writable_dir(out.parent if str(out.parent) else Path("."), "--out")
    ckpt = load_checkpoint(ckpt_path, device="cpu")
    model, spec = ckpt.model.eval(), ckpt.spectrogram()
    inverter = Inverter.for_run(run, spec)  # its learned inverse mel, or the start it kept
    folder = _run_folder(Path(run), ckpt)
    mels, _ = mels_for(model, spec, folder)
    ranked_on = folder or "the default data set (the run's training folder is gone)"
    return export_nn_tilde(model, spec, inverter, mels, out, n_latents, gl_iters,
                           info={"run": str(run), "checkpoint": ckpt_path.name,
                                 "ranked_on": ranked_on})
