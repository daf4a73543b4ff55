"""sda_lab.data.split: the split by file and the training-clip check."""

import pytest

from sda_lab.data.split import check_training_clips, split_by_file

FILES = ["a.wav"] * 3 + ["sub/b.flac"] * 2 + ["c.ogg"] * 4 + ["d.wav"]


@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5, 0.75])
def test_split_by_file_puts_every_clip_of_a_file_on_one_side(fraction):
    files = ["x.wav", "y.wav", "x.wav", "z.wav", "y.wav", "w.wav", "z.wav", "x.wav"]  # interleaved
    for seed in range(10):
        tr, va, vf = split_by_file(files, val_fraction=fraction, seed=seed)
        assert sorted(tr + va) == list(range(len(files)))  # every clip once
        train_files = {files[i] for i in tr}
        val_files = {files[i] for i in va}
        assert train_files and val_files and train_files.isdisjoint(val_files)
        assert val_files == set(vf)
        # every clip of a held-out file is held out, wherever it sits in the list
        assert va == [i for i, f in enumerate(files) if f in val_files]


def test_split_by_file_is_seeded_and_sized():
    tr, va, vf = split_by_file(FILES, val_fraction=0.5, seed=3)
    assert len(vf) == 2 and split_by_file(FILES, 0.5, seed=3) == (tr, va, vf)
    splits = {tuple(split_by_file(FILES, 0.25, seed=s)[2]) for s in range(20)}
    assert len(splits) > 1  # the seed matters
    assert all(len(s) == 1 for s in splits)  # round(0.25 * 4) files
    tr0, va0, vf0 = split_by_file(FILES, 0.0)
    assert va0 == [] and vf0 == [] and tr0 == list(range(len(FILES)))


def test_split_by_file_explicit_list_and_objects_with_files():
    class Clips:
        files = FILES

    tr, va, vf = split_by_file(Clips(), val_files=["b.flac", "d.wav"])
    assert vf == ["d.wav", "sub/b.flac"] and va == [3, 4, 9] and tr == [0, 1, 2, 5, 6, 7, 8]


@pytest.mark.parametrize("kwargs, match", [
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0"),
    ({"val_fraction": -0.1}, "val_fraction must be in"),
    ({"val_files": ["nope.wav"]}, "'nope.wav' is not one of the 4 files"),
    ({"val_files": ["a.wav", "b.flac", "c.ogg", "d.wav"]}, "all 4 files are held out"),
])
def test_split_by_file_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_by_file(FILES, **kwargs)


def test_split_needs_two_files_and_two_training_clips():
    with pytest.raises(ValueError, match=r"at least 2 files, found 1 \(only.wav\)"):
        split_by_file(["only.wav"] * 5, 0.2)
    tr, _, vf = split_by_file(["a.wav", "b.wav", "b.wav"], val_files=["b.wav"])
    with pytest.raises(ValueError, match=r"only 1 training clip after holding out 1 file; "
                                         "training needs at least 2"):
        check_training_clips(len(tr), vf)
    check_training_clips(2)  # enough
