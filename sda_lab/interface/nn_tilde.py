"""The streaming TorchScript module for nn~ (Max, Pure Data) and libtorch hosts.

:class:`NNTildeVAE` is what the file of ``export --for nn~`` holds: a trained run that streams
block by block. :mod:`sda_lab.interface.nn_tilde_export` builds it from a model or a run (ranks,
names and picks the latent channels, measures the step costs, scripts it) and writes the file
with its metadata.

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
("z33 · brighter ↑" -> ``z33_brighter``; the labels keep the explorer's words). This module
takes the dimensions, centre, scale, names and labels it is given; the build
(:func:`sda_lab.interface.nn_tilde_export.build_nn_tilde`) ranks, picks and names them and adds
each attribute's ``get_<name>``/``set_<name>`` pair (a subclass of :class:`NNTildeVAE`).

How it streams (state carried across calls, separately for each method): the model works on
clips of ``clip`` samples. Every ``hop = clip // 2`` samples the last clip (a ring buffer of
the input) is encoded, decoded and inverted; the waveform is weighted by a periodic Hann window
of ``2 * hop`` samples (the windows sum to 1) and overlap-added. The work on one clip is spread
over the calls of the next ``hop`` samples, in steps (encode, decode, NNLS chunks, harmonic
chunks, the learned inverse, one Griffin-Lim iteration each, the inverse STFT) in proportion to
their cost measured when the file is built (``cum_cost``), so no single block carries a whole
inversion. Hence the latency: ``forward`` returns the input's reconstruction ``clip + hop``
samples late; ``decode`` starts a latent's clip ``hop`` samples after the hop boundary that
picked it up (latents are read once per hop, so a change waits up to another hop); ``encode``'s
frames hold the latent of the last clip completed (an input shows up to ``hop`` samples later).
``get_latency(method)``, the ``<method>_latency`` attributes and the archive's ``sda_lab.json``
(written by the export) give these numbers. Output does not depend on the block size (the work
is the same, only its timing moves).

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

import math
from typing import List

import torch
from torch import nn

from ..representation.scripted import MAX_ABS, check_audio, check_input, trace_method

__all__ = ["MAX_ABS", "RATIO", "GL_ITERS", "NNTildeVAE"]

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
    """The streaming module (module docstring); build it with
    :func:`sda_lab.interface.nn_tilde_export.build_nn_tilde`.

    Parameters
    ----------
    model : ConvVAE
        The trained VAE (left as it is: a frozen copy is traced).
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
