"""A per-run neural vocoder: HiFi-GAN's generator from our normalised mel to a waveform.

Shapes throughout:

    mel       (B, 1, n_mels, T)   normalised mel of an
                                  :class:`~sda_lab.representation.spectrogram.AudioSpectrogram`
                                  (the layout :class:`~sda_lab.representation.inverter.Inverter`
                                  takes; the generator drops the channel axis itself)
    waveform  (B, 1, T * hop)     in (-1, 1) (tanh); ``hop`` = the product of ``upsample_rates``

The generator is HiFi-GAN's (Kong, Kim & Bae 2020, "HiFi-GAN: Generative adversarial networks
for efficient and high fidelity speech synthesis", github.com/jik876/hifi-gan ``models.py``),
config V2 by default: a 7-tap convolution from the mel bands to ``upsample_initial_channel``
channels, then per upsampling a leaky ReLU (slope 0.1), a transposed convolution (rate ``u``,
kernel ``k``, padding ``(k - u) // 2``) halving the channels, and the mean of one multi-receptive
field residual block (type 1) per kernel in ``resblock_kernel_sizes`` with its dilations; then a
leaky ReLU (0.01, as the reference code), a 7-tap convolution to one channel and tanh. Weight
normalisation on every convolution, weights drawn from N(0, 0.01). V2's upsample rates are
``[8, 8, 2, 2]`` for hop 256; for our hop 512 they are ``[8, 8, 4, 2]`` with kernels
``[16, 16, 8, 4]`` (each kernel twice its rate, as V2's). ``T`` frames give ``T * hop``
samples; :class:`Vocoder` crops them to the clip's length (frame ``t`` of a centred STFT sits at
sample ``t * hop``, so a clip of ``L`` samples has ``L // hop + 1`` frames and ``T * hop > L``).

Training (discriminators, losses, the run's record) is :mod:`sda_lab.training.vocoder`; a run's
vocoder lives in ``RUN/vocoder.pt`` (:func:`save_vocoder`, :func:`load_vocoder`), and
:meth:`Inverter.for_run <sda_lab.representation.inverter.Inverter.for_run>` hears the run through
it only where its record says it was kept (``history["kept"] == "vocoder"``: it beat the run's
own inversion on held-out files).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..core._checks import check_mel
from ..core._io import atomic_torch_save

__all__ = ["VOCODER_FILE", "KEPT", "VocoderConfig", "HiFiGANGenerator", "Vocoder",
           "save_vocoder", "load_vocoder", "load_training_state"]

VOCODER_FILE = "vocoder.pt"  # its name inside a run folder
KIND = "sda_lab.vocoder"
FORMAT = 1
KEPT = ("vocoder", "inverter")  # history["kept"]: which of the two a run is heard through


@dataclass
class VocoderConfig:
    """The vocoder's generator, discriminators and training, defaults in one place.

    Generator (HiFi-GAN V2 at hop 512): ``upsample_initial_channel``, ``upsample_rates`` (their
    product must be the spectrogram's hop), ``upsample_kernel_sizes``, ``resblock_kernel_sizes``,
    ``resblock_dilation_sizes``. Discriminators (:mod:`sda_lab.training.vocoder`): the
    multi-period ``mpd_periods`` with channels ``mpd_channels``, the multi-scale one over
    ``msd_scales`` scales with channels ``msd_channels`` (HiFi-GAN's widths by default; tests
    shrink them). Training: random segments of ``segment_frames`` mel frames
    (``segment_frames * hop`` samples) in batches of ``batch_size``, AdamW at ``lr`` with
    ``betas``, loss ``adversarial + fm_weight * feature matching + mel_weight * L1`` (HiFi-GAN's
    weights 2 and 45; the L1 is on our normalised mel), the discriminators joining at step
    ``adversarial_start`` (0: from the start, as HiFi-GAN). ``eval_clips``: at most this many
    clips per held-out file are scored.

    Raises
    ------
    ValueError
        One line naming the field: non-positive sizes, rates and kernels of different lengths,
        a kernel smaller than its rate or of another parity, an odd upsample channel count
        that cannot be halved per rate, or a bad training setting.
    """

    upsample_initial_channel: int = 128
    upsample_rates: tuple[int, ...] = (8, 8, 4, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    msd_scales: int = 3
    msd_channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)
    segment_frames: int = 16
    batch_size: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    mel_weight: float = 45.0
    fm_weight: float = 2.0
    adversarial_start: int = 0
    eval_clips: int = 2

    def __post_init__(self) -> None:
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes",
                     "mpd_periods", "mpd_channels", "msd_channels", "betas"):
            setattr(self, name, tuple(getattr(self, name)))
        self.resblock_dilation_sizes = tuple(tuple(d) for d in self.resblock_dilation_sizes)
        for name in ("upsample_initial_channel", "msd_scales", "segment_frames", "batch_size",
                     "eval_clips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes",
                     "mpd_periods", "mpd_channels", "msd_channels"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"{name}: expected positive integers, got {values!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(f"upsample_kernel_sizes: expected one kernel per upsample rate "
                             f"({len(self.upsample_rates)}), got {self.upsample_kernel_sizes!r}")
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if k < u or (k - u) % 2:
                raise ValueError(f"upsample_kernel_sizes: expected each kernel >= its rate with "
                                 f"an even difference (output = input * rate), got kernel {k} "
                                 f"for rate {u}")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ValueError(f"upsample_initial_channel: expected a multiple of "
                             f"{2 ** len(self.upsample_rates)} (halved per upsampling), got "
                             f"{self.upsample_initial_channel}")
        if len(self.resblock_dilation_sizes) != len(self.resblock_kernel_sizes):
            raise ValueError(f"resblock_dilation_sizes: expected one tuple per resblock kernel "
                             f"({len(self.resblock_kernel_sizes)}), got "
                             f"{self.resblock_dilation_sizes!r}")
        if len(self.mpd_channels) < 2 or len(self.msd_channels) < 2:
            raise ValueError("mpd_channels, msd_channels: expected at least two widths each")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {self.betas!r}")
        for name in ("lr",):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        for name in ("mel_weight", "fm_weight"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.adversarial_start, int) or self.adversarial_start < 0:
            raise ValueError(f"adversarial_start: expected a step >= 0, got "
                             f"{self.adversarial_start!r}")

    @property
    def hop_length(self) -> int:
        """Samples per mel frame: the product of ``upsample_rates``."""
        return math.prod(self.upsample_rates)


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        nn.init.normal_(module.weight, 0.0, 0.01)


class ResBlock1(nn.Module):
    """HiFi-GAN's residual block type 1: per dilation ``d``, ``x + conv(lrelu(conv_d(lrelu(x))))``
    (kernel ``k``, same length). ``(B, C, L)`` -> ``(B, C, L)``."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, 1, dilation=d,
                                  padding=_padding(kernel, d))) for d in dilations)
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, 1, padding=_padding(kernel)))
            for _ in dilations)
        self.slope = 0.1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(nn.functional.leaky_relu(x, self.slope))  # (B, C, L)
            x = c2(nn.functional.leaky_relu(xt, self.slope)) + x  # (B, C, L)
        return x


class HiFiGANGenerator(nn.Module):
    """HiFi-GAN's generator (module docstring): mel ``(B, 1, n_mels, T)`` -> ``(B, 1, T * hop)``.

    Parameters
    ----------
    n_mels : int
        Mel bands of the input.
    config : VocoderConfig
        Its generator fields.
    """

    def __init__(self, n_mels: int, config: VocoderConfig) -> None:
        super().__init__()
        c = config
        ch = c.upsample_initial_channel
        self.n_mels, self.hop_length = n_mels, c.hop_length
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)):
            self.ups.append(weight_norm(nn.ConvTranspose1d(ch // 2 ** i, ch // 2 ** (i + 1), k,
                                                           u, padding=(k - u) // 2)))
            for kernel, dilations in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(ch // 2 ** (i + 1), kernel, dilations))
        self.conv_post = weight_norm(nn.Conv1d(ch // 2 ** len(c.upsample_rates), 1, 7, 1,
                                               padding=3))
        self.n_kernels = len(c.resblock_kernel_sizes)
        self.apply(_init)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel[:, 0])  # (B, ch, T)
        for i, up in enumerate(self.ups):
            x = up(nn.functional.leaky_relu(x, 0.1))  # (B, ch / 2^(i+1), T * prod(rates[:i+1]))
            blocks = self.resblocks[i * self.n_kernels:(i + 1) * self.n_kernels]
            x = sum(block(x) for block in blocks) / self.n_kernels  # same shape
        x = self.conv_post(nn.functional.leaky_relu(x))  # (B, 1, T * hop)
        return torch.tanh(x)


@dataclass
class Vocoder:
    """A trained vocoder: the generator, the representation it inverts, its config and record.

    ``history``: ``steps``, ``cpu_seconds``, ``wall_seconds``, ``evaluations`` (held-out figures
    per evaluation) and ``kept`` (one of :data:`KEPT`, or None before any evaluation).
    """

    generator: HiFiGANGenerator
    spectrogram_config: dict
    config: VocoderConfig
    history: dict = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """Whether the record says it beat the run's own inversion (``kept == "vocoder"``)."""
        return self.history.get("kept") == "vocoder"

    def check_spectrogram(self, spec) -> None:
        """``ValueError`` (one line) unless ``spec`` is the representation this was trained on."""
        given = asdict(spec.config)
        if given != self.spectrogram_config:
            diff = {k: (v, given.get(k)) for k, v in self.spectrogram_config.items()
                    if given.get(k) != v}
            raise ValueError(f"the vocoder was trained on another spectrogram config: "
                             f"(trained, given) differ in {diff}")

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``mel`` ``(B, 1, n_mels, T)`` -> ``(B, 1, length)`` (``(T - 1) * hop`` when None) on
        ``mel``'s device and dtype; the generator runs in eval mode on the CPU or where its
        weights are.

        Raises
        ------
        ValueError
            On a bad mel or a ``length`` outside ``[1, T * hop]``.
        """
        mel = check_mel(mel, self.generator.n_mels)
        hop, frames = self.generator.hop_length, mel.shape[-1]
        length = (frames - 1) * hop if length is None else length
        if not 1 <= length <= frames * hop:
            raise ValueError(f"length: expected 1 to {frames * hop} samples for {frames} frames, "
                             f"got {length}")
        device = next(self.generator.parameters()).device
        was = self.generator.training
        self.generator.eval()
        try:
            y = self.generator(mel.float().to(device))  # (B, 1, T * hop)
        finally:
            self.generator.train(was)
        return y[..., :length].to(mel.device, mel.dtype)  # (B, 1, length)


def save_vocoder(path: str | Path, vocoder: Vocoder, training: dict | None = None) -> Path:
    """Write ``vocoder`` to ``path`` atomically (``sda_lab.core._io.atomic_torch_save``), with
    ``training`` (the state a resumed training goes on from: discriminators, optimisers, step,
    random state) where given. With HiFi-GAN's discriminators and their AdamW moments that
    state is most of the file (hundreds of MB); :func:`load_vocoder` maps the file and reads
    only the generator."""
    payload = {"format": FORMAT, "kind": KIND, "config": asdict(vocoder.config),
               "spectrogram_config": vocoder.spectrogram_config,
               "generator": {k: v.detach().cpu() for k, v in
                             vocoder.generator.state_dict().items()},
               "history": vocoder.history, "training": training}
    return atomic_torch_save(path, payload)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"vocoder not found: {path}")
    try:
        # memory-mapped: the discriminators' and optimisers' state (most of the file) is
        # read only by a resumed training, not by listening
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable vocoder "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from exc
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise ValueError(f"{path} is not an sda-lab vocoder (no kind {KIND!r})")
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} has vocoder format {payload.get('format')}, this sda-lab "
                         f"reads {FORMAT}")
    return payload


def load_vocoder(path: str | Path) -> Vocoder:
    """Read what :func:`save_vocoder` wrote (on the CPU, eval mode).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        One line: not readable, not a vocoder, another format, or weights that do not fit.
    """
    path = Path(path)
    payload = _read(path)
    config = VocoderConfig(**payload["config"])
    sc = payload["spectrogram_config"]
    if sc.get("hop_length") != config.hop_length:
        raise ValueError(f"{path}: its upsample rates give hop {config.hop_length}, its "
                         f"spectrogram config hop {sc.get('hop_length')}")
    generator = HiFiGANGenerator(sc["n_mels"], config)
    try:
        generator.load_state_dict(payload["generator"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the saved weights do not fit the generator its config "
                         f"describes ({str(exc).splitlines()[0]})") from exc
    generator.eval()
    return Vocoder(generator, sc, config, payload.get("history") or {})


def load_training_state(path: str | Path) -> dict | None:
    """The training state :func:`save_vocoder` stored beside the generator (None: none)."""
    return _read(Path(path)).get("training")
