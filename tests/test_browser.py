"""Notebook 05 in a real browser: JupyterLab on loopback, Debian's Chromium driven by Playwright.

Runs all cells, then drags the first latent slider continuously (mouse down, 15 moves over
about 1.5 s, up) and checks that several mel pictures and at least one new audio clip arrive
*during* the drag, and that once it settles the status line names the slider's final value for
both the picture and the audio. Then it clicks a clip on the latent map and checks that the start
menu moved to that clip and its audio autoplays. A screenshot is saved to
test-artifacts/explorer.png. Skipped (with the
reason) where /usr/bin/chromium is absent; `make test` installs it on Debian as root.
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


@pytest.fixture()
def lab(tmp_path):
    # the model is trained (or loaded) here, so the browser's kernel only loads it
    from sda_lab.train import load_or_train_default

    load_or_train_default(progress=False)
    # a copy without outputs: autosave can never touch the committed notebook, and nothing on
    # the page can come from a stale committed output
    nb = nbformat.read(ROOT / "notebooks" / "05_latent_explorer.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
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
            # the last code cell prints the latency line once everything above it has run
            page.locator(".jp-OutputArea-output pre", has_text="kernel-side update").wait_for(
                timeout=300_000)
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

            # a click on a clip in the latent map starts from it and plays it
            menu = explorer.locator(".widget-dropdown select").first
            before = menu.input_value()
            explorer.locator(".bqplot").first.scroll_into_view_if_needed()
            # the current-latent marker follows the drag and can cover any clip's dot: click a
            # dot that is on top at its own centre (clip 0, the start, is not one to pick)
            target = page.evaluate(_UNCOVERED_DOT, [explorer.element_handle()])
            assert target is not None, "every clip's dot on the latent map is covered"
            page.mouse.click(target["x"], target["y"])
            page.wait_for_function("([el, old]) => el.value !== old",
                                   arg=[menu.element_handle(), before], timeout=30_000)
            page.wait_for_function("([el]) => el.autoplay === true",
                                   arg=[audio.element_handle()], timeout=30_000)
            assert menu.input_value() != before
        finally:
            browser.close()
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000
