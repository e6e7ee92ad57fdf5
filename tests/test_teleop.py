"""Teleoperation: the keep / discard / redo / stop session driven by a scripted device, key and stick mappings
through fake pynput / pygame modules (no real keyboard or gamepad), and clear messages when they are missing."""

import sys
import types

import numpy as np
import pytest

from tidyarm.data.reader import read_dataset
from tidyarm.data.session import RecordCommand, record
from tidyarm.sim import So101Env
from tidyarm.teleop import Event, TeleopUnavailable, make_teleop
from tidyarm.teleop.scripted import ScriptedTeleop


def session(tmp_path, events, episodes):
    command = RecordCommand(task="reach", source="keyboard", episodes=episodes, root=tmp_path / "ds", cameras=(),
                            realtime=False, show=False)
    return command, ScriptedTeleop(events)  # the session attaches it to the env it records


def test_keep_discard_redo_from_the_device(tmp_path):
    # attempt 0: redo at step 5 (seed 0 again); attempt 1: runs to the time limit and is kept (seed 0);
    # attempt 2: discarded at step 3 (seed 1 skipped); attempt 3: kept early at step 20 (seed 2).
    events = {(0, 5): Event.REDO, (2, 3): Event.DISCARD, (3, 20): Event.KEEP}
    command, device = session(tmp_path, events, episodes=2)
    summary = record(command, teleop=device)
    assert (summary.kept, summary.dropped) == (2, 2)
    episodes = read_dataset(tmp_path / "ds")
    assert [stop - start for start, stop in episodes.episode_bounds()] == [So101Env("reach").max_episode_steps, 20]
    assert episodes.tasks == ["Move the gripper to the target."]


def test_stop_keeps_finished_episodes_only(tmp_path):
    command, device = session(tmp_path, {(1, 4): Event.STOP}, episodes=5)
    summary = record(command, teleop=device)
    assert summary.kept == 1 and "stopped by the operator" in summary.notes
    assert read_dataset(tmp_path / "ds").num_episodes == 1


def test_missing_packages_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynput", None)  # import pynput now raises ImportError
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(TeleopUnavailable, match=r"pip install 'tidyarm\[teleop\]'"):
        make_teleop("keyboard")
    with pytest.raises(TeleopUnavailable, match=r"pygame: pip install 'tidyarm\[teleop\]'"):
        make_teleop("gamepad")
    with pytest.raises(TeleopUnavailable):
        record(RecordCommand(task="reach", source="keyboard", root=tmp_path / "ds", cameras=()))
    assert not (tmp_path / "ds").exists()  # nothing written when the device is missing
    # pynput installed but no usable backend (a machine without a display): say so, not "install pynput"
    pynput = types.ModuleType("pynput")
    pynput.__path__ = []  # a package whose backend submodule cannot be imported
    monkeypatch.setitem(sys.modules, "pynput", pynput)
    with pytest.raises(TeleopUnavailable, match="cannot reach a keyboard here"):
        make_teleop("keyboard")


class FakeListener:
    last = None

    def __init__(self, on_press, on_release):
        self.on_press, self.on_release = on_press, on_release
        FakeListener.last = self

    def start(self):
        pass

    def stop(self):
        pass


def key(name):
    return types.SimpleNamespace(char=name) if len(name) == 1 else types.SimpleNamespace(char=None, name=name)


def test_keyboard_mapping(monkeypatch):
    pynput = types.ModuleType("pynput")
    pynput.keyboard = types.SimpleNamespace(Listener=FakeListener)
    monkeypatch.setitem(sys.modules, "pynput", pynput)
    device = make_teleop("keyboard")
    listener = FakeListener.last
    for name in ("w", "a", "r", "e", "space"):
        listener.on_press(key(name))
    command = device.read()
    np.testing.assert_array_equal(command.action, [1, 1, 1, 1, -1])  # forward, left, up, roll, jaw closed
    assert command.event is None
    listener.on_release(key("w"))
    listener.on_press(key("s"))
    listener.on_press(key("enter"))
    command = device.read()
    assert command.action[0] == -1 and command.event is Event.KEEP
    assert device.read().event is None  # each press fires once
    for name, event in (("backspace", Event.DISCARD), ("tab", Event.REDO), ("esc", Event.STOP)):
        listener.on_press(key(name))
        assert device.read().event is event
    device.reset()
    assert device.read().action[4] == 1.0  # a new episode starts with the jaw open


def fake_pygame(joysticks, axes=(), pressed=()):
    pygame = types.ModuleType("pygame")
    pygame.JOYBUTTONDOWN = 1539
    pygame.init = lambda: None
    pygame.event = types.SimpleNamespace(
        get=lambda: [types.SimpleNamespace(type=pygame.JOYBUTTONDOWN, button=b) for b in pressed],
        clear=lambda: None)
    stick = types.SimpleNamespace(init=lambda: None, get_numaxes=lambda: len(axes), get_axis=lambda i: axes[i])
    pygame.joystick = types.SimpleNamespace(init=lambda: None, get_count=lambda: joysticks,
                                            Joystick=lambda index: stick, quit=lambda: None)
    return pygame


def test_gamepad_mapping_and_missing_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", fake_pygame(0))
    with pytest.raises(TeleopUnavailable, match="no gamepad found"):
        make_teleop("gamepad")
    # left stick pushed forward and right, right stick up, trigger pressed; A pressed
    monkeypatch.setitem(sys.modules, "pygame", fake_pygame(1, axes=(0.5, -1.0, 0, 0.05, -0.8, 1.0), pressed=(0,)))
    command = make_teleop("gamepad").read()
    np.testing.assert_allclose(command.action, [1.0, -0.5, 0.8, 0.0, -1.0])  # deadzone zeroes the roll
    assert command.event is Event.KEEP
