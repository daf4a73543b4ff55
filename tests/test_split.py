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


def _clips(waves: dict[str, "torch.Tensor"], sr: int = 16_000):
    """AudioClips of one clip per named file."""
    import torch

    from sda_lab.data.clips import AudioClips

    names = list(waves)
    return AudioClips(torch.stack([waves[n] for n in names])[:, None], names, sr, files=names)


def test_one_recording_up_to_gain_is_one_group_and_held_out_whole():
    """A pack's velocity layers made by scaling one hit (shifted a little, one inverted) are
    one recording; a different hit of the same kind, or noise, is not. A split given the
    groups holds each out or keeps it whole, at any seed."""
    import torch

    from sda_lab.data.split import count_recordings, recording_groups, same_recordings

    g = torch.Generator().manual_seed(0)
    t = torch.arange(16_000) / 16_000
    kick = torch.sin(2 * torch.pi * 60 * t * (1 + 2 * torch.exp(-t * 30))) * torch.exp(-t * 8)
    other = torch.sin(2 * torch.pi * 70 * t * (1 + 3 * torch.exp(-t * 20))) * torch.exp(-t * 6)
    waves = {"k_v127.wav": kick, "k_v100.wav": 0.6 * torch.roll(kick, 40),
             "k_v60.wav": -0.2 * kick, "other.wav": other,
             "noise.wav": 0.3 * torch.randn(16_000, generator=g),
             "noise2.wav": 0.3 * torch.randn(16_000, generator=g)}
    groups = same_recordings(_clips(waves))
    assert groups["k_v100.wav"] == groups["k_v60.wav"] == groups["k_v127.wav"] == "k_v100.wav"
    assert len(set(groups.values())) == 4  # the kick's three, the other hit, two noises
    assert recording_groups(groups) == [["k_v100.wav", "k_v127.wav", "k_v60.wav"]]
    assert count_recordings(list(waves), groups) == 4 and count_recordings(list(waves), None) == 6
    files = list(waves)
    for seed in range(8):
        _, _, held = split_by_file(files, 0.5, seed, groups=groups)
        kicks = {"k_v127.wav", "k_v100.wav", "k_v60.wav"}
        assert kicks <= set(held) or kicks.isdisjoint(held)
        assert len({groups[f] for f in held}) == 2  # half of the four recordings
    assert len(split_by_file(files, 0.5, 0)[2]) == 3  # without groups: half of the files


def test_a_folder_of_one_recording_cannot_be_split():
    import torch

    tone = torch.sin(torch.arange(16_000) * 0.05)
    clips = _clips({"a.wav": tone, "b.wav": 0.5 * tone})
    from sda_lab.data.split import same_recordings

    with pytest.raises(ValueError, match=r"at least 2 different recordings, found 2 files "
                                         r"that are all one recording up to gain"):
        split_by_file(clips, 0.2, groups=same_recordings(clips))


def test_a_group_too_big_to_hold_out_is_passed_over():
    """Five copies of one recording and one other file: at any seed the other file is held
    out, since holding out the five would leave one training clip."""
    files = [f"v{i}.wav" for i in range(5)] + ["b.wav"]
    groups = {**{f: "v0.wav" for f in files[:5]}, "b.wav": "b.wav"}
    assert {tuple(split_by_file(files, 0.2, s, groups=groups)[2]) for s in range(8)} == {
        ("b.wav",)}
    with pytest.raises(ValueError, match="no file can be held out for validation and leave 2 "
                                         "training clips"):
        split_by_file(["a.wav", "b.wav"], 0.5)
