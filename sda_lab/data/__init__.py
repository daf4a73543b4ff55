"""Audio in: the clip set type, your own folder, the embedded default set, the split by file,
augmentation. ``sda_lab.data.load_folder(...)`` is the public way to read a folder."""

from .clips import AudioClips
from .folders import example_folder, user_or_example_folder
from .config import CUTS, SHORT_FILES, TOO_LOUD, DataConfig
from .load import REPORT_COLUMNS, NoUsableAudioError, load_folder
from .split import check_training_clips, split_by_file
from .synth import KINDS, make_default_dataset, synthesize_clip

__all__ = ["AudioClips", "DataConfig", "load_folder", "NoUsableAudioError", "REPORT_COLUMNS",
           "SHORT_FILES", "CUTS", "TOO_LOUD", "KINDS", "make_default_dataset", "synthesize_clip",
           "example_folder", "user_or_example_folder", "split_by_file", "check_training_clips"]
