"""A small trainer for :class:`~sda_lab.vae.ConvVAE`: a loop, not a framework.

AdamW, gradient-norm clipping, a KL weight per epoch from a schedule, a tqdm progress bar, a
per-epoch history (recon, KL, raw KL, weight, active units) that plots in one call, a fixed seed,
automatic device choice, and atomic checkpoints (model, configs, optimizer, history) that load
back into an identical model. A non-finite loss stops training with the epoch and step named,
and the last good checkpoint is kept.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .losses import active_units, cyclical_kl_weight, get_kl_weight, kl_per_dimension, vae_loss
from .utils import pick_device, seed_everything
from .vae import ConvVAE, VAEConfig, encode_dataset

SCHEDULES = ("linear", "cyclical", "constant")
CHECKPOINT_FORMAT = 1


@dataclass
class TrainConfig:
    """How to train; loss defaults are the seed's (free bits 0.5 per sample, 30% warm-up)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW's default decoupled decay
    grad_clip: float = 1.0  # max gradient norm; the seed recommends clipping
    kl_schedule: str = "linear"  # "linear" warm-up, "cyclical" (Fu et al.) or "constant"
    warmup_fraction: float = 0.3
    n_cycles: int = 4
    cycle_ratio: float = 0.5
    kl_weight: float = 1.0  # the weight reached after warm-up (or held, for "constant")
    free_bits: float = 0.5
    free_bits_mode: str = "per_sample"
    seed: int = 0
    device: str | None = None  # None: CUDA, then MPS, then CPU

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.kl_schedule not in SCHEDULES:
            raise ValueError(f"kl_schedule must be one of {SCHEDULES}, got {self.kl_schedule!r}")

    def kl_weight_at(self, epoch: int) -> float:
        if self.kl_schedule == "linear":
            w = get_kl_weight(epoch, self.epochs, self.warmup_fraction)
        elif self.kl_schedule == "cyclical":
            w = cyclical_kl_weight(epoch, self.epochs, self.n_cycles, self.cycle_ratio)
        else:
            w = 1.0
        return w * self.kl_weight


@dataclass
class History:
    """Per-epoch means; ``kl_per_dim`` holds the final raw KL of each latent dimension."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    recon: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)  # the optimised, free-bits-clamped KL
    raw_kl: list[float] = field(default_factory=list)  # KL without free bits
    kl_weight: list[float] = field(default_factory=list)
    active_units: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    kl_per_dim: list[float] = field(default_factory=list)
    au_variance: list[float] = field(default_factory=list)

    def informative_dims(self, threshold: float = 0.1) -> int:
        """Latent dimensions whose final raw KL exceeds ``threshold`` nats."""
        return sum(k > threshold for k in self.kl_per_dim)

    def summary(self) -> dict[str, object]:
        """One table row: epochs, wall time, first and final KL, final recon, active units."""
        return {
            "epochs": len(self.epoch),
            "wall s": round(sum(self.seconds), 1),
            "raw KL epoch 0": round(self.raw_kl[0], 1),
            "final recon": round(self.recon[-1], 4),
            "final raw KL": round(self.raw_kl[-1], 2),
            "final active units": self.active_units[-1],
            "max active units": max(self.active_units),
            "dims with KL > 0.1 nats": self.informative_dims(0.1),
        }

    def plot(self, title: str | None = None, axes=None):
        """Recon, KL (clamped and raw), KL weight and active units against epoch."""
        import matplotlib.pyplot as plt

        from .plotting import FIG_DPI

        if axes is None:
            fig, axes = plt.subplots(1, 4, figsize=(13, 2.6), dpi=FIG_DPI)
        else:
            fig = axes[0].figure
        ep = self.epoch
        axes[0].plot(ep, self.recon, label=title)
        axes[0].set_title("reconstruction MSE")
        axes[0].set_yscale("log")
        axes[1].plot(ep, self.raw_kl, label=f"{title or ''} raw")
        axes[1].plot(ep, self.kl, ls=":", color=axes[1].lines[-1].get_color())
        axes[1].set_title("KL nats (solid raw, dotted optimised)")
        axes[1].set_yscale("log")  # unweighted epochs reach 1e8 nats; later ones a few
        axes[2].plot(ep, self.kl_weight, label=title)
        axes[2].set_title("KL weight")
        axes[3].plot(ep, self.active_units, label=title)
        axes[3].set_title("active units")
        for ax in axes:
            ax.set_xlabel("epoch")
        if title:
            axes[0].legend(fontsize=7)
        fig.tight_layout()
        return fig


class TrainingDiverged(RuntimeError):
    """Raised when the loss becomes NaN or Inf."""


def train(model: ConvVAE, mels: torch.Tensor, config: TrainConfig | None = None,
          checkpoint_path: str | Path | None = None, progress: bool = True,
          optimizer: torch.optim.Optimizer | None = None) -> History:
    """Train ``model`` on ``mels`` ``(N, 1, n_mels, T)`` and return the per-epoch history.

    The model is moved to the chosen device. When ``checkpoint_path`` is given, a checkpoint is
    written atomically after every epoch, so the file on disk is always the last good one.

    Raises
    ------
    ValueError
        If ``mels`` does not fit the model (shape, dtype, NaN) or is empty.
    TrainingDiverged
        If the loss becomes NaN or Inf; the message names the epoch and step.
    """
    config = config or TrainConfig()
    if mels.dim() != 4 or mels.shape[0] == 0:
        raise ValueError(f"mels must be a non-empty (N, 1, n_mels, T) batch, got {tuple(mels.shape)}")
    data = mels.float()  # (N, 1, n_mels, T)
    model.encoder.check_input(data)
    seed_everything(config.seed)
    device = pick_device(config.device)
    model.to(device)
    data = data.to(device)  # moved once
    n = data.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=config.lr,
                                               weight_decay=config.weight_decay)
    history = History()
    generator = torch.Generator().manual_seed(config.seed)
    bar = tqdm(total=config.epochs * steps_per_epoch, disable=not progress, unit="step",
               desc="training", leave=True, mininterval=0.5)
    for epoch in range(config.epochs):
        model.train()
        t0 = time.perf_counter()
        weight = config.kl_weight_at(epoch)
        order = torch.randperm(n, generator=generator).to(device)
        sums = torch.zeros(4, device=device)  # loss, recon, kl, raw kl (summed over samples)
        for step in range(steps_per_epoch):
            x = data[order[step * config.batch_size:(step + 1) * config.batch_size]]  # (b, 1, M, T)
            recon, mu, logvar = model(x)
            total, recon_loss, kl_loss = vae_loss(recon, x, mu, logvar, kl_weight=weight,
                                                  free_bits=config.free_bits,
                                                  free_bits_mode=config.free_bits_mode)
            if not torch.isfinite(total):
                bar.close()
                kept = f"; last good checkpoint kept at {checkpoint_path}" if (
                    checkpoint_path and Path(checkpoint_path).exists()) else ""
                raise TrainingDiverged(
                    f"loss became {total.item()} at epoch {epoch}, step {step} (recon "
                    f"{recon_loss.item():.4g}, KL {kl_loss.item():.4g}, weight {weight:.3g}); "
                    f"try a lower lr (now {config.lr:g}){kept}"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            with torch.no_grad():
                raw = kl_per_dimension(mu, logvar).sum(dim=1).mean()
                sums += torch.stack([total, recon_loss, kl_loss, raw]).detach() * x.shape[0]
            bar.update(1)
        means = (sums / n).tolist()
        mu_all, logvar_all = encode_dataset(model, data)
        au, variances = active_units(mu_all)
        history.epoch.append(epoch)
        history.loss.append(means[0])
        history.recon.append(means[1])
        history.kl.append(means[2])
        history.raw_kl.append(means[3])
        history.kl_weight.append(weight)
        history.active_units.append(au)
        history.seconds.append(time.perf_counter() - t0)
        history.kl_per_dim = kl_per_dimension(mu_all, logvar_all).mean(0).tolist()
        history.au_variance = variances.tolist()
        bar.set_postfix(recon=f"{means[1]:.4f}", kl=f"{means[3]:.1f}", au=au, refresh=False)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, history, config)
    bar.close()
    model.eval()
    return history


def save_checkpoint(path: str | Path, model: ConvVAE, optimizer: torch.optim.Optimizer | None,
                    history: History | None, train_config: TrainConfig | None = None,
                    extra: dict | None = None) -> Path:
    """Write weights, configs, optimizer and history to ``path`` atomically.

    The file is written to a temporary file in the same folder and renamed over ``path`` only
    when complete, so a failed save never leaves a half-written checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": asdict(model.config),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "history": asdict(history) if history is not None else None,
        "train_config": asdict(train_config) if train_config is not None else None,
        "extra": extra or {},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass
class Checkpoint:
    model: ConvVAE
    history: History | None
    train_config: TrainConfig | None
    optimizer_state: dict | None
    extra: dict


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Rebuild the model (in eval mode) and read everything else saved by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable sda-lab checkpoint ({exc})") from exc
    missing = {"format", "model_config", "model_state"} - set(payload)
    if missing:
        raise ValueError(f"{path} is not an sda-lab checkpoint: missing {sorted(missing)}")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {payload['format']}, this sda-lab reads "
                         f"{CHECKPOINT_FORMAT}")
    model = ConvVAE.from_config(VAEConfig(**payload["model_config"]))
    model.load_state_dict(payload["model_state"])
    model.to(pick_device(str(device)) if device is not None else pick_device()).eval()
    hist = History(**payload["history"]) if payload.get("history") else None
    tc = TrainConfig(**payload["train_config"]) if payload.get("train_config") else None
    return Checkpoint(model, hist, tc, payload.get("optimizer_state"), payload.get("extra", {}))


# -- the default model the explorer opens on -------------------------------------------------

DEFAULT_CLIPS_PER_KIND = 60  # 300 clips
# The seed's loss adds a per-element *mean* MSE to a per-sample *sum* of KL over 64 dimensions.
# Against a Gaussian decoder's ELBO that is a beta of about 2 * sigma^2 / 12,032 pixels, i.e.
# the seed's weight 1.0 is ~10^5 times too strong and the posterior collapses (notebooks 03-04
# show it). The explorer wants a latent whose dimensions differ in how much they matter, so its
# model uses a KL weight of 1e-3, no free bits and no dropout. Measured on the 300 default clips
# (recon MSE in eval mode; the data set's mean image scores 0.0185; "effect" is the mean change
# of the decoded mel for a 2-sd move of the top-ranked dimension, averaged over three clips):
#   weight 1e-3, free bits 0.5, dropout 0.2, 30 ep: MSE 0.0102, KL 15 nats, top effect 0.006
#   weight 1e-3, free bits 0.5, dropout 0,   40 ep: MSE 0.0077, KL 17 nats, top effect 0.008
#     (free bits let every dimension sit just under 0.5 nats: no dimension stands out)
#   weight 1e-3, free bits 0,   dropout 0,   40 ep: MSE 0.0106, KL 3.5 nats, top effect 0.076,
#     lowest-ranked 0.002: the chosen default
#   weight 3e-3, free bits 0,   dropout 0,   40 ep: MSE 0.0152, KL 0.8 nats (too collapsed)
DEFAULT_MODEL = VAEConfig(dropout=0.0)
DEFAULT_TRAIN = TrainConfig(epochs=40, lr=2e-3, kl_weight=1e-3, free_bits=0.0)


def default_cache_dir() -> Path:
    """``$SDA_LAB_CACHE``, else ``data/cache`` of a source checkout, else ``~/.cache/sda-lab``."""
    env = os.environ.get("SDA_LAB_CACHE")
    if env:
        return Path(env)
    repo_data = Path(__file__).resolve().parents[1] / "data"
    if repo_data.is_dir():
        return repo_data / "cache"
    return Path.home() / ".cache" / "sda-lab"


def load_or_train_default(path: str | Path | None = None, progress: bool = True,
                          config: TrainConfig | None = None) -> Checkpoint:
    """The VAE trained on the default data: loaded from the cache, or trained and cached.

    Training (40 epochs on 300 clips) takes about 1.5 minutes on a 2-core CPU. The cache file name carries the training
    configuration, so changing ``config`` trains a new model instead of loading a stale one.
    """
    import hashlib
    import json

    from .data import make_default_dataset
    from .spectrogram import AudioSpectrogram

    config = config or DEFAULT_TRAIN
    key = hashlib.sha1(json.dumps([asdict(config), asdict(DEFAULT_MODEL), DEFAULT_CLIPS_PER_KIND,
                                   CHECKPOINT_FORMAT]).encode()).hexdigest()[:10]
    path = Path(path) if path is not None else default_cache_dir() / f"default_vae_{key}.pt"
    if path.is_file():
        return load_checkpoint(path)
    clips = make_default_dataset(DEFAULT_CLIPS_PER_KIND)
    mels = AudioSpectrogram().waveform_to_mel(clips.waveforms)  # (300, 1, 128, 94)
    seed_everything(config.seed)
    model = ConvVAE.from_config(DEFAULT_MODEL)
    train(model, mels, config, checkpoint_path=path, progress=progress)  # saved every epoch
    return load_checkpoint(path)
