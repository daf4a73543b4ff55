"""Sliders named by the descriptor their dimension moves, moves along a descriptor's latent
direction, and replaying a clip asked for twice (tiny model: renders take milliseconds)."""

import pandas as pd
import pytest
import torch

from ._widgets_tiny import tiny_setup
from sda_lab.interface.widgets import LatentExplorer
from sda_lab.studies import descriptors


@pytest.fixture()
def ex():
    model, spec, mels, labels = tiny_setup()
    return LatentExplorer(model, spec, mels, labels, n_shown=4)


def _spy(monkeypatch, widget):
    sent = []
    monkeypatch.setattr(widget, "_send", lambda msg, buffers=None: sent.append(
        {**msg["state"], **{path[0]: "<buffer>" for path in msg["buffer_paths"]}}))
    return sent


def _table(dim):
    """A dimension table where ``dim`` darkens the sound strongly and nothing else moves."""
    rows = [{"rank": 0, "dim": dim, "descriptor": n, "correlation": 0.1, "slope": 0.1,
             "effect": 0.1, "n": 10} for n in descriptors.DESCRIPTORS]
    rows[descriptors.DESCRIPTORS.index("centroid_hz")].update(correlation=-0.9, slope=-50.0,
                                                              effect=-1.5)
    return pd.DataFrame(rows)


def test_labels_from_a_table_land_on_the_sliders_without_traversing(ex, monkeypatch):
    monkeypatch.setattr(descriptors, "traverse", lambda *a, **k: pytest.fail("traversed"))
    top, second = ex.order[0], ex.order[1]
    labels = ex.name_dimensions(table=_table(top))
    assert labels[top] == f"z{top} · darker ↑" and labels[second] == f"z{second}"
    assert ex.sliders[0].description == f"#1 z{top} · darker ↑"
    assert ex.sliders[1].description == f"#2 z{second}"
    assert ex.dimension_names == labels
    with pytest.raises(ValueError, match=r"dimensions \[7\], the model has 0..3"):
        ex.name_dimensions(table=_table(7))


def test_named_by_a_traversal_in_the_explorers_ranking(monkeypatch):
    model, spec, mels, labels = tiny_setup()
    seen = {}
    real = descriptors.traverse

    def spy(*args, **kwargs):
        seen.update(kwargs)
        table = real(*args, **kwargs)
        seen["order"] = table.drop_duplicates("rank").sort_values("rank")["dim"].tolist()
        return table

    monkeypatch.setattr(descriptors, "traverse", spy)
    ex = LatentExplorer(model, spec, mels, labels, n_shown=4, name_dimensions=True)
    assert seen["f0"] is False and seen["n_clips"] == 2
    assert seen["order"] == ex.order  # the traversal ranked the dimensions as the sliders are
    for rank, (s, d) in enumerate(zip(ex.sliders, ex.order)):
        assert s.description == f"#{rank + 1} {ex.dimension_names[d]}"
    assert ex.descriptor_controls() in ex.widget.children[0].children  # shown when asked


def test_move_descriptor_moves_along_its_direction_and_renders_once(ex, monkeypatch):
    ex.pick(1, play=False)
    dirs = ex.directions()
    name = dirs.names[0]
    z0 = ex.z
    calls = []
    render = ex.renderer.render
    monkeypatch.setattr(ex.renderer, "render",
                        lambda *a, **k: calls.append(a) or render(*a, **k))
    z = ex.move_descriptor(name, 0.5)
    expected = dirs.move(z0, name, 0.5)  # (D,)
    steps = torch.tensor([ex.sliders[ex.order.index(d)].step for d in range(len(z))])
    assert (z - z0).abs().max() > 2 * steps.max()  # it moved, by more than the slider grid
    assert ((z - expected).abs() <= steps / 2 + 1e-6).all()  # onto the grid nearest the move
    assert len(calls) == 1 and ex.audio.autoplay is False
    torch.testing.assert_close(ex.renderer.picture.z, z)
    torch.testing.assert_close(ex.renderer.sound.z, z)
    drawn = ex.renderer.sound
    for s in ex.sliders:  # the browser echoes what the kernel set: no move, no render
        s.set_state({"value": float(s.value)})
    ex.wait()
    assert ex.renderer.sound is drawn and len(calls) == 1


def test_a_word_moves_its_descriptor_and_the_controls_move_too(ex):
    dirs = ex.directions()
    name = dirs.names[0]
    fall = descriptors.WORDS[name][1]
    ex.set_start(("clip", 2))
    z0 = ex.z
    down = ex.move_descriptor(fall, 0.5)
    ex.set_start(("clip", 2))
    torch.testing.assert_close(down, ex.move_descriptor(name, -0.5))
    ex.set_start(("clip", 2))
    menu, step, minus, plus = ex.descriptor_controls().children
    menu.value, step.value = name, 0.5
    plus.click()
    assert float((ex.z - z0) @ dirs.vectors[0]) > 0  # "+" raises the descriptor's prediction


def test_a_bad_descriptor_is_one_line_listing_the_names(ex, monkeypatch):
    with monkeypatch.context() as m:  # refused before the directions are computed
        m.setattr(descriptors, "descriptor_directions", lambda *a, **k: pytest.fail("computed"))
        with pytest.raises(ValueError) as err:
            ex.move_descriptor("sparkle", 1.0)
    msg = str(err.value)
    assert "\n" not in msg and "'sparkle'" in msg and "centroid_hz" in msg and "brighter" in msg
    with pytest.raises(ValueError, match=r"no direction for 'f0_hz'.*have \["):
        ex.move_descriptor("f0_hz", 1.0)  # f0 is not measured (f0=False): no direction


def test_picking_the_same_clip_again_replays_it(ex, monkeypatch):
    ex.pick(3)
    played = bytes(ex.audio.value)
    msgs = _spy(monkeypatch, ex.audio)
    ex.pick(3)  # same clip, same audio bytes, autoplay already on
    assert bytes(ex.audio.value) == played
    assert msgs[0] == {"autoplay": False} and msgs[-1]["autoplay"] is True and len(msgs) == 2
    msgs.clear()
    ex.pick(4)  # another clip: its value and autoplay in one message, as before
    assert len(msgs) == 1 and "value" in msgs[0]
