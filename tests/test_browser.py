"""The latent explorer in a real browser: JupyterLab on loopback, Debian's Chromium driven by
Playwright. It checks the UI, not a model: the explorer opens on a tiny untrained VAE saved as a
checkpoint in a temporary folder (made in about a second), in a generated two-cell notebook.

It drags the first latent slider continuously (mouse down, 15 moves over about 1.5 s, up) and
checks that several mel pictures and at least one new audio clip arrive *during* the drag, and
that once it settles the status line names the slider's final value for both the picture and the
audio. Then it clicks a clip on the latent map and checks that the clicked clip is what plays,
by order of messages rather than by waiting: once the clip's audio has reached the page (sent
after the sliders' new states, so the browser has already sent back any echo of them), a kernel
request queued behind those echoes reports what the kernel did with them, and the player must
still hold the clicked clip with autoplay on. A screenshot is saved to
test-artifacts/explorer.png. Skipped (with the reason) where /usr/bin/chromium is absent;
`make test` installs it on Debian as root.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_checkpoint(path: Path) -> Path:
    """A small VAE on a 16 kHz, 32-band mel, untrained but made to listen to z and to spread the
    clips over the map: renders take milliseconds, and it exists in about a second."""
    from dataclasses import asdict

    import torch

    from sda_lab.model.vae import ConvVAE, VAEConfig
    from sda_lab.representation.spectrogram import SpectrogramConfig
    from sda_lab.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = ConvVAE.from_config(VAEConfig(latent_dim=8, dropout=0.0, n_mels=32, n_frames=32,
                                          channels=(4, 8)))
    with torch.no_grad():
        model.decoder.fc.weight.mul_(50)
        model.encoder.fc_mu.weight.mul_(200)
        model.encoder.fc_logvar.bias.fill_(-4.0)
    spec = SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=256, n_mels=32)
    return save_checkpoint(path, model, None, None,
                           extra={"spectrogram_config": asdict(spec)})


_CELLS = ["from sda_lab.interface.widgets import LatentExplorer\n"
          "explorer = LatentExplorer.from_checkpoint({path!r}, n_shown=8)\n"
          "explorer",
          "print('explorer ready')"]


@pytest.fixture()
def lab(tmp_path):
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.format(path=str(ckpt)))
                                         for c in _CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "explorer.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
           "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:  # CI and lab machines run as root; Jupyter refuses that by default
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                            env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1",
                                 "OMP_WAIT_POLICY": "PASSIVE"},  # as `make lab` starts it
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text())
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


_RECORD_CHANGES = """([img, aud]) => {
    window.__sda = {img: [], aud: []};
    const watch = (el, key) => new MutationObserver(() => window.__sda[key].push(performance.now()))
        .observe(el, {attributes: true, attributeFilter: ['src']});
    watch(img, 'img');
    watch(aud, 'aud');
}"""

# the two status spans (picture, audio) name the value they rendered, in the slider's format
_RENDERED_VALUES = """([explorer]) => {
    const num = t => parseFloat(t.replace('\u2212', '-').split('=').pop());
    const readout = explorer.querySelector('.widget-slider .widget-readout');
    const spans = [...explorer.querySelectorAll('.sda-rendered')].map(s => s.textContent);
    return {slider: readout.textContent, spans: spans,
            settled: spans.length === 2 && spans.every(t => num(t) === num(readout.textContent))};
}"""


# the first clip (after clip 0, the start) whose dot is on top at its centre: {index, x, y}
_UNCOVERED_DOT = """([explorer]) => {
    const dots = [...explorer.querySelectorAll('.bqplot .dot')];
    for (let i = 1; i < dots.length - 1; i++) {  // the last dot is the red cross
        const r = dots[i].getBoundingClientRect();
        const x = r.x + r.width / 2, y = r.y + r.height / 2;
        const hit = document.elementFromPoint(x, y);
        if (r.width > 0 && (hit === dots[i] || dots[i].contains(hit))) return {index: i, x: x, y: y};
    }
    return null;
}"""


# Runs code in the notebook's kernel; its reply comes after every message the page sent before
# (one shell channel, in order). Reports the start clip, the audio's autoplay, whether the last
# audio render was a play, and the audio renders since the previous call.
_KERNEL_STATE = """async () => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const expr = "__import__('json').dumps(dict(start=explorer.start_menu.value[1], "
        + "autoplay=bool(explorer.audio.autoplay), play=explorer.renderer.sound.play, "
        + "renders_since=explorer.audio_lane.completed - globals().get('_mark', 0), "
        + "echoes=explorer.echoes, moves=list(explorer.moves)[-4:]))";
    const future = kernel.requestExecute({code: "explorer.wait()", silent: false,
        store_history: false, user_expressions: {r: expr}});
    const reply = await future.done;
    const r = reply.content.user_expressions.r;
    if (r.status !== 'ok') throw new Error(r.ename + ': ' + r.evalue);
    const state = JSON.parse(r.data['text/plain'].slice(1, -1));  // the repr of a JSON str
    await kernel.requestExecute({code: "_mark = explorer.audio_lane.completed", silent: true,
        store_history: false}).done;
    return state;
}"""


def test_explorer_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # the last cell prints once the explorer above it is built
            page.locator(".jp-OutputArea-output pre", has_text="explorer ready").wait_for(
                timeout=120_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not tracebacks, tracebacks

            explorer = page.locator(".widget-hbox").filter(has=page.locator(".widget-slider")).first
            image = explorer.locator(".widget-image").first
            audio = explorer.locator("audio").first
            image.scroll_into_view_if_needed()
            src_img, src_audio = image.get_attribute("src"), audio.get_attribute("src")
            assert src_img and src_audio
            page.evaluate(_RECORD_CHANGES, [image.element_handle(), audio.element_handle()])

            # a continuous drag: mouse down, 15 moves 100 ms apart, mouse up
            handle = explorer.locator(".widget-slider .noUi-handle").first
            box = handle.bounding_box()
            x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x0, y0)
            page.mouse.down()
            t_down = page.evaluate("performance.now()")
            for k in range(1, 16):
                page.mouse.move(x0 + 7 * k, y0)
                page.wait_for_timeout(100)
            t_up = page.evaluate("performance.now()")
            page.mouse.up()
            page.wait_for_function(f"(args) => ({_RENDERED_VALUES})(args).settled",
                                   arg=[explorer.element_handle()], timeout=30_000)
            rendered = page.evaluate(_RENDERED_VALUES, [explorer.element_handle()])
            changes = page.evaluate("window.__sda")
            during_img = [t for t in changes["img"] if t_down < t <= t_up]
            during_aud = [t for t in changes["aud"] if t_down < t <= t_up]
            print(f"drag of {(t_up - t_down) / 1000:.2f} s: {len(during_img)} pictures, "
                  f"{len(during_aud)} audio clips during it; settled on {rendered}")
            assert len(during_img) >= 3, changes  # the picture follows the drag
            assert len(during_aud) >= 1, changes  # and so does the audio, less often
            assert rendered["settled"], rendered  # the last picture and audio: the final value
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            src_settled = audio.get_attribute("src")
            page.evaluate(_KERNEL_STATE)  # marks the audio renders so far

            # a click on a clip in the latent map starts from it and plays it
            menu = explorer.locator(".widget-dropdown select").first
            before = menu.input_value()
            explorer.locator(".bqplot").first.scroll_into_view_if_needed()
            # the current-latent marker follows the drag and can cover any clip's dot: click a
            # dot that is on top at its own centre (clip 0, the start, is not one to pick)
            target = page.evaluate(_UNCOVERED_DOT, [explorer.element_handle()])
            assert target is not None, "every clip's dot on the latent map is covered"
            page.mouse.click(target["x"], target["y"])
            # the clip's audio is sent after the sliders' new states: once it is on the page, the
            # browser has handled those states and sent back whatever echo they cause
            page.wait_for_function("([el, old, menu, was]) => el.autoplay === true && el.src !== old"
                                   " && menu.value !== was",
                                   arg=[audio.element_handle(), src_settled,
                                        menu.element_handle(), before], timeout=30_000)
            src_played = audio.get_attribute("src")
            # a kernel request queued behind those echoes: what did the kernel do with them?
            kernel = page.evaluate(_KERNEL_STATE)
            print(f"clicked dot {target['index']}; kernel after the echoes: {kernel}")
            assert kernel["start"] == target["index"], kernel  # the clicked clip
            assert kernel["autoplay"] and kernel["play"], kernel  # still the play render
            assert kernel["renders_since"] == 0, kernel  # no echo redrew anything
            assert audio.get_attribute("src") == src_played  # the player was not replaced
            assert page.evaluate("([el]) => el.autoplay", [audio.element_handle()])
            assert menu.input_value() != before
        finally:
            browser.close()
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000
