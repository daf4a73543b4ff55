"""Convolutional VAE over normalised log-mel spectrograms (reference plan: ``models/vae.py``).

    x (B, 1, 128, 94) --pad--> (B, 1, 128, 96) --4 x [Conv2d s2, BN, ReLU, Dropout2d]-->
    (B, 256, 8, 6) --flatten--> (B, 12288) --fc_mu / fc_logvar--> mu, logvar (B, 64)
    z (B, 64) --fc--> (B, 12288) --> (B, 256, 8, 6) --3 x [ConvT s2, BN, ReLU, Dropout2d],
    ConvT s2--> (B, 1, 128, 96) --sigmoid, crop--> (B, 1, 128, 94)

Where this differs from the reference plan
------------------------------------------
- The plan builds the flatten dimension lazily in the first forward pass. Until a batch has gone
  through, the parameter count is wrong and an optimizer built on ``model.parameters()`` misses the
  linear heads. Here every parameter is built at construction from the spectrogram shape
  (``n_mels``, ``n_frames``; defaults 128 x 94 = 1 s at 48 kHz), so
  ``sum(p.numel() for p in model.parameters()) == 3_148_545`` before any forward.
- The decoder's Sigmoid matches the representation: :mod:`sda_lab.representation.spectrogram` maps
  full-scale audio into [0, 1] (the plan's bare ``log1p`` peaked near 11, out of a sigmoid's
  reach).
- The last layer's bias starts at ``output_bias_init = -3`` (sigmoid 0.047, near the mean of
  real log-mels, which are mostly quiet) instead of 0 (sigmoid 0.5): the untrained decoder
  starts near quiet instead of at mid-scale, and reached a lower early reconstruction error in
  our runs.
- ``logvar`` is clamped to [-30, 20] in value but not in gradient (a straight-through clamp).
  While the plan's warm-up holds the KL weight at 0, nothing restrains the encoder; in our runs it
  drove ``logvar`` past 88, ``exp`` overflowed, and the loss became ``0 * inf = NaN``: the clamp
  (std between 3e-7 and 2e4) keeps ``exp`` finite. A plain clamp has no gradient past its bound,
  so a dimension whose ``logvar`` passed 20 in the first steps (Adam moves all 12,288 inputs of
  ``fc_logvar`` at once) stayed there for good: its KL stuck at ``exp(20) / 2 = 2.4e8`` nats and
  its noise (std 2e4) drowned the decoder (the default model's recipe at seed 1). The gradient
  of the unclamped value lets the KL pull it back.

Training tip (from the plan): clip gradient norms (the trainer uses 1.0); the KL and the wide
linear heads can produce large early gradients.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core._checks import check_latent, check_mel

LATENTS = ("vector", "sequence")
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0  # keeps exp(logvar) finite; see module docstring


@dataclass
class VAEConfig:
    """Architecture of :class:`ConvVAE`; defaults are the reference plan's.

    Every part of a model takes this one object (``ConvEncoder(config)``,
    ``ConvDecoder(config)``, ``ConvVAE(config)``); checkpoints store ``asdict(config)``.

    Raises
    ------
    ValueError
        On ``latent_dim < 1``, ``dropout`` outside [0, 1), ``n_mels`` not a multiple of
        ``2 ** len(channels)``, or ``n_frames < 1``."""

    latent_dim: int = 64
    dropout: float = 0.2
    n_mels: int = 128
    n_frames: int = 94  # 1 s at 48 kHz, hop 512: AudioSpectrogram().get_mel_shape(48000)[1]
    channels: tuple[int, ...] = (32, 64, 128, 256)
    output_bias_init: float = -3.0  # sigmoid(-3) = 0.047: start near quiet, not at 0.5
    # "vector": the plan's one latent vector per clip (a linear head over the whole bottleneck).
    # "sequence": a latent sequence along time, ``latent_dim // latent_frames`` values per latent
    # frame from one head shared by every frame (RAVE's latent is such a sequence, about 20 Hz).
    latent: str = "vector"
    # How many of the conv layers halve the time axis (the rest halve only the mel axis);
    # None: all of them, as in the plan. 2 with 94 frames at hop 512: 24 latent frames, ~23 Hz.
    time_halvings: int | None = None

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        down = 2 ** len(self.channels)
        if self.n_mels % down:
            raise ValueError(f"n_mels must be a multiple of {down}, got {self.n_mels}")
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be positive, got {self.n_frames}")
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {self.latent!r}")
        if self.time_halvings is not None and not 0 <= self.time_halvings <= len(self.channels):
            raise ValueError(f"time_halvings must be in 0..{len(self.channels)} (the conv "
                             f"layers) or None, got {self.time_halvings}")
        if self.latent == "sequence" and self.latent_dim % self.latent_frames:
            f = self.latent_frames
            near = sorted({f * max(1, self.latent_dim // f), f * (self.latent_dim // f + 1)})
            raise ValueError(
                f"latent='sequence' needs latent_dim a multiple of its {f} latent frames "
                f"({self.padded_frames} padded frames / 2**{self.halvings}), got latent_dim "
                f"{self.latent_dim}; e.g. {' or '.join(map(str, near))}")

    @property
    def halvings(self) -> int:
        """Conv layers that halve the time axis (``time_halvings``, default all)."""
        return len(self.channels) if self.time_halvings is None else self.time_halvings

    @property
    def latent_frames(self) -> int:
        """Time steps at the bottleneck: 6 by default (one latent vector sees all of them)."""
        return self.padded_frames // 2 ** self.halvings

    @property
    def latent_channels(self) -> int:
        """Latent values per latent frame for ``latent="sequence"``; ``latent_dim`` for a vector."""
        return self.latent_dim // self.latent_frames if self.latent == "sequence" else self.latent_dim

    @property
    def time_multiple(self) -> int:
        """Frame counts the model pads to are multiples of this: ``2 ** len(channels)`` (16 for
        the plan's four conv layers)."""
        return 2 ** len(self.channels)

    @property
    def padded_frames(self) -> int:
        """Frames after padding time up to a multiple of :attr:`time_multiple` (94 -> 96)."""
        m = self.time_multiple
        return -(-self.n_frames // m) * m

    @property
    def bottleneck_shape(self) -> tuple[int, int, int]:
        """(channels, mel rows, frames) at the narrowest point: (256, 8, 6) by default."""
        return self.channels[-1], self.n_mels // 2 ** len(self.channels), self.latent_frames

    @property
    def flatten_dim(self) -> int:
        c, h, w = self.bottleneck_shape
        return c * h * w


def _block(conv: nn.Module, channels: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.Dropout2d(dropout))


def make_config(config: VAEConfig | None = None, /, **fields: object) -> VAEConfig:
    """One :class:`VAEConfig` from either a config or its fields by name (not both).

    ``make_config(latent_dim=8)`` is ``VAEConfig(latent_dim=8)``; ``make_config(cfg)`` is
    ``cfg`` itself, so every part of a model shares one object.

    Raises
    ------
    TypeError
        On a ``config`` that is not a ``VAEConfig``, fields given with one, or an unknown field.
    """
    if config is not None:
        if not isinstance(config, VAEConfig):
            raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}; pass "
                            "scalar fields by name (latent_dim=..., dropout=...)")
        if fields:
            raise TypeError(f"pass a VAEConfig or its fields, not both (got {sorted(fields)})")
        return config
    known = {f.name for f in dataclasses.fields(VAEConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"unknown VAEConfig field(s) {unknown}; the fields are {sorted(known)}")
    return VAEConfig(**fields)


class ConvEncoder(nn.Module):
    """Mel ``(B, 1, n_mels, T)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``.

    ``ConvEncoder(config)`` or ``ConvEncoder(latent_dim=..., ...)`` (see :func:`make_config`).
    """

    def __init__(self, config: VAEConfig | None = None, /, **fields: object) -> None:
        super().__init__()
        self.config = c = make_config(config, **fields)
        c_in = (1, *c.channels[:-1])
        self.convs = nn.Sequential(*[
            _block(nn.Conv2d(i, o, kernel_size=3, stride=(2, 2 if k < c.halvings else 1),
                             padding=1), o, c.dropout)
            for k, (i, o) in enumerate(zip(c_in, c.channels))
        ])
        if c.latent == "sequence":  # one head per latent frame, shared along time
            ch, rows, _ = c.bottleneck_shape
            self.fc_mu = nn.Conv2d(ch, c.latent_channels, kernel_size=(rows, 1))
            self.fc_logvar = nn.Conv2d(ch, c.latent_channels, kernel_size=(rows, 1))
        else:
            self.fc_mu = nn.Linear(c.flatten_dim, c.latent_dim)
            self.fc_logvar = nn.Linear(c.flatten_dim, c.latent_dim)

    @property
    def flatten_dim(self) -> int:
        return self.config.flatten_dim

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a finite float32 mel this model was built for."""
        c = self.config
        check_mel(x, c.n_mels, "input")
        if x.dtype != torch.float32:
            raise ValueError(f"input must be float32, got {x.dtype}; use x.float()")
        m = c.time_multiple
        padded = -(-x.shape[3] // m) * m
        if padded != c.padded_frames:
            raise ValueError(
                f"model was built for {c.n_frames} frames (padded to {c.padded_frames}), got "
                f"{x.shape[3]} frames (padded to {padded}); it accepts "
                f"{c.padded_frames - m + 1}..{c.padded_frames} frames. For this "
                f"length build ConvVAE(n_frames={x.shape[3]}); AudioSpectrogram().get_mel_shape"
                "(num_samples) gives the frames of a clip length"
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        pad = self.config.padded_frames - x.shape[3]
        h = F.pad(x, (0, pad))  # (B, 1, n_mels, padded)
        h = self.convs(h)  # (B, 256, n_mels/16, latent_frames)
        if self.config.latent == "vector":
            h = h.flatten(1)  # (B, flatten_dim)
        # sequence: (B, latent_channels, 1, latent_frames) -> (B, latent) channel-major
        mu, logvar = self.fc_mu(h).flatten(1), self.fc_logvar(h).flatten(1)  # (B, latent) each
        # clamped in value (exp() stays finite), not in gradient: see the module docstring
        bounded = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        return mu, logvar + (bounded - logvar).detach()  # (B, latent)


class ConvDecoder(nn.Module):
    """Latent ``(B, latent_dim)`` -> mel ``(B, 1, n_mels, T)`` in (0, 1).

    ``ConvDecoder(config)`` or ``ConvDecoder(latent_dim=..., ...)`` (see :func:`make_config`).
    """

    def __init__(self, config: VAEConfig | None = None, /, **fields: object) -> None:
        super().__init__()
        self.config = c = make_config(config, **fields)
        if c.latent == "sequence":  # per latent frame, the encoder's head mirrored
            ch, rows, _ = c.bottleneck_shape
            self.fc = nn.ConvTranspose2d(c.latent_channels, ch, kernel_size=(rows, 1))
        else:
            self.fc = nn.Linear(c.latent_dim, c.flatten_dim)
        rev = c.channels[::-1]  # 256, 128, 64, 32
        n = len(c.channels)

        def up(i: int, o: int, k: int) -> nn.ConvTranspose2d:
            t = 2 if n - 1 - k < c.halvings else 1  # mirrors encoder layer n - 1 - k
            return nn.ConvTranspose2d(i, o, kernel_size=3, stride=(2, t), padding=1,
                                      output_padding=(1, t - 1))

        self.deconvs = nn.Sequential(
            *[_block(up(i, o, k), o, c.dropout) for k, (i, o) in enumerate(zip(rev[:-1], rev[1:]))],
            up(rev[-1], 1, n - 1),
        )
        nn.init.constant_(self.deconvs[-1].bias, c.output_bias_init)
        self.output_activation = nn.Sigmoid()  # the representation lives in [0, 1]

    def forward(self, z: torch.Tensor, target_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        c = self.config
        check_latent(z, c.latent_dim)
        frames = c.n_frames if target_shape is None else int(target_shape[-1])
        if target_shape is not None and int(target_shape[-2]) != c.n_mels:
            raise ValueError(f"target_shape must have {c.n_mels} mel bands, got {target_shape}")
        if not c.padded_frames - c.time_multiple < frames <= c.padded_frames:
            raise ValueError(
                f"decoder was built for {c.n_frames} frames (padded to {c.padded_frames}); "
                f"cannot produce {frames}"
            )
        if c.latent == "sequence":
            z = z.view(-1, c.latent_channels, 1, c.latent_frames)  # (B, latent_channels, 1, T')
        h = self.fc(z).view(-1, *c.bottleneck_shape)  # (B, 256, n_mels/16, latent_frames)
        h = self.deconvs(h)  # (B, 1, n_mels, padded)
        return self.output_activation(h[..., :frames])  # (B, 1, n_mels, frames)


class ConvVAE(nn.Module):
    """Convolutional VAE; every parameter exists from construction.

    One :class:`VAEConfig` describes it and is handed to both parts, as nanoGPT hands
    ``GPTConfig`` down: ``model.config is model.encoder.config is model.decoder.config``.

    Parameters
    ----------
    config : VAEConfig, optional
        The architecture. Or pass its fields by name instead (the reference plan's
        ``ConvVAE(latent_dim=64, dropout=0.2)``); the config is built once from them.
        ``latent_dim``, ``dropout``: the plan's 64 and 0.2. ``n_mels``, ``n_frames``: the
        spectrogram shape the model is built for (128 x 94 = 1 s at 48 kHz); inputs may have any
        frame count that pads to the same multiple of 16 (81..96 by default).

    Raises
    ------
    TypeError
        On both a config and fields, or an unknown field. ``ValueError`` on invalid values
        (see :class:`VAEConfig`).
    """

    def __init__(self, config: VAEConfig | None = None, /, **fields: object) -> None:
        super().__init__()
        self.config = make_config(config, **fields)
        self.encoder = ConvEncoder(self.config)
        self.decoder = ConvDecoder(self.config)

    @classmethod
    def from_config(cls, config: VAEConfig) -> ConvVAE:
        """The model of ``config``; ``ConvVAE.from_config(cfg).config == cfg``."""
        return cls(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def get_num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, n_mels, T)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``."""
        return self.encoder(x)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``: ``(B, latent_dim)``."""
        std = torch.exp(0.5 * logvar)
        return mu + std * torch.randn_like(std)

    def decode(self, z: torch.Tensor, target_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """``(B, latent_dim)`` -> ``(B, 1, n_mels, T)``; ``T`` from ``target_shape[-1]`` or the
        frames the model was built for."""
        return self.decoder(z, target_shape)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (B, 1, n_mels, T)`` -> ``(recon, mu, logvar)`` with ``recon.shape == x.shape``."""
        mu, logvar = self.encode(x)  # (B, latent), (B, latent)
        z = self.reparameterize(mu, logvar)  # (B, latent)
        return self.decode(z, x.shape), mu, logvar  # (B, 1, n_mels, T)

    @torch.no_grad()
    def sample(self, num_samples: int, device: torch.device | str | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``num_samples`` draws from the prior N(0, I): ``(N, 1, n_mels, n_frames)``.

        Runs in eval mode (no dropout, running BatchNorm statistics) and restores the mode.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        device = torch.device(device) if device is not None else next(self.parameters()).device
        z = torch.randn(num_samples, self.latent_dim, generator=generator,
                        device=generator.device if generator is not None else device)
        was_training = self.training
        self.eval()
        try:
            return self.decode(z.to(device))  # (N, 1, n_mels, n_frames)
        finally:
            self.train(was_training)


@torch.no_grad()
def eval_batches(model: ConvVAE, mels: torch.Tensor, batch_size: int = 128,
                 decode: bool = False):
    """The one eval-mode encode(/decode) loop: ``mels`` ``(N, 1, n_mels, T)`` in batches of
    ``batch_size`` through ``model`` with dropout off and BatchNorm's running statistics, no
    gradients; the model's train/eval mode is restored when the loop ends (or is left).

    Yields
    ------
    x, mu, logvar, recon
        Per batch: the batch on the model's device ``(b, 1, n_mels, T)``, the posterior
        ``mu``, ``logvar`` ``(b, D)``, and with ``decode`` the posterior mean decoded
        ``(b, 1, n_mels, T)`` (else ``None``), all on the model's device.

    Used by :func:`encode_dataset` and :func:`sda_lab.training.diagnostics.reconstruct`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for i in range(0, mels.shape[0], batch_size):
            x = mels[i:i + batch_size].to(device)  # (b, 1, n_mels, T)
            mu, logvar = model.encode(x)  # (b, D) each
            yield x, mu, logvar, model.decode(mu, x.shape) if decode else None  # (b, 1, M, T)
    finally:
        model.train(was_training)


def encode_dataset(model: ConvVAE, mels: torch.Tensor, batch_size: int = 128
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances of every mel ``(N, 1, n_mels, T)``, in eval mode
    (:func:`eval_batches`; the model's mode is restored): two ``(N, D)`` tensors on the
    model's device."""
    mus, logvars = [], []
    for _, mu, logvar, _ in eval_batches(model, mels, batch_size):
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)  # (N, D), (N, D)


def summary(model: ConvVAE, batch_size: int = 1, depth: int = 3):
    """torchinfo's layer table (output shape and parameters per layer) for one input batch."""
    from torchinfo import summary as _summary

    c = model.config
    return _summary(
        model, input_size=(batch_size, 1, c.n_mels, c.n_frames), depth=depth,
        col_names=("output_size", "num_params"), row_settings=("var_names",), verbose=0,
        device=next(model.parameters()).device,
    )


def parameter_breakdown(model: ConvVAE) -> list[dict[str, object]]:
    """One row per layer that owns parameters: name, type, formula, count.

    The formula spells the count out (kernel 3): Conv2d/ConvTranspose2d ``in*out*9 + out``,
    BatchNorm2d ``2*out`` (scale and shift; running statistics are buffers), Linear
    ``in*out + out``.
    """
    rows = []
    for name, mod in model.named_modules():
        own = sum(p.numel() for p in mod.parameters(recurse=False))
        if not own:
            continue
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            i, o = mod.in_channels, mod.out_channels
            k = mod.kernel_size[0] * mod.kernel_size[1]
            formula = f"{i}*{o}*{k} + {o}"
        elif isinstance(mod, nn.BatchNorm2d):
            formula = f"2*{mod.num_features}"
        elif isinstance(mod, nn.Linear):
            formula = f"{mod.in_features}*{mod.out_features} + {mod.out_features}"
        else:
            formula = "?"
        rows.append({"layer": name, "type": type(mod).__name__, "formula": formula,
                     "parameters": own})
    return rows


@torch.no_grad()
def feature_maps(model: ConvVAE, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of each encoder block for ``x`` ``(1, 1, n_mels, T)``: ``(1, C_i, H_i, W_i)`` each."""
    maps: list[torch.Tensor] = []
    hooks = [blk.register_forward_hook(lambda m, i, o: maps.append(o.detach().cpu()))
             for blk in model.encoder.convs]
    try:
        model.encode(x)
    finally:
        for h in hooks:
            h.remove()
    return maps
