"""``python -m sda_lab export RUN --for nn~``: a streaming TorchScript file that speaks nn~'s
protocol, streams block by block the audio the package's own functions give for the same clips
(the Python path below), refuses what is not float audio, loads without sda-lab, and runs the
same in a C++ host built like nn~'s Backend (tests/cpp/nn_host.cpp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import asdict

import numpy as np
import pytest
import torch

from sda_lab.interface.cli import main
from sda_lab.interface.nn_tilde import RATIO
from sda_lab.interface.nn_tilde_export import attribute_name

from .nn_host import NoCompiler, build_nn_host
from .test_export import CHILD_PRELUDE
from .test_generate import tiny_run

LATENTS, GL_ITERS = 3, 8
CLIP, HOP = 8000, 4000  # the tiny run's clip (1 s at 8 kHz) and half of it
BLOCKS = (2048, 4096, 8192)
# The file and the package's eager functions run the same kernels in the same order, so they
# agree bit for bit here; the stated tolerance leaves room for nothing more than float
# rounding on another CPU (1e-5 of the peak; a wrong step is off by the signal itself).
TOLERANCE = 1e-5


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path))


def _signal(n: int = 4 * 8192) -> torch.Tensor:
    """``(1, 1, n)``: a 220 Hz tone swelling, then noise: something for every clip to say."""
    t = torch.arange(n) / 8000
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.linspace(0.2, 1.0, n)
    noise = 0.05 * torch.randn(n, generator=torch.Generator().manual_seed(3))
    return (tone + noise * (t > 2.5)).view(1, 1, n)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny run with a learned inverse mel (harmonic start, a residual that is not zero),
    exported for nn~ with 3 latent channels and 8 Griffin-Lim iterations."""
    from sda_lab.representation.inverse_mel import (InverseMel, InverseMelConfig,
                                                     InverseMelNet, save_inverse_mel)
    from sda_lab.representation.spectrogram import AudioSpectrogram

    from .test_generate import TINY_SPEC

    root = tmp_path_factory.mktemp("nn_tilde")
    run = tiny_run(root)
    config = InverseMelConfig(start="harmonic", hidden=16, nnls_iters=30)
    torch.manual_seed(1)
    net = InverseMelNet(TINY_SPEC.n_mels, TINY_SPEC.n_stft, config)
    torch.nn.init.normal_(net.out.weight, std=0.02)
    save_inverse_mel(run / "inverse_mel.pt", InverseMel(net.eval(), asdict(
        AudioSpectrogram(TINY_SPEC).config), config, {}, "harmonic"))
    out = root / "tiny_nn.ts"
    assert main(["export", str(run), "--out", str(out), "--for", "nn~", "--latents",
                 str(LATENTS), "--gl-iters", str(GL_ITERS)]) == 0
    return run, out


def _parts(run):
    from sda_lab.representation.inverse_mel import load_inverse_mel
    from sda_lab.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run / "best.pt", device="cpu")
    return ckpt.model.eval(), ckpt.spectrogram(), load_inverse_mel(run / "inverse_mel.pt")


def python_path(run, meta, audio: torch.Tensor | None = None, offsets=None,
                latents: torch.Tensor | None = None, centre_all: torch.Tensor | None = None
                ) -> torch.Tensor:
    """What the file must stream, from the package's eager functions: every hop, the last clip
    (``audio``, forward) or the latent read at the boundary (``latents`` ``(K, frames)``,
    decode, the other dimensions at ``centre_all`` ``(D,)``) -> encoder -> decoder ->
    ``mel_to_magnitude`` (the learned inverse) ->
    ``phase.griffin_lim`` from the previous clip's phase -> Hann window -> overlap-add, placed
    ``latency`` samples late. Returns ``(n,)``."""
    from sda_lab.representation import phase
    from sda_lab.representation.inverse_mel import mel_to_magnitude

    model, spec, inverse = _parts(run)
    dims = [d["dim"] for d in meta["latents"]]
    scale = torch.tensor([d["scale"] for d in meta["latents"]])
    n = audio.shape[-1] if audio is not None else latents.shape[-1] * RATIO
    window = torch.hann_window(2 * HOP)  # (clip,): 2 * HOP == CLIP here
    out, prev = torch.zeros(n + 3 * CLIP), torch.zeros(CLIP)
    with torch.no_grad():
        for b in range(HOP, n + 1, HOP):
            if audio is not None:
                clip = audio[0, 0, max(0, b - CLIP):b]
                clip = torch.nn.functional.pad(clip, (CLIP - clip.shape[0], 0))  # (clip,)
                z = model.encode(spec.waveform_to_mel(clip.view(1, 1, CLIP)))[0]  # (1, D)
                if offsets is not None:
                    z[0, dims] += torch.tensor(offsets) * scale
                at = b - CLIP + meta["latency_samples"]["forward"]
            else:
                z = centre_all.clone().view(1, -1)  # (1, D)
                z[0, dims] = centre_all[dims] + latents[:, (b - 1) // RATIO] * scale
                at = b + meta["latency_samples"]["decode"]
            mag = mel_to_magnitude(spec, model.decode(z), inverse)  # (1, n_stft, T)
            tail = torch.cat([prev[HOP:], torch.zeros(HOP)]).view(1, -1)  # (1, clip)
            start = torch.stft(tail, spec.config.n_fft, spec.config.hop_length,
                               window=torch.hann_window(spec.config.n_fft),
                               return_complex=True).angle()  # (1, n_stft, T)
            prev = phase.griffin_lim(mag, spec.config.n_fft, spec.config.hop_length, GL_ITERS,
                                     init=start, length=CLIP)[0]  # (clip,)
            out[at:at + CLIP] += prev * window
    return out[:n]


def _stream(m, method: str, x: torch.Tensor, block: int) -> torch.Tensor:
    """``method`` on ``x`` ``(1, C, n)`` in buffers of ``block`` samples (``block / ratio``
    frames for decode), concatenated."""
    step = block // RATIO if method == "decode" else block
    parts = [getattr(m, method)(x[..., i:i + step])
             for i in range(0, x.shape[-1] - x.shape[-1] % step, step)]
    return torch.cat(parts, -1)


def _meta(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


def test_the_file_speaks_nn_tildes_protocol(exported):
    _, path = exported
    m, meta = _load(path), _meta(path)
    assert m.get_methods() == ["forward", "encode", "decode"]
    assert m.forward_params.tolist() == [1, 1, 1, 1]
    assert m.encode_params.tolist() == [1, 1, LATENTS, RATIO]
    assert m.decode_params.tolist() == [LATENTS, RATIO, 1, 1]
    names = m.get_attributes()
    assert names == [d["attribute"] for d in meta["latents"]] and len(names) == LATENTS
    for name in names:
        assert getattr(m, f"{name}_params").tolist() == [2]  # nn~'s type id of a float
        assert getattr(m, f"get_{name}")() == (0.0,)  # a tuple, as nn~'s getter call reads
        assert getattr(m, f"set_{name}")(1.25) == 0
        assert getattr(m, f"get_{name}")() == (1.25,)
        assert getattr(m, f"set_{name}")(float("nan")) == -1  # nn~: "setter returned -1"
        assert getattr(m, f"get_{name}")() == (1.25,)
        getattr(m, f"set_{name}")(0.0)
    assert m.encode_output_labels == m.decode_input_labels == [
        f"(signal) #{r + 1} {d['label']}" for r, d in enumerate(meta["latents"])]
    assert [m.get_latency(k) for k in ("forward", "encode", "decode")] == [
        CLIP + HOP, HOP, HOP] == [meta["latency_samples"][k] for k in ("forward", "encode",
                                                                      "decode")]
    assert m.get_sample_rate() == 8000 and m.set_sample_rate(8000) == 0
    extra = {"sda_lab.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["sda_lab.json"])["latency_samples"] == meta["latency_samples"]
    assert meta["inversion"]["learned"] and meta["inversion"]["start"] == "harmonic"


def test_the_latent_channels_are_the_explorers_top_dimensions_named_as_it_names_them(exported):
    from sda_lab.interface.widgets.clips import mels_for
    from sda_lab.studies.dimensions import rank_dimensions

    run, path = exported
    model, spec, _ = _parts(run)
    meta = _meta(path)
    mels, _ = mels_for(model, spec, meta["ranked_on"])
    order, _, mu, scale = rank_dimensions(model, mels)
    assert [d["dim"] for d in meta["latents"]] == order[:LATENTS]
    for d in meta["latents"]:
        assert d["label"].startswith(f"z{d['dim']}")  # the explorer's "z33" or "z33 · word ↑"
        assert d["attribute"] == attribute_name(d["label"])
        assert d["scale"] == pytest.approx(float(scale[d["dim"]]))
        assert d["centre"] == float(mu.mean(0)[d["dim"]])


def test_the_export_command_says_what_it_wrote_and_refuses_in_one_line(exported, tmp_path,
                                                                       capsys, monkeypatch):
    import sda_lab.interface.widgets.clips as clips
    from sda_lab.interface.commands import export as command
    from sda_lab.interface.nn_tilde import GL_ITERS as DEFAULT_GL_ITERS

    assert command.GL_ITERS == DEFAULT_GL_ITERS  # the --help text's copy
    run, _ = exported

    def not_yet(*args, **kwargs):
        raise AssertionError("the training folder was read before the options were checked")

    monkeypatch.setattr(clips, "mels_for", not_yet)
    for argv, says in (
            (["--latents", "3"], "--latents: applies to --for nn~ only"),
            (["--for", "nn~", "--latents", "5"], "--latents: expected 1 to 4"),
            (["--gl-iters", "8"], "--gl-iters: applies to --for nn~ only")):
        capsys.readouterr()
        assert main(["export", str(run), "--out", str(tmp_path / "m.ts"), *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(run), "--out", str(tmp_path / "m.ts"), "--for", "max"])
    assert exc.value.code == 2


def test_attribute_names_are_identifiers_from_the_explorers_words():
    assert attribute_name("z33 · brighter ↑") == "z33_brighter"
    assert attribute_name("z3 · softer attack ↑") == "z3_softer_attack"
    assert attribute_name("z5") == "z5"


def test_forward_streams_the_python_path_whatever_the_block_size(exported):
    run, path = exported
    m, meta = _load(path), _meta(path)
    x = _signal()
    outs = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for block in BLOCKS:
            m.reset()
            outs[block] = _stream(m, "forward", x, block)[0, 0]  # (n,)
        m.reset()
        name = meta["latents"][1]["attribute"]
        getattr(m, f"set_{name}")(1.5)
        moved = _stream(m, "forward", x, 4096)[0, 0]
        getattr(m, f"set_{name}")(0.0)
        ref = python_path(run, meta, audio=x)
        ref_moved = python_path(run, meta, audio=x, offsets=[0.0, 1.5, 0.0])
    finally:
        torch.set_num_threads(threads)
    # the first clip is taken at the first hop boundary, HOP samples in (zeros before the
    # input's start fill the rest), and sounds `latency` samples after its first sample
    first = HOP - CLIP + meta["latency_samples"]["forward"]
    assert outs[2048][:first].abs().max() == 0 and outs[2048][first:].abs().max() > 0
    peak = float(ref.abs().max())
    assert peak > 1e-3
    for block, y in outs.items():
        assert float((y - ref).abs().max()) <= TOLERANCE * peak, block
    assert float((moved - ref_moved).abs().max()) <= TOLERANCE * peak
    assert float((moved - ref).abs().max()) > 100 * TOLERANCE * peak  # the slider moved it


def test_encode_holds_each_clips_latent_and_decode_plays_latents(exported):
    run, path = exported
    m, meta = _load(path), _meta(path)
    model, spec, _ = _parts(run)
    x = _signal()
    dims = [d["dim"] for d in meta["latents"]]
    scale = torch.tensor([d["scale"] for d in meta["latents"]])
    centre = torch.tensor([d["centre"] for d in meta["latents"]])
    z = _stream(m, "encode", x, 4096)[0]  # (K, frames)
    assert z.shape == (LATENTS, x.shape[-1] // RATIO)
    from sda_lab.interface.widgets.clips import mels_for
    from sda_lab.studies.dimensions import rank_dimensions

    with torch.no_grad():
        for f in range(z.shape[1]):
            last = ((f + 1) * RATIO // HOP) * HOP  # the last hop boundary in this frame
            clip = torch.nn.functional.pad(x[0, 0, max(0, last - CLIP):last],
                                           (max(0, CLIP - last), 0))
            mu = model.encode(spec.waveform_to_mel(clip.view(1, 1, CLIP)))[0][0, dims]
            torch.testing.assert_close(z[:, f], (mu - centre) / scale if last else
                                       torch.zeros(LATENTS))
        _, _, mu, _ = rank_dimensions(model, mels_for(model, spec, meta["ranked_on"])[0])
        y = _stream(m, "decode", z.unsqueeze(0), 4096)[0, 0]
        ref = python_path(run, meta, latents=z, centre_all=mu.mean(0))
    assert float((y - ref).abs().max()) <= TOLERANCE * float(ref.abs().max())


@pytest.mark.parametrize("bad, says", [
    (lambda x: (x * 32767).to(torch.int16), "got int16"),
    (lambda x: x * 32767, "peak"),  # int16 values cast to float, not scaled
    (lambda x: x.double(), "got float64"),
    (lambda x: x.masked_fill(x > 0.2, float("nan")), "NaN"),
    (lambda x: x[0], "(batch, 1, samples)"),
    (lambda x: x.repeat(1, 2, 1), "(batch, 1, samples)"),
])
def test_the_file_refuses_what_is_not_float_audio(exported, bad, says):
    _, path = exported
    m = _load(path)
    x = _signal(4096)
    with pytest.raises(torch.jit.Error) as err:
        m(bad(x))
    assert says in str(err.value).splitlines()[-1]


def test_encode_decode_and_the_sample_rate_refuse_in_one_line(exported):
    _, path = exported
    m = _load(path)
    for call, says in ((lambda: m.encode(_signal(1000)), f"multiple of {RATIO}"),
                       (lambda: m.decode(torch.zeros(1, LATENTS + 1, 2)), f"(batch, {LATENTS}"),
                       (lambda: m.set_sample_rate(44100), "runs at 8000 Hz, the host at 44100")):
        with pytest.raises(torch.jit.Error) as err:
            call()
        assert says in str(err.value).splitlines()[-1]


def test_the_file_loads_and_streams_without_sda_lab(exported, tmp_path):
    _, path = exported
    m = _load(path)
    x = _signal()
    torch.save({"x": x}, tmp_path / "in.pt")
    code = CHILD_PRELUDE.format(repo=_repo()) + textwrap.dedent(f"""
        m = torch.jit.load({str(path)!r})
        x = torch.load({str(tmp_path / 'in.pt')!r})['x']
        y = torch.cat([m(x[..., i:i + 4096]) for i in range(0, x.shape[-1], 4096)], -1)
        torch.save({{'y': y}}, {str(tmp_path / 'out.pt')!r})
    """)
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = _stream(m, "forward", x, 4096)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt")["y"], ref, rtol=0, atol=0)


@pytest.fixture(scope="module")
def nn_host():
    try:
        return build_nn_host()
    except NoCompiler as exc:
        pytest.skip(str(exc))


def test_a_cpp_host_runs_it_as_nn_tildes_backend_does(exported, nn_host, tmp_path):
    run, path = exported
    m, meta = _load(path), _meta(path)
    x = _signal()
    x[0, 0].numpy().astype(np.float32).tofile(tmp_path / "in.f32")
    name = meta["latents"][0]["attribute"]
    done = subprocess.run([str(nn_host), str(path), str(tmp_path / "in.f32"), str(tmp_path),
                           "4096", "8000", "1", f"{name}=0.5"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line.split(" ") for line in done.stdout.splitlines()]
    facts = {tuple(words[:2]): words[2:] for words in lines if words[0] != "time"}
    assert facts[("method", "forward")] == ["1", "1", "1", "1"]
    assert facts[("method", "encode")] == ["1", "1", str(LATENTS), str(RATIO)]
    assert facts[("method", "decode")] == [str(LATENTS), str(RATIO), "1", "1"]
    assert facts[("latency", "forward")] == [str(CLIP + HOP)]
    assert float(facts[("attribute", name)][0]) == 0.5
    assert int(facts[("metadata", "sda_lab.json")][0]) > 100  # read with the file
    read = {k: np.fromfile(tmp_path / f"{k}.f32", dtype=np.float32)
            for k in ("forward", "encode", "decode", "forward_zeros", "decode_zeros")}
    for k in ("forward_zeros", "decode_zeros"):  # silence in: the model's silence out
        assert read[k].shape == (2 * 4096,) and np.isfinite(read[k]).all()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        getattr(m, f"set_{name}")(0.5)
        y = _stream(m, "forward", x, 4096)[0, 0].numpy()
        z = _stream(m, "encode", x, 4096)  # (1, K, frames)
        d = _stream(m, "decode", z, 4096)[0, 0].numpy()
    finally:
        torch.set_num_threads(threads)
    # nn~'s host hands encode's latents to decode at audio rate (repeat_interleave) and
    # decode reads the last sample of each ratio: the same frames the Python call passes
    peak = float(np.abs(y).max())
    assert np.abs(read["forward"] - y).max() <= TOLERANCE * peak
    assert np.abs(read["encode"].reshape(LATENTS, -1)[:, ::RATIO] - z[0].numpy()).max() == 0
    assert np.abs(read["decode"] - d).max() <= TOLERANCE * float(np.abs(d).max())


def test_a_cpp_host_at_another_sample_rate_gets_the_reason(exported, nn_host, tmp_path):
    _, path = exported
    np.zeros(4096, dtype=np.float32).tofile(tmp_path / "in.f32")
    done = subprocess.run([str(nn_host), str(path), str(tmp_path / "in.f32"), str(tmp_path),
                           "4096", "44100", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3
    assert "runs at 8000 Hz, the host at 44100 Hz" in done.stdout


def _repo() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
