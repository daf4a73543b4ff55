"""Blending two runs (sda_lab.studies.blend, ``python -m sda_lab blend``, BlendSlider): the mel
blend's ends are each run's own reconstruction, the latent blend only for aligned runs unless
forced, different representations refused, one-line errors. Tiny runs of test_generate."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import soundfile as sf
import torch

from sda_lab.interface.cli import main
from sda_lab.representation.metrics import spectral_convergence
from sda_lab.studies.blend import ALIGNED_COSINE, BlendPair, blend
from sda_lab.training.checkpoint import load_checkpoint, save_checkpoint
from sda_lab.training.posterior import heard_means

from ._tiny import tiny_mels
from .test_generate import SR, TINY, TINY_SPEC, tiny_run

torch.set_num_threads(1)


def _resave(run, model_config=None, spec_config=None, nudge: float = 0.0, seed: int = 0):
    """Replace ``run``'s best.pt: another model config or spectrogram config, or its own model
    with every weight moved by ``nudge`` standard normal draws (a fine-tuned copy)."""
    model = load_checkpoint(run / "best.pt").model
    if model_config is not None:
        torch.manual_seed(seed)
        model = type(model).from_config(model_config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(nudge * torch.randn(p.shape, generator=g))
    save_checkpoint(run / "best.pt", model, None, None,
                    extra={"spectrogram_config": asdict(spec_config or TINY_SPEC)})
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``a`` and ``b`` trained apart (seeds 0 and 1); ``ft``: ``a`` fine-tuned (nudged)."""
    root = tmp_path_factory.mktemp("blend")
    a, b = tiny_run(root / "a", seed=0), tiny_run(root / "b", seed=1)
    ft = _resave(tiny_run(root / "ft", seed=0), nudge=1e-3)
    return {"a": a, "b": b, "ft": ft, "audio": root / "a" / "audio"}


def _own(run, mels):
    model = load_checkpoint(run / "best.pt").model
    with torch.no_grad():
        return model.decode(model.encode(mels)[0], mels.shape)  # (B, 1, 32, 16)


def test_mel_blend_ends_are_each_runs_reconstruction_and_the_middle_their_mean(runs):
    mels = tiny_mels(3)  # (3, 1, 32, 16)
    own_a, own_b = _own(runs["a"], mels), _own(runs["b"], mels)
    assert not torch.allclose(own_a, own_b)
    pair = BlendPair.open(runs["a"], runs["b"])
    assert torch.equal(pair.blend(mels, 0.0).mel, own_a)
    assert torch.equal(pair.blend(mels, 1.0).mel, own_b)
    half = pair.blend(mels, 0.5)
    torch.testing.assert_close(half.mel, (own_a + own_b) / 2)
    assert half.space == "mel" and half.decoder is None and "\n" not in half.text
    assert "decoded mels" in half.text and "A's inversion" in half.text
    assert pair.inverter.name in half.text


def test_latent_blend_only_for_aligned_runs_unless_forced(runs):
    mels = tiny_mels(3)
    apart = BlendPair.open(runs["a"], runs["b"])
    assert float(apart.posterior_cosine(mels).mean()) < ALIGNED_COSINE
    with pytest.raises(ValueError) as err:
        apart.blend(mels, 0.5, space="latent")
    msg = str(err.value)
    assert "\n" not in msg and "not aligned" in msg and "fine-tuned" in msg and "force" in msg
    forced = apart.blend(mels, 0.5, space="latent", force=True)
    assert not forced.aligned and "FORCED" in forced.text

    tuned = BlendPair.open(runs["a"], runs["ft"])
    cos = tuned.posterior_cosine(mels)
    assert float(cos.mean()) >= ALIGNED_COSINE
    got = tuned.blend(mels, 0.25, space="latent", decoder="b")
    mu_a, mu_b = tuned.posterior_means(mels)
    with torch.no_grad():
        want = tuned.model_b.decode(0.75 * mu_a + 0.25 * mu_b, mels.shape)
    torch.testing.assert_close(got.mel, want)
    assert got.aligned and "decoded by B's decoder" in got.text and "fine-tuned" in got.text
    torch.testing.assert_close(got.cosine, cos)


def test_each_run_hears_a_clip_as_listen_does_refined_once_per_clip(runs, tmp_path,
                                                                    monkeypatch):
    import sda_lab.studies.blend as B
    from sda_lab.training.config import TrainConfig
    from sda_lab.training.posterior import heard_reconstruction

    refined = tiny_run(tmp_path / "refined", seed=0)
    ck = load_checkpoint(refined / "best.pt")
    config = TrainConfig(posterior_steps=20)
    save_checkpoint(refined / "best.pt", ck.model, None, None, train_config=config,
                    extra={"spectrogram_config": asdict(TINY_SPEC)})
    mels = tiny_mels(3)  # (3, 1, 32, 16)
    pair = BlendPair.open(refined, runs["b"])
    calls = []
    monkeypatch.setattr(B, "heard_means", lambda *a, **k: calls.append(1) or
                        heard_means(*a, **k))
    ends = pair.blend(mels, 0.0)
    listen = heard_reconstruction(ck.model.eval(), mels, config,
                                  pair.spec.mel_magnitude)  # what listen plays of run A
    torch.testing.assert_close(ends.mel, listen)
    encoder = _own(refined, mels)
    assert (ends.mel - encoder).abs().max() > 1e-3  # the refinement moved it
    assert "refined as listen plays them: A 20 steps, B the encoder's mean" in ends.text
    assert len(calls) == 2  # one per run
    pair.blend(mels, 0.7)
    pair.blend(mels, 1.0)
    assert len(calls) == 2  # the same clips: refined once
    pair.blend(mels[:1], 0.5)
    pair.blend(torch.cat([mels[2:], mels[1:2]]), 0.5)  # clips already heard, in a new batch
    assert len(calls) == 2  # kept per clip
    pair.blend(tiny_mels(1, seed=5), 0.5)  # a new clip
    assert len(calls) == 4


def test_other_representations_shapes_and_alphas_are_refused_in_one_line(runs, tmp_path):
    db = _resave(tiny_run(tmp_path / "db"), spec_config=replace(TINY_SPEC, scale="db"))
    with pytest.raises(ValueError, match=r"^RUN_B: its spectrogram config .*scale 'log1p' vs"):
        BlendPair.open(runs["a"], db)
    frames = _resave(tiny_run(tmp_path / "frames"), model_config=replace(TINY, n_frames=32))
    with pytest.raises(ValueError, match="mels of another shape .*n_frames 16 vs 32"):
        BlendPair.open(runs["a"], frames)
    wide = _resave(tiny_run(tmp_path / "wide"), model_config=replace(TINY, latent_dim=8))
    pair = BlendPair.open(runs["a"], wide)  # the mels blend
    assert pair.blend(tiny_mels(2), 0.5).cosine is None
    with pytest.raises(ValueError, match="another architecture .*latent_dim 4 vs 8"):
        pair.blend(tiny_mels(2), 0.5, space="latent", force=True)
    for alpha in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(ValueError, match=r"^alpha: expected a number in \[0, 1\]"):
            blend(tmp_path / "nowhere", runs["b"], tiny_mels(2), alpha)  # before any loading
    with pytest.raises(FileNotFoundError, match="^RUN_A: expected a run folder"):
        blend(tmp_path / "nowhere", runs["b"], tiny_mels(2))


def test_cli_writes_a_wav_of_the_right_length(runs, tmp_path, capsys):
    file = runs["audio"] / "a_sine.wav"  # 2 s
    out = tmp_path / "half.wav"
    rc = main(["blend", str(runs["a"]), str(runs["b"]), str(file), "--alpha", "0.3",
               "--out", str(out)])
    said = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(said) == 2 and "blended the decoded mels" in said[0]
    data, sr = sf.read(out)
    assert sr == SR and data.shape == (SR,)  # one clip of the models: 1 s
    # the second line's figures are the written file's against FILE's first second
    x = torch.from_numpy(sf.read(file, dtype="float32")[0][:SR]).view(1, 1, -1)
    y = torch.from_numpy(data.astype("float32")).view(1, 1, -1)
    sc = float(spectral_convergence(x, y, TINY_SPEC.n_fft, TINY_SPEC.hop_length)[0])
    assert said[1].startswith(f"as written, against the input: spectral convergence {sc:.3f}")
    longer = tmp_path / "longer.wav"
    assert main(["blend", str(runs["a"]), str(runs["ft"]), str(file), "--out", str(longer),
                 "--seconds", "1.5", "--space", "latent"]) == 0
    assert sf.read(longer)[0].shape == (int(1.5 * SR),)
    said = capsys.readouterr().out
    assert "blended the latents" in said and "holds only" not in said
    assert main(["blend", str(runs["a"]), str(runs["b"]), str(file), "--out",
                 str(tmp_path / "all.wav"), "--seconds", "5"]) == 0
    assert "; FILE holds only 2.00 s: all of it)" in capsys.readouterr().out


def test_cli_blend_at_alpha_0_prints_what_listen_prints(runs, tmp_path, capsys):
    """At alpha 0 the blend is RUN_A's reconstruction: the file and its figures are listen's;
    a silent FILE gets no figures, and says why."""
    file = runs["audio"] / "a_sine.wav"
    assert main(["blend", str(runs["a"]), str(runs["b"]), str(file), "--alpha", "0",
                 "--out", str(tmp_path / "b.wav")]) == 0
    blended = capsys.readouterr().out.strip().splitlines()[1]
    assert main(["listen", str(runs["a"]), str(file), "--through", "vae",
                 "--out", str(tmp_path / "l.wav")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == blended
    silent = tmp_path / "silent.wav"
    sf.write(silent, torch.zeros(SR).numpy(), SR)
    assert main(["blend", str(runs["a"]), str(runs["b"]), str(silent),
                 "--out", str(tmp_path / "s.wav")]) == 0
    assert "undefined, the input (mixed to mono) is silent" in capsys.readouterr().out


def test_cli_will_not_overwrite_either_runs_training_files(runs, tmp_path, capsys):
    file = runs["audio"] / "b_sine.wav"
    record = json.loads((runs["b"] / "metrics.json").read_text())
    target = Path(record["folder"]) / record["train_files"][0]  # one of RUN_B's training files
    before = target.read_bytes()
    rc = main(["blend", str(runs["a"]), str(runs["b"]), str(file), "--out", str(target),
               "--overwrite"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "one of RUN_B's training files" in err, err
    assert target.read_bytes() == before


@pytest.mark.parametrize("argv, status, needle", [
    (["--alpha", "2"], 2, "--alpha: expected a number in [0, 1], got '2'"),
    (["--space", "wave"], 2, "--space: invalid choice"),
    (["--space", "latent"], 1, "not aligned"),
    (["--out", "{run_a}/best.pt", "--overwrite"], 1, "--out: expected a file name ending in .wav"),
    (["--out", "{file}", "--overwrite"], 1, "--out: expected a file that is not one of the"),
    (["--out", "{exists}"], 1, "exists; choose another name or pass --overwrite"),
    (["--out", "{exists}/x.wav"], 1, "--out: expected a file in an existing folder, got"),
    (["--out", "{tmp}/no/such/x.wav"], 1, "no/such is not there)"),
    (["--seconds", "0.0001"], 1, "--seconds: expected a length from 0.128 to"),
])
def test_cli_errors_are_one_line(runs, tmp_path, capsys, argv, status, needle):
    exists = tmp_path / "exists.wav"
    exists.write_bytes(b"keep")
    file = runs["audio"] / "b_sine.wav"
    names = {"run_a": runs["a"], "file": file, "exists": exists, "tmp": tmp_path}
    argv = [a.format(**names) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o.wav")]
    try:
        rc = main(["blend", str(runs["a"]), str(runs["b"]), str(file), *argv])
    except SystemExit as exc:  # a bad option: argparse exits 2
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == status and "\n" not in err and needle in err, err
    assert exists.read_bytes() == b"keep"
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "no").exists()


def test_blend_slider_draws_the_blend_of_the_chosen_clip_and_alpha(runs, monkeypatch):
    import sda_lab.studies.blend as B
    from sda_lab.interface.widgets.blend import BlendSlider

    heard = []  # the clips each call refines
    monkeypatch.setattr(B, "heard_means", lambda model, x, *a, **k: heard.append(x.shape[0])
                        or heard_means(model, x, *a, **k))
    mels = tiny_mels(3)
    own_a, own_b = _own(runs["a"], mels), _own(runs["b"], mels)
    w = BlendSlider(runs["a"], runs["b"], mels, live=False)
    assert heard == [1, 1]  # opened: clip 0 refined once per run, picture and audio share it
    w.clip.value = 2
    w.alpha.value = 0.0
    torch.testing.assert_close(w.mel, own_a[2:3])  # batch 1 against 3: float rounding
    assert len(w.audio.value) > 0
    live = BlendSlider(runs["a"], runs["b"], mels, live=True)
    for alpha in (0.2, 0.6, 1.0):  # dragged: the last value is drawn
        live.alpha.value = alpha
    torch.testing.assert_close(live.mel, own_b[0:1])
    assert "decoded mels" in live.text.value
    with pytest.raises(ValueError, match="not aligned"):
        BlendSlider(runs["a"], runs["b"], mels, space="latent")
