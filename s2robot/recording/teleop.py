"""Human teleoperation devices: the keyboard (pynput) and a 3Dconnexion SpaceMouse (hid).

robosuite's device classes (robosuite.devices) read and command a robosuite env's robots, so they
cannot drive a `Robot` adapter; the SpaceMouse here reads the same HID reports itself."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from s2robot.recording.base import Command, DeviceError, teleop_mapper


def ask_terminal(success: bool | None) -> Command:
    """The end-of-episode decision typed at the terminal (devices without keys of their own)."""
    prompt = (
        f"episode over (success: {success}): [k]eep, [d]iscard, [r]e-record, [q]uit; add s/f to mark success/failure: "
    )
    while True:
        answer = input(prompt).strip().lower()
        mark = True if "s" in answer else False if "f" in answer else None
        for key, event in (("k", "keep"), ("d", "discard"), ("r", "rerecord"), ("q", "quit")):
            if key in answer:
                return Command(event=event, success=mark)


class KeyboardDevice:
    """pynput keys: w/s a/d r/f move along x/y/z, z/x t/g c/v rotate about x/y/z, space toggles the
    gripper; Enter keeps (ends) the episode, Backspace discards it, Tab re-records it, 1 / 0 mark
    success / failure, Esc quits. Needs a desktop session (pynput reads the X server)."""

    name = "keyboard"
    MOTION = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1)}
    MOTION |= {"z": (3, 1), "x": (3, -1), "t": (4, 1), "g": (4, -1), "c": (5, 1), "v": (5, -1)}
    KEYS = {"enter": "keep", "backspace": "discard", "tab": "rerecord", "esc": "quit"}

    def __init__(self, speed: float = 0.5):
        self.speed = speed
        self._pressed: set[str] = set()
        self._events: list[Command] = []
        self._lock = threading.Lock()
        self.gripper = -1.0

    def start(self, robot: Any, description: Any) -> None:
        self.map = teleop_mapper(robot, description, self.name)
        try:
            from pynput import keyboard
        except Exception as e:  # pynput raises ImportError with a paragraph when there is no X server
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DeviceError(
                f"--device keyboard: pynput cannot read the keyboard here ({first}); run in a desktop "
                f"session with DISPLAY set, or use --device spacemouse"
            ) from None
        self._keyboard = keyboard
        self._listener = keyboard.Listener(on_press=self._press, on_release=self._release)
        self._listener.start()

    def _name(self, key) -> str:
        return getattr(key, "char", None) or getattr(key, "name", "") or ""

    def _press(self, key) -> None:
        name = self._name(key).lower()
        with self._lock:
            self._pressed.add(name)
            if name == "space":
                self.gripper = -self.gripper
            elif name in self.KEYS:
                self._events.append(Command(event=self.KEYS[name]))
            elif name in ("1", "0"):
                self._events.append(Command(success=name == "1"))

    def _release(self, key) -> None:
        with self._lock:
            self._pressed.discard(self._name(key).lower())

    def begin_episode(self, seed: int) -> None:
        with self._lock:
            self._events.clear()
        self.gripper = -1.0

    def _pop(self) -> Command:
        with self._lock:
            return self._events.pop(0) if self._events else Command()

    def poll(self) -> Command:
        cmd = self._pop()
        twist = np.zeros(6, dtype=np.float32)
        with self._lock:
            for key in self._pressed & set(self.MOTION):
                axis, sign = self.MOTION[key]
                twist[axis] += sign * self.speed
        cmd.action = self.map(twist, self.gripper)
        return cmd

    def decide(self, success: bool | None) -> Command:
        print("episode over: Enter keep, Backspace discard, Tab re-record, Esc quit; 1 / 0 mark success / failure")
        mark = None
        while True:
            cmd = self._pop()
            mark = cmd.success if cmd.success is not None else mark
            if cmd.event:
                return Command(event=cmd.event, success=mark)
            time.sleep(0.02)

    def close(self) -> None:
        if hasattr(self, "_listener"):
            self._listener.stop()


class SpaceMouseDevice:
    """A 3Dconnexion SpaceMouse through ``hid`` (pip install hidapi): its six axes are the twist,
    the left button toggles the gripper, the right one ends the episode; the decision is typed at
    the terminal."""

    name = "spacemouse"
    VENDOR_ID = 0x256F  # 3Dconnexion

    def __init__(self, speed: float = 1.0, axis_scale: float = 350.0):
        self.speed, self.axis_scale = speed, axis_scale
        self.twist = np.zeros(6, dtype=np.float32)
        self.gripper, self._end, self._stop = -1.0, False, threading.Event()

    def start(self, robot: Any, description: Any) -> None:
        self.map = teleop_mapper(robot, description, self.name)
        try:
            import hid
        except ImportError:
            raise DeviceError(
                "--device spacemouse: the hid library is not installed; pip install hidapi (and give your "
                "user access to the device, e.g. a udev rule for 3Dconnexion)"
            ) from None
        found = [d for d in hid.enumerate() if d.get("vendor_id") == self.VENDOR_ID]
        if not found:
            raise DeviceError("--device spacemouse: no 3Dconnexion device is connected (hid lists none); plug it in")
        self._dev = hid.device()
        try:
            self._dev.open(found[0]["vendor_id"], found[0]["product_id"])
        except OSError as e:
            raise DeviceError(f"--device spacemouse: cannot open it ({e}); check the udev permissions") from None
        threading.Thread(target=self._read, daemon=True, name="spacemouse").start()

    def _read(self) -> None:
        # Report 1: translation, 2: rotation, three little-endian int16 each; 3: buttons (bit 0 left, 1 right).
        while not self._stop.is_set():
            data = self._dev.read(13)
            if not data:
                continue
            if data[0] in (1, 2):
                raw = [int.from_bytes(bytes(data[i : i + 2]), "little", signed=True) for i in (1, 3, 5)]
                v1, v2, v3 = (np.clip(np.asarray(raw) / self.axis_scale, -1, 1) * self.speed).tolist()
                # Signs and order as robosuite's SpaceMouse reads them; check them on your arm slowly first.
                if data[0] == 1:
                    self.twist[0:3] = [v2, v1, -v3]
                else:
                    self.twist[3:6] = [-v1, -v2, v3]
            elif data[0] == 3:
                if data[1] & 1:
                    self.gripper = -self.gripper
                if data[1] & 2:
                    self._end = True

    def begin_episode(self, seed: int) -> None:
        self._end, self.gripper = False, -1.0

    def poll(self) -> Command:
        if self._end:
            self._end = False
            return Command(event="end")
        return Command(action=self.map(self.twist.copy(), self.gripper))

    def decide(self, success: bool | None) -> Command:
        return ask_terminal(success)

    def close(self) -> None:
        self._stop.set()
