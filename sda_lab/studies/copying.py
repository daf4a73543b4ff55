"""Is a generated sound a copy of a training clip? The relative-distance test.

A decoded mel is smoother than a recording, and a smooth mel lies near *every* clip under a mel
MSE: an absolute distance ("closer to a training clip than any held-out recording is") calls
a model that decodes the average sound a copier. A copy is instead near **one** training clip
and far from the others. Following Carlini et al. 2023 ("Extracting training data from
diffusion models", Sec. 4.1), each mel's **relative distance** is the RMS distance to its
nearest training mel divided by the mean RMS distance to its :data:`NEIGHBOURS` nearest
(the nearest included): 0 for an exact copy, near 1 for a sound equally near several clips.
A mel is a **copy** at a relative distance of at most :data:`COPY_RATIO` (their delta = 1/3).

Two references say what a share of copies means for this model and data:

- its reconstructions of its own training clips (posterior mean, decoded): the share of them
  that count as copies is the check's **sensitivity**, how often it flags a sound this model
  made from a training clip. A sample that is not flagged is cleared only where the check
  flags at least :data:`MIN_SENSITIVITY` of them; below that a copy would more likely pass
  than be flagged, and the check says it cannot tell per sample (and listen);
- the held-out recordings: their share counts near-duplicates between the training and
  held-out files (the same sound recorded twice), which no model made.

As a set, samples that hand back training clips would lie as near their nearest clip as the
reconstructions do. The check compares the two sets of relative distances with a one-sided
Mann-Whitney U test (samples further than reconstructions; ``scipy.stats.mannwhitneyu``): a
small p says the samples, taken together, are further from any one training clip than the
model's own reconstructions are, whatever the per-sample sensitivity. The test takes distinct
samples (one sound made twice is one observation) and needs :data:`MIN_SET` of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .prior import decode_samples

__all__ = ["COPY_RATIO", "NEIGHBOURS", "MIN_SENSITIVITY", "MIN_SET", "nearest_clips",
           "copying_check", "copy_summary", "reconstruction_distances", "can_tell",
           "copying_sentence"]

COPY_RATIO = 1 / 3  # a copy: nearest at most a third of the mean of the NEIGHBOURS nearest
NEIGHBOURS = 5  # Carlini et al. use 50 of ~10^5 images; our training sets hold tens of clips
MIN_SENSITIVITY = 0.5  # an unflagged sample is cleared only where most reconstructions are flagged
MIN_SET = 5  # distinct samples the set-level test needs (with fewer, a p says little)


@torch.no_grad()
def _distances(a: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each mel of ``a`` ``(n, ...)`` against ``b`` ``(m, ...)``: the mel MSE to its
    nearest, that one's index and the relative distance (module docstring): three ``(n,)``
    arrays (inf, -1 and NaN when ``b`` is empty)."""
    n = a.shape[0]
    if b.shape[0] == 0:
        return np.full(n, np.inf), np.full(n, -1), np.full(n, np.nan)
    fa, fb = a.flatten(1).double(), b.flatten(1).double()  # (n, P), (m, P)
    rms = torch.cdist(fa, fb) / fa.shape[1] ** 0.5  # (n, m) RMS distance
    nearest, _ = rms.topk(min(NEIGHBOURS, b.shape[0]), dim=1, largest=False)  # (n, k) ascending
    idx = rms.argmin(1)  # (n,)
    mean = nearest.mean(1)  # (n,)
    relative = torch.where(mean > 0, nearest[:, 0] / mean.clamp_min(1e-300),
                           torch.zeros_like(mean))  # (n,): 0 where every neighbour is identical
    return (nearest[:, 0] ** 2).numpy(), idx.numpy(), relative.numpy()


def nearest_clips(generated: torch.Tensor, train_mels: torch.Tensor,
                  val_mels: torch.Tensor) -> pd.DataFrame:
    """Per generated mel ``(n, 1, n_mels, T)``: ``nn_train_mse`` / ``nn_train_index`` (the
    nearest training mel, mel MSE), ``relative_distance`` (to the training mels, module
    docstring), ``copy`` (``relative_distance <= COPY_RATIO``) and ``nn_val_mse`` /
    ``nn_val_index`` (the nearest held-out mel; inf and -1 without held-out mels). Indices are
    into ``train_mels`` / ``val_mels``."""
    dt, it, rel = _distances(generated, train_mels)
    dv, iv, _ = _distances(generated, val_mels)
    return pd.DataFrame({"nn_train_mse": dt, "nn_train_index": it, "relative_distance": rel,
                         "copy": rel <= COPY_RATIO, "nn_val_mse": dv, "nn_val_index": iv})


def reconstruction_distances(model, train_mels: torch.Tensor,
                             val_mels: torch.Tensor) -> dict[str, np.ndarray | None]:
    """The references of the check: relative distances to ``train_mels`` of the model's
    reconstructions of them (posterior mean, decoded; ``"reconstructions"``) and of the
    held-out recordings ``val_mels`` (``"heldout"``, None when there are none)."""
    from ..model.vae import encode_dataset

    mu, _ = encode_dataset(model, train_mels)  # (N_train, D)
    recon = decode_samples(model, mu).to(train_mels.device)  # (N_train, 1, n_mels, T)
    held = _distances(val_mels, train_mels)[2] if val_mels.shape[0] else None
    return {"reconstructions": _distances(recon, train_mels)[2], "heldout": held}


def copy_summary(relative: np.ndarray, references: dict) -> dict:
    """The check's figures from the generated mels' relative distances ``(n,)`` and
    :func:`reconstruction_distances`' references: ``copy_share`` (share of samples at most
    :data:`COPY_RATIO`), ``copies``, ``n``, ``median_relative``; ``reconstruction_share`` (the
    check's sensitivity), ``reconstruction_median`` and ``n_reconstructions`` (the model's
    reconstructions of its training clips), ``can_tell`` (:func:`can_tell`),
    ``n_distinct`` (samples of distinct relative distances: a sound made twice counts once),
    ``further_p`` (one-sided Mann-Whitney U p that the distinct samples' relative distances are
    larger than the reconstructions'; None with fewer than :data:`MIN_SET`; module docstring);
    ``heldout_share``, ``heldout_median`` and ``n_heldout`` (held-out recordings; None and 0
    without them)."""
    from scipy.stats import mannwhitneyu

    rel = np.asarray(relative, dtype=float)
    recon, held = np.asarray(references["reconstructions"], dtype=float), references["heldout"]
    copies = rel <= COPY_RATIO
    distinct = np.unique(rel)  # (k,)
    further = (float(mannwhitneyu(distinct, recon, alternative="greater").pvalue)
               if len(distinct) >= MIN_SET else None)
    return {"copy_share": float(copies.mean()), "copies": int(copies.sum()),
            "n": int(len(rel)), "median_relative": float(np.median(rel)),
            "reconstruction_share": float((recon <= COPY_RATIO).mean()),
            "reconstruction_median": float(np.median(recon)), "n_reconstructions": int(len(recon)),
            "can_tell": can_tell(references), "n_distinct": int(len(distinct)),
            "further_p": further,
            "heldout_share": None if held is None else float((held <= COPY_RATIO).mean()),
            "heldout_median": None if held is None else float(np.median(held)),
            "n_heldout": 0 if held is None else int(len(held))}


def can_tell(references: dict) -> bool:
    """Whether an unflagged sample is cleared: at least :data:`MIN_SENSITIVITY` of the model's
    reconstructions of its own training clips (``references["reconstructions"]``, relative
    distances from :func:`reconstruction_distances`) come as close as a copy."""
    recon = np.asarray(references["reconstructions"], dtype=float)
    return bool((recon <= COPY_RATIO).mean() >= MIN_SENSITIVITY)


def copying_check(model, generated: torch.Tensor, train_mels: torch.Tensor,
                  val_mels: torch.Tensor) -> dict:
    """The copying check (module docstring) of generated mels ``(n, 1, n_mels, T)`` made by
    ``model`` against its training mels and held-out mels (``(0, ...)`` allowed): the
    :func:`copy_summary` dict. With one training mel nothing is a copy (every relative distance
    is 1) and ``reconstruction_share`` is 0: the check cannot tell."""
    references = reconstruction_distances(model, train_mels, val_mels)
    return copy_summary(_distances(generated, train_mels)[2], references)


def copying_sentence(check: dict) -> str:
    """One line for a person: how many samples count as copies, what the model's reconstructions
    and the held-out recordings score; where the check's sensitivity is below
    :data:`MIN_SENSITIVITY`, that it cannot tell per sample and what the samples' distances
    say as a set (module docstring)."""
    k = round(check["reconstruction_share"] * check["n_reconstructions"])
    held = ""
    if check["heldout_share"] is not None:
        h = round(check["heldout_share"] * check["n_heldout"])
        held = (f"; held-out clips as near a training clip as a copy: {h} of "
                f"{check['n_heldout']}"
                + (" (the folder holds near-duplicates)" if h else ""))
    if check["can_tell"]:
        return (f"{check['copies']} of {check['n']} samples are copies of a training clip (their "
                f"nearest at most 1/3 as far as their "
                f"{min(NEIGHBOURS, check['n_reconstructions'])} nearest on average; Carlini "
                f"et al. 2023); for comparison, {k} of {check['n_reconstructions']} of the "
                "model's reconstructions of its own training clips count as copies (a sample "
                f"that handed back a training clip would count about as often){held}")
    p = check["further_p"]
    as_set = (f"too few distinct samples ({check['n_distinct']}; the test needs {MIN_SET}) to "
              "compare with the reconstructions as a set" if p is None else
              f"as a set, the samples lie further from their nearest training clip than the "
              f"reconstructions (median relative distance {check['median_relative']:.2f} against "
              f"{check['reconstruction_median']:.2f}; one-sided Mann-Whitney p = {p:.2g})"
              if p < 0.05 else
              f"as a set, the samples are not shown to lie further from their nearest training "
              f"clip than the reconstructions (median relative distance "
              f"{check['median_relative']:.2f} against {check['reconstruction_median']:.2f}; "
              f"one-sided Mann-Whitney p = {p:.2g}): some may be this model's renderings of "
              "training clips")
    some = f"only {k} of" if k else "none of"
    return (f"cannot tell per sample whether a sample is a copy: {some} "
            f"{check['n_reconstructions']} of this model's reconstructions of its own training "
            f"clips come as close to them as a copy, so a copy would more likely pass than be "
            f"flagged ({check['copies']} of {check['n']} samples flagged); {as_set}; listen to "
            f"samples beside their nn_train_clip{held}")
