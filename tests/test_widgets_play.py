"""The play action by design: a clip the user asked to hear keeps playing whatever the browser
echoes back (values the kernel set, late, in any order, further than a step), and only a genuine
move renders again. The browser's messages are driven deterministically with ``set_state``, the
call ipywidgets makes for every message from the front end."""

import pytest
import torch

from ._widgets_tiny import tiny_setup
from sda_lab.interface.widgets import (KernelValues, LatentExplorer, SliderState, grid_value,
                                       set_slider)


@pytest.fixture()
def ex():
    model, spec, mels, labels = tiny_setup()
    return LatentExplorer(model, spec, mels, labels, n_shown=4)


def _browser_values(ex):
    """What the browser holds after the kernel's last state: every slider's value."""
    return [float(s.value) for s in ex.sliders]


def _spy(monkeypatch, widget):
    sent = []
    monkeypatch.setattr(widget, "_send", lambda msg, buffers=None: sent.append(
        {**msg["state"], **{path[0]: "<buffer>" for path in msg["buffer_paths"]}}))
    return sent


def _far_pair(ex):
    """The two clips furthest apart: their slider values differ by more than a step."""
    dist = torch.cdist(ex.mu, ex.mu)
    a, b = divmod(int(dist.argmax()), len(ex.mu))
    return a, b


@pytest.mark.parametrize("order", ["late_a_after_b", "b_then_late_a", "a_before_click_b"])
def test_a_clicked_clip_keeps_playing_through_echoes(ex, monkeypatch, order):
    a, b = _far_pair(ex)
    ex.map._clicked(ex.map.points, {"data": {"index": a}})
    echo_a = _browser_values(ex)  # the browser's echo of click A (what it will send back)
    if order == "a_before_click_b":
        for s, v in zip(ex.sliders, echo_a):
            s.set_state({"value": v})
    ex.map._clicked(ex.map.points, {"data": {"index": b}})
    played, drawn, heard = bytes(ex.audio.value), ex.picture_lane.completed, ex.renderer.sound
    echo_b = _browser_values(ex)
    audio_msgs = _spy(monkeypatch, ex.audio)
    late = [(s, v) for s, v in zip(ex.sliders, echo_a)]
    assert sum(abs(va - vb) > s.step for s, va, vb in zip(ex.sliders, echo_a, echo_b)) >= 2
    now = [(s, v) for s, v in zip(ex.sliders, echo_b)]
    if order == "late_a_after_b":
        messages = late + now
    elif order == "b_then_late_a":
        messages = now + late
    else:
        messages = now
    for s, v in messages:
        s.set_state({"value": v})
    ex.wait()
    # nothing was redrawn, nothing sent to the player: clip B still plays
    assert ex.picture_lane.completed == drawn and ex.renderer.sound is heard
    assert audio_msgs == [] and bytes(ex.audio.value) == played and ex.audio.autoplay
    torch.testing.assert_close(heard.z, ex.mu[b], atol=1e-5, rtol=0)
    assert heard.play and not heard.preview
    # kernel and browser agree on B's values (a late echo of A is answered with B's)
    assert _browser_values(ex) == echo_b and ex.echoes >= (2 if late[0] in messages else 0)
    assert ex.start_menu.value == ("clip", b)
    # a genuine move afterwards redraws, and that render does not autoplay
    s = ex.sliders[1]
    s.set_state({"value": s.value + 2 * s.step})
    ex.wait()
    assert ex.picture_lane.completed > drawn and not ex.audio.autoplay
    torch.testing.assert_close(ex.renderer.sound.z, ex.z)


def test_an_echo_snapped_to_the_old_grid_does_not_cancel_the_play(ex, monkeypatch):
    # seen in Chromium: noUiSlider snaps the kernel's new value to the range it still holds
    # (less than a step from the new value, off the new grid), also on a slider the user
    # dragged before the click
    a, b = _far_pair(ex)
    ex.pick(a)
    old = [(float(s.min), float(s.max), float(s.step)) for s in ex.sliders]
    s0 = ex.sliders[0]
    s0.set_state({"value": s0.value + 4 * s0.step})  # the user drags slider 0
    ex.wait()
    ex.map._clicked(ex.map.points, {"data": {"index": b}})
    drawn, heard = ex.picture_lane.completed, ex.renderer.sound
    audio_msgs = _spy(monkeypatch, ex.audio)
    new = _browser_values(ex)
    moved = 0
    for s, (lo, hi, step), v in zip(ex.sliders, old, new):
        echo = grid_value(v, lo, hi, step)  # B's value on A's grid, in A's range
        moved += echo != v
        s.set_state({"value": echo})
    assert moved >= 2
    ex.wait()
    assert ex.picture_lane.completed == drawn and ex.renderer.sound is heard
    assert audio_msgs == [] and ex.audio.autoplay
    assert _browser_values(ex) == new  # answered with B's values


def test_a_genuine_move_back_to_the_start_redraws(ex):
    ex.pick(2)
    s = ex.sliders[0]
    start = float(s.value)
    s.set_state({"value": start + 3 * s.step})
    ex.wait()
    drawn = ex.picture_lane.completed
    s.set_state({"value": start})  # the user returns to the start value: a move, not an echo
    ex.wait()
    assert ex.picture_lane.completed > drawn
    torch.testing.assert_close(ex.renderer.picture.z, ex.z)


def test_the_kernel_sends_range_and_value_together_and_audio_with_its_autoplay(ex, monkeypatch):
    slider_msgs = [_spy(monkeypatch, s) for s in ex.sliders]
    audio_msgs = _spy(monkeypatch, ex.audio)
    ex.pick(3)
    for msgs in slider_msgs:  # one message per slider, the value on the new step grid
        assert len(msgs) == 1 and {"min", "max", "value"} <= set(msgs[0])
    for msgs, s in zip(slider_msgs, ex.sliders):
        st = msgs[0]
        k = (st["value"] - st["min"]) / s.step
        assert abs(k - round(k)) < 1e-6
    assert len(audio_msgs) == 1 and audio_msgs[0]["autoplay"] is True and "value" in audio_msgs[0]


def test_kernel_values_recognise_echoes_by_value_not_by_time():
    kv = KernelValues(1)
    a = SliderState(0.5, 0.0, 1.0, 0.01)
    b = SliderState(-1.0, -2.0, 0.0, 0.02)
    kv.record(0, a)
    kv.record(0, b)
    assert kv.is_echo(0, 0.5) and kv.is_echo(0, -1.0 + 1e-9)  # both, whenever they arrive
    assert kv.is_latest(0, -1.0) and not kv.is_latest(0, 0.5)
    assert not kv.is_echo(0, -1.0 + 0.02)  # one step away: the user's
    kv.forget(0)
    assert not kv.is_echo(0, -1.0)


def test_set_slider_puts_the_value_on_the_grid():
    import ipywidgets as W

    s = W.FloatSlider(value=5.0, min=4.0, max=6.0, step=0.1)
    st = set_slider(s, 0.123456, lo=-1.0, hi=1.0, step=0.02)
    assert (st.min, st.max, st.step) == (-1.0, 1.0, 0.02)
    assert st.value == pytest.approx(0.12, abs=1e-12) and s.value == st.value
    assert s.readout_format == ".2f"
