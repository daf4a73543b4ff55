"""Interactive latent-space explorers (ipywidgets 8 and bqplot; JupyterLab 4 and Notebook 7).

Modules, in the order a render flows:

- :mod:`.clips`: what is explored (mels checked against the model, from a folder or clips);
- :mod:`.lanes`: the coalescing render lanes and the renderer (decode, preview or full
  inversion, images, audio with its own autoplay flag);
- :mod:`.images`: PNG pictures (a mel with axes; fast mel and waveform images);
- :mod:`.sliders`: what the kernel set on each slider, to tell the browser's echoes from moves;
- :mod:`.latent_map`: PCA of the posterior means and the clickable bqplot map;
- :mod:`.explorer`: :class:`LatentExplorer` (sliders, start points, map, play action);
- :mod:`.interpolation`: :class:`InterpolationExplorer`;
- :mod:`.export`: WAV files and figures of what you hear, and the decoded grid of a
  :func:`traversal` of single dimensions;
- :mod:`.drag`: drag measurement for tests and benchmarks (:func:`simulate_drag`).

Everything works headless (nbval): ``update()``, ``set_dimension()``, ``simulate_drag()`` and
``snapshot()`` need no browser. Importing this package changes no process setting; for several
kernels on few cores start JupyterLab with ``OMP_WAIT_POLICY=PASSIVE`` (``make lab`` does).
"""

from .clips import check_explorer_mels, clip_seconds, mels_for
from .drag import DragStats, measure_latency, simulate_drag
from .explorer import SLIDER_STEPS, STARTS, LatentExplorer
from .export import export_explorer, export_interpolation, export_traversal, traversal
from .images import figure_png, mel_image_png, mel_png, waveform_image_png
from .interpolation import InterpolationExplorer
from .lanes import LatestValueWorker, Preview, Rendered, Renderer
from .latent_map import PALETTE, PCA2, LatentMap, label_groups, map_groups
from .sliders import KernelValues, SliderState, grid_value, set_slider

__all__ = ["check_explorer_mels", "clip_seconds", "mels_for", "DragStats",
           "measure_latency", "simulate_drag", "SLIDER_STEPS", "STARTS",
           "LatentExplorer", "export_explorer", "export_interpolation", "export_traversal",
           "figure_png", "mel_image_png", "mel_png", "waveform_image_png",
           "InterpolationExplorer", "traversal", "LatestValueWorker", "Preview", "Rendered",
           "Renderer", "PALETTE", "PCA2", "LatentMap", "label_groups", "map_groups",
           "KernelValues", "SliderState", "grid_value", "set_slider"]
