"""SO101Robot: the real SO-101 follower arm on a Feetech STS3215 bus, behind the Robot interface.

Optional extra `real` (feetech-servo-sdk, imported only when a real bus is opened; a missing package is a clear
message). Tested in CI only through a fake bus (tests/test_robot_so101.py): its first run on hardware should be
with the arm clear of obstacles and a hand on the power switch.

Units: the bus speaks raw ticks (4096 per turn). With LeRobot's calibration file for the arm (per motor:
id, drive_mode, homing_offset, range_min, range_max), an arm joint's angle is (raw - middle of its range) in
ticks x 2 pi / 4096, so zero is the middle of the calibrated range, as in the simulator (LeRobot's calibration
wrote homing_offset into each servo, so present positions already include it); the gripper's
calibrated range maps linearly onto the simulator's gripper range. `drive_mode` 1 flips a joint's sign.
A watchdog thread checks every control period that commands keep coming, and holds the arm if they stop.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tidyarm.robot.base import Robot, RobotObservation, joint_limits
from tidyarm.robot.safety import SafetyConfig
from tidyarm.sim.robot import JOINT_NAMES

TICKS_PER_TURN = 4096
PRESENT_POSITION, GOAL_POSITION, TORQUE_ENABLE = 56, 42, 40  # STS3215 control-table addresses
BAUDRATE = 1_000_000


class ServoBus(Protocol):
    """What the driver needs from a servo bus: raw positions in, goal positions out, torque on/off."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def read_positions(self, ids: list[int]) -> dict[int, int]: ...
    def write_goals(self, goals: dict[int, int]) -> None: ...
    def set_torque(self, ids: list[int], enabled: bool) -> None: ...


@dataclass(frozen=True)
class MotorCalibration:
    """One motor's entry in LeRobot's calibration JSON."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


def load_calibration(path: Path) -> dict[str, MotorCalibration]:
    """Read LeRobot's so101_follower calibration JSON; every joint must be present."""
    values = json.loads(Path(path).read_text())
    missing = [name for name in JOINT_NAMES if name not in values]
    if missing:
        raise ValueError(f"{path} lacks motor(s) {missing}; expected {list(JOINT_NAMES)}")
    try:
        calibration = {name: MotorCalibration(**{key: int(values[name][key]) for key in
                                                 ("id", "drive_mode", "homing_offset", "range_min", "range_max")})
                       for name in JOINT_NAMES}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: a motor entry lacks id/drive_mode/homing_offset/range_min/range_max ({error})") \
            from error
    bad = [name for name, motor in calibration.items() if motor.range_min >= motor.range_max]
    if bad:
        raise ValueError(f"{path}: range_min >= range_max for {bad}")
    return calibration


class JointMapping:
    """Raw ticks <-> joint angles (rad, the simulator's convention)."""

    def __init__(self, calibration: dict[str, MotorCalibration]):
        motors = [calibration[name] for name in JOINT_NAMES]
        self.ids = [motor.id for motor in motors]
        self.low_ticks = np.array([m.range_min for m in motors], dtype=np.float64)
        self.high_ticks = np.array([m.range_max for m in motors], dtype=np.float64)
        self.sign = np.array([-1.0 if m.drive_mode else 1.0 for m in motors])
        self.middle = (self.low_ticks + self.high_ticks) / 2
        self.joint_low, self.joint_high = joint_limits()

    def to_joints(self, ticks: np.ndarray) -> np.ndarray:
        joints = self.sign * (ticks - self.middle) * 2 * np.pi / TICKS_PER_TURN
        fraction = (ticks[-1] - self.low_ticks[-1]) / (self.high_ticks[-1] - self.low_ticks[-1])
        joints[-1] = self.joint_low[-1] + fraction * (self.joint_high[-1] - self.joint_low[-1])
        return joints

    def to_ticks(self, joints: np.ndarray) -> np.ndarray:
        ticks = self.middle + self.sign * joints * TICKS_PER_TURN / (2 * np.pi)
        fraction = (joints[-1] - self.joint_low[-1]) / (self.joint_high[-1] - self.joint_low[-1])
        ticks[-1] = self.low_ticks[-1] + fraction * (self.high_ticks[-1] - self.low_ticks[-1])
        # Never outside the calibrated range, whatever the joint limits say.
        return np.clip(np.round(ticks), self.low_ticks, self.high_ticks).astype(int)


class FeetechBus:
    """ServoBus over feetech-servo-sdk (scservo_sdk), protocol 0, group sync read/write."""

    def __init__(self, port: str, baudrate: int = BAUDRATE):
        try:
            import scservo_sdk
        except ImportError as error:
            raise RuntimeError("the real SO-101 driver needs feetech-servo-sdk: pip install 'tidyarm[real]'") \
                from error
        self.sdk, self.port_name, self.baudrate = scservo_sdk, port, baudrate
        self.port = scservo_sdk.PortHandler(port)
        self.packet = scservo_sdk.PacketHandler(0)

    def open(self) -> None:
        if not self.port.openPort() or not self.port.setBaudRate(self.baudrate):
            raise RuntimeError(f"cannot open the servo bus at {self.port_name} ({self.baudrate} baud): is the arm "
                               "plugged in and powered, and is the port right?")

    def close(self) -> None:
        self.port.closePort()

    def read_positions(self, ids: list[int]) -> dict[int, int]:
        reader = self.sdk.GroupSyncRead(self.port, self.packet, PRESENT_POSITION, 2)
        for motor in ids:
            reader.addParam(motor)
        result = reader.txRxPacket()
        if result != self.sdk.COMM_SUCCESS:
            raise RuntimeError(f"servo bus read failed: {self.packet.getTxRxResult(result)}")
        return {motor: int(reader.getData(motor, PRESENT_POSITION, 2)) for motor in ids}

    def write_goals(self, goals: dict[int, int]) -> None:
        writer = self.sdk.GroupSyncWrite(self.port, self.packet, GOAL_POSITION, 2)
        for motor, goal in goals.items():
            writer.addParam(motor, [goal & 0xFF, (goal >> 8) & 0xFF])
        result = writer.txPacket()
        if result != self.sdk.COMM_SUCCESS:
            raise RuntimeError(f"servo bus write failed: {self.packet.getTxRxResult(result)}")

    def set_torque(self, ids: list[int], enabled: bool) -> None:
        for motor in ids:
            self.packet.write1ByteTxRx(self.port, motor, TORQUE_ENABLE, int(enabled))


class SO101Robot(Robot):
    """The follower arm. Cameras are not part of this driver yet: images come back empty."""

    def __init__(self, bus: ServoBus, calibration: dict[str, MotorCalibration], control_hz: float = 10.0,
                 safety: SafetyConfig | None = None, watchdog: bool = True):
        super().__init__(safety)
        self.bus, self.mapping, self.control_hz = bus, JointMapping(calibration), control_hz
        self._watchdog_enabled = watchdog
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> None:
        self.bus.open()
        self.bus.set_torque(self.mapping.ids, True)
        if self._watchdog_enabled:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="so101-watchdog", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0 / self.control_hz):
            self.check_watchdog()

    def _disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        # Torque stays on: the arm holds its last (held) position instead of dropping under gravity.
        self.bus.close()

    def _now(self) -> float:
        return time.monotonic()

    def _read(self, images: bool) -> RobotObservation:
        raw = self.bus.read_positions(self.mapping.ids)
        ticks = np.array([raw[motor] for motor in self.mapping.ids], dtype=np.float64)
        return RobotObservation(joint_pos=self.mapping.to_joints(ticks), timestamp=self._now())

    def _write(self, joint_targets: np.ndarray) -> None:
        ticks = self.mapping.to_ticks(joint_targets)
        self.bus.write_goals(dict(zip(self.mapping.ids, ticks.tolist(), strict=True)))
