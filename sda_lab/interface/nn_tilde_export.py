"""A trained run built and written as nn~'s streaming TorchScript file (``export --for nn~``).

:mod:`sda_lab.interface.nn_tilde` holds the streaming module (:class:`NNTildeVAE`: nn~'s
protocol, the methods, how it streams, its latency, its input checks); this module makes one
from a model and writes it:

- :func:`build_nn_tilde` ranks the latent dimensions on the given clips as the explorer does
  (mean KL, :func:`sda_lab.studies.dimensions.rank_dimensions`), keeps the K highest with the
  clips' mean posterior and aggregate posterior standard deviation, names them as the explorer
  does (:func:`sda_lab.studies.descriptors.dimension_labels`; :func:`attribute_name` makes the
  labels identifiers), adds a ``get_<name>``/``set_<name>`` pair per channel (a subclass
  written as source, since TorchScript compiles methods from their source), measures the CPU
  cost of each step of one clip (the streaming schedule's weights) and scripts the module;
  it returns the module and its metadata (format :data:`NN_TILDE_FORMAT`: sample rate, clip,
  hop, ratio, latencies, methods' params, the latents, the inversion, the measured costs);
- :func:`export_nn_tilde` writes it atomically to ``FILE``, the metadata inside the archive
  as the extra file ``sda_lab.json`` and beside it as ``FILE.json``;
- :func:`export_run_nn_tilde` does it for a run folder of ``python -m sda_lab train``
  (``best.pt`` preferred): its own inversion (learned inverse mel where it has one), the
  dimensions ranked and named on the run's training folder (the default data set when the
  folder is gone, as the explorer; the metadata's ``ranked_on`` says which).
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

from ..representation.scripted import MAX_ABS
from .nn_tilde import RATIO, NNTildeVAE, _Stream

__all__ = ["NN_TILDE_FORMAT", "attribute_name", "build_nn_tilde", "export_nn_tilde",
           "export_run_nn_tilde"]

NN_TILDE_FORMAT = 1


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

    check_latents(n_latents, model.latent_dim)
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


def check_latents(n_latents: int, latent_dim: int) -> None:
    """``ValueError`` (one line naming ``--latents``) unless ``1 <= n_latents <= latent_dim``."""
    if not 1 <= n_latents <= latent_dim:
        raise ValueError(f"--latents: expected 1 to {latent_dim} (the model's latent), got "
                         f"{n_latents}")


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
    from ..representation.inverter import Inverter
    from .export import run_checkpoint_for
    from .widgets.clips import mels_for

    ckpt_path, out, ckpt = run_checkpoint_for(run, out)
    model, spec = ckpt.model.eval(), ckpt.spectrogram()
    check_latents(n_latents, model.latent_dim)  # before the training folder is read
    inverter = Inverter.for_run(run, spec)  # its learned inverse mel, or the start it kept
    folder = _run_folder(Path(run), ckpt)
    mels, _ = mels_for(model, spec, folder)
    ranked_on = folder or "the default data set (the run's training folder is gone)"
    return export_nn_tilde(model, spec, inverter, mels, out, n_latents, gl_iters,
                           info={"run": str(run), "checkpoint": ckpt_path.name,
                                 "ranked_on": ranked_on})
