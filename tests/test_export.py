"""sda_lab.interface.export and ``python -m sda_lab export``: the TorchScript file loads in a
process that cannot import sda_lab and gives the package's outputs (mels exactly, audio within
float rounding for the same random seed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from sda_lab.interface.cli import main

from .test_generate import TINY, tiny_run

# Run in a fresh interpreter: -I ignores PYTHONPATH and the user site, cwd is a temporary folder,
# sys.path keeps only the venv's site-packages of the repository's paths, and the editable
# install's finder is removed, so the child proves first that sda_lab cannot be imported there.
CHILD_PRELUDE = textwrap.dedent("""
    import os, sys
    repo = {repo!r}
    sys.path = [p for p in sys.path if p and os.path.abspath(p) != repo
                and not (p.startswith(repo + os.sep) and 'site-packages' not in p)]
    sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]
    sys.path_hooks = [h for h in sys.path_hooks if 'editable' not in repr(h).lower()]
    sys.path_importer_cache.clear()
    try:
        import sda_lab
    except ImportError:
        pass
    else:
        raise SystemExit('sda_lab is importable in the child: ' + sda_lab.__file__)
    import warnings; warnings.simplefilter('ignore')
    import torch
    torch.set_num_threads(1)  # as the parent's reference: GL amplifies a reduction order's rounding
""")
CHILD = CHILD_PRELUDE + textwrap.dedent("""
    m = torch.jit.load({model!r})
    x = torch.load({inputs!r})
    torch.manual_seed(7)
    out = {{'wave': m(x['wave']), 'mel': m.waveform_to_mel(x['wave']),
           'mu': m.encode(x['wave']), 'mu_logvar': m.encode_mel(x['mel']),
           'decoded_mel': m.decode_mel(x['z'])}}
    torch.manual_seed(7)
    out['decoded'] = m.decode(x['z'])
    out['attrs'] = [m.sample_rate, m.latent_dim, m.clip_samples]
    torch.save(out, {outputs!r})
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    run = tiny_run(root)
    out = root / "tiny.ts"
    assert main(["export", str(run), "--out", str(out)]) == 0
    return run, out


def _reference(model, spec, mel, z):
    with torch.no_grad():
        mu, logvar = model.encode(mel)
        torch.manual_seed(7)
        ref_wave = spec.mel_to_waveform(model.decode(mu), length=8000)  # (3, 1, 8000)
        torch.manual_seed(7)
        ref_decoded = spec.mel_to_waveform(model.decode(z), length=8000)
        return ref_wave, ref_decoded, model.decode(z), mu, logvar


def test_export_loads_without_sda_lab_and_matches_the_package(exported, tmp_path):
    from sda_lab.training.checkpoint import load_checkpoint

    run, path = exported
    ckpt = load_checkpoint(run / "best.pt", device="cpu")
    model, spec = ckpt.model.eval(), ckpt.spectrogram()
    g = torch.Generator().manual_seed(0)
    wave = 0.3 * torch.randn(3, 1, 8000, generator=g)  # (3, 1, samples), batch 3 (traced on 2)
    mel = spec.waveform_to_mel(wave)  # (3, 1, 32, 16)
    z = torch.randn(3, TINY.latent_dim, generator=g)
    torch.save({"wave": wave, "mel": mel, "z": z}, tmp_path / "in.pt")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = CHILD.format(repo=repo, model=str(path), inputs=str(tmp_path / "in.pt"),
                        outputs=str(tmp_path / "out.pt"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = torch.load(tmp_path / "out.pt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref_wave, ref_decoded, ref_decoded_mel, mu, logvar = _reference(model, spec, mel, z)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(got["mel"], mel)
    torch.testing.assert_close(got["mu"], mu)
    torch.testing.assert_close(got["mu_logvar"][1], logvar)
    torch.testing.assert_close(got["decoded_mel"], ref_decoded_mel)
    assert got["wave"].shape == (3, 1, 8000)
    # the file runs the package's own inversion steps (representation.scripted), kernel for
    # kernel, so with the same seed the audio is the package's: equal here; 1e-5 of the peak
    # leaves room for float rounding on another CPU, a wrong step is off by the signal itself
    for name, ref in (("wave", ref_wave), ("decoded", ref_decoded)):
        gap = float((got[name].detach() - ref.detach()).abs().max())
        assert gap <= 1e-5 * float(ref.abs().max()), f"{name}: {gap:.2e} apart"
    assert got["attrs"] == [8000, TINY.latent_dim, 8000]


def test_export_writes_the_spectrogram_settings_beside_it(exported):
    _, path = exported
    side = json.loads(path.with_name(path.name + ".json").read_text())
    assert side["spectrogram_config"]["sample_rate"] == 8000
    assert side["spectrogram_config"]["n_mels"] == 32
    assert side["model_config"]["latent_dim"] == TINY.latent_dim
    assert "forward" in side["methods"] and "decode" in side["methods"]
    # the shapes it states are the ones the file takes and gives
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = torch.jit.load(str(path))
    z = torch.randn(2, TINY.latent_dim)
    wave, mel = m.decode(z), m.decode_mel(z)
    assert side["shapes"]["decode"] == f"(batch, {TINY.latent_dim}) -> (batch, 1, {wave.shape[2]})"
    assert side["shapes"]["decode_mel"].endswith(f"(batch, 1, {mel.shape[2]}, {mel.shape[3]})")
    assert m.encode(wave).shape == (2, TINY.latent_dim) and set(side["shapes"]) == set(
        side["methods"])


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.ts")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sda-lab: error: RUN:") and len(err.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "m.ts")]) == 1
    assert "best.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path)])
    assert exc.value.code == 2 and "--out" in capsys.readouterr().err


def test_a_latent_sequence_model_exports_too(tmp_path):
    """The shipped own-audio model is a latent sequence: its encoder and decoder trace, and the
    file's decode and encode match the package's (here, in-process)."""
    import warnings
    from dataclasses import replace

    from sda_lab.interface.export import export_model
    from sda_lab.model.vae import ConvVAE
    from sda_lab.representation.spectrogram import AudioSpectrogram

    from .test_generate import TINY_SPEC

    cfg = replace(TINY, latent="sequence", time_halvings=1, latent_dim=8)  # 8 frames x 1
    torch.manual_seed(0)
    model = ConvVAE(cfg).train()
    spec = AudioSpectrogram(TINY_SPEC)
    path = tmp_path / "seq.ts"
    export_model(model, spec, path)
    # a frozen copy was traced: the model is left training, and the file's outputs need no
    # torch.no_grad() to carry no autograd graph
    assert model.training and all(p.requires_grad for p in model.parameters())
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = torch.jit.load(str(path))
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    mel = torch.rand(3, 1, 32, 16)
    assert not m.decode_mel(z).requires_grad and not m.encode_mel(mel)[0].requires_grad
    with torch.no_grad():
        torch.testing.assert_close(m.decode_mel(z), model.decode(z))
        torch.testing.assert_close(m.encode_mel(mel)[0], model.encode(mel)[0])
    assert m.latent_dim == 8


def test_a_run_with_a_learned_inverse_exports_its_magnitude(tmp_path):
    """What is exported is what the run is heard through: the exported file's magnitude is the
    learned inverse mel's (listen's), not the NNLS start's."""
    from sda_lab.representation.inverse_mel import (INVERSE_MEL_FILE, InverseMel,
                                                    InverseMelConfig, InverseMelNet,
                                                    mel_to_magnitude, save_inverse_mel)
    from dataclasses import asdict

    from sda_lab.training.checkpoint import load_checkpoint

    run = tiny_run(tmp_path)
    spec = load_checkpoint(run / "best.pt", device="cpu").spectrogram()
    c = spec.config
    config = InverseMelConfig(hidden=8, layers=1, kernel_size=3, nnls_iters=5, start="nnls")
    torch.manual_seed(3)
    net = InverseMelNet(c.n_mels, c.n_stft, config).eval()  # random weights: a visible residual
    inverse = InverseMel(net, asdict(c), config)
    save_inverse_mel(run / INVERSE_MEL_FILE, inverse)
    out = tmp_path / "learned.ts"
    assert main(["export", str(run), "--out", str(out)]) == 0
    m = torch.jit.load(str(out))
    noise = torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(1))
    mel = spec.waveform_to_mel(0.3 * noise)  # (2, 1, n_mels, T)
    learned = mel_to_magnitude(spec, mel, inverse)  # (2, n_stft, T): what listen starts from
    start = mel_to_magnitude(spec, mel)  # the NNLS start alone
    got = m.inv.magnitude(mel)
    assert not got.requires_grad  # the learned net is exported frozen
    peak = float(learned.abs().max())
    assert float((got - learned).abs().max()) <= 1e-5 * peak
    assert float((start - learned).abs().max()) > 1e-2 * peak  # the test could tell them apart
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["inversion"].startswith("learned inverse mel (nnls start)")


@pytest.mark.parametrize("wave, expected", [
    ((0.3 * 32768 * torch.rand(1, 1, 8000)).to(torch.int16), "float32 values, got int16"),
    (0.3 * 32768 * torch.rand(1, 1, 8000), "float audio in [-1, 1], got a peak"),
    (torch.zeros(1, 1, 7000), "clips of 8000 samples"),
    (torch.zeros(1, 2, 8000), "expects (batch, 1, samples)"),
    (torch.full((1, 1, 8000), float("nan")), "NaN or infinite"),
])
def test_the_exported_file_checks_its_input_as_the_package_does(exported, wave, expected):
    m = torch.jit.load(str(exported[1]))
    for method in (m.forward, m.encode, m.waveform_to_mel):
        with pytest.raises(Exception, match=re.escape(expected)):
            method(wave)
    with pytest.raises(Exception, match=re.escape(f"decode expects (batch, {TINY.latent_dim})")):
        m.decode(torch.zeros(1, TINY.latent_dim + 1))
    assert m.encode(torch.zeros(1, 1, 8000)).shape == (1, TINY.latent_dim)  # a right clip passes


def test_a_run_that_kept_its_harmonic_start_exports_that_start_for_both_hosts(tmp_path):
    """An inverse mel that did not beat its start is heard as the start (harmonic here); both
    exports compile that start, not NNLS, and say so."""
    from dataclasses import asdict

    from sda_lab.representation.inverse_mel import (INVERSE_MEL_FILE, InverseMel,
                                                    InverseMelConfig, InverseMelNet,
                                                    mel_to_magnitude, save_inverse_mel)
    from sda_lab.training.checkpoint import load_checkpoint

    run = tiny_run(tmp_path)
    spec = load_checkpoint(run / "best.pt", device="cpu").spectrogram()
    c = spec.config
    config = InverseMelConfig(hidden=8, layers=1, kernel_size=3, nnls_iters=5, start="harmonic")
    inverse = InverseMel(InverseMelNet(c.n_mels, c.n_stft, config).eval(), asdict(c), config,
                         {"kept": "start"}, "harmonic")
    save_inverse_mel(run / INVERSE_MEL_FILE, inverse)
    t = 2 * torch.arange(8000) / 8000
    tone = sum(torch.sin(2 * torch.pi * 220 * k * t) / k for k in range(1, 8))
    mel = spec.waveform_to_mel(0.2 * tone.view(1, 1, -1))  # (1, 1, n_mels, T): a pitch to find
    harmonic = mel_to_magnitude(spec, mel, start="harmonic")  # (1, n_stft, T)
    nnls = mel_to_magnitude(spec, mel)
    peak = float(harmonic.abs().max())
    assert float((harmonic - nnls).abs().max()) > 1e-2 * peak  # the test could tell them apart
    for argv, name in ((["--out", str(tmp_path / "h.ts")], "h.ts"),
                       (["--out", str(tmp_path / "n.ts"), "--for", "nn~", "--latents", "2"],
                        "n.ts")):
        assert main(["export", str(run), *argv]) == 0
        m = torch.jit.load(str(tmp_path / name))
        got = m.inv.magnitude(mel)
        assert float((got - harmonic).abs().max()) <= 1e-4 * peak, name
        meta = json.loads((tmp_path / f"{name}.json").read_text())
        said = meta["inversion"]
        assert ("harmonic" in said) if isinstance(said, str) else said["start"] == "harmonic"


def test_export_replaces_only_an_earlier_export(exported, tmp_path, capsys):
    from .test_cli import error_of

    run, path = exported
    before = (run / "best.pt").read_bytes()
    wav = tmp_path / "take.wav"
    wav.write_bytes(b"RIFF....WAVE")
    for target in (run / "best.pt", run / "metrics.json", wav):
        code, line = error_of(capsys, ["export", str(run), "--out", str(target)])
        assert code == 1 and line.startswith("sda-lab: error: --out: expected a new file or "
                                             "an earlier export"), line
    assert (run / "best.pt").read_bytes() == before and wav.read_bytes() == b"RIFF....WAVE"
    assert main(["export", str(run), "--out", str(path)]) == 0  # an earlier export: replaced
    code, line = error_of(capsys, ["export", str(run), "--out", str(tmp_path / "no" / "m.ts")])
    assert code == 1 and "--out: expected a file in an existing folder" in line, line
    assert not (tmp_path / "no").exists()
    code, line = error_of(capsys, ["export", str(run), "--out", str(tmp_path / "n.ts"),
                                   "--for", "nn~", "--gl-iters", "1000000"])
    assert code == 1 and "--gl-iters: expected 1 to 1000" in line
