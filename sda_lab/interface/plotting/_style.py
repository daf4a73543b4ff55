"""What every figure shares: its resolution, and tensors to numpy."""

from __future__ import annotations

import numpy as np
import torch

FIG_DPI = 90  # small PNGs keep the committed notebooks light; text stays readable at 100% zoom


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
