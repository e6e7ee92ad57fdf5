"""SimRobot: a MuJoCo SO-101 behind the Robot interface, with a configurable reality gap.

It runs its own scene (sim/scene.py + the task's objects), so nothing the policy trained in is shared with
it. Each `send_action` is one control tick: the command passes the shared safety layer, then the servo model
(latency, backlash, deadband) and the physics run for one control period. With `realtime=True` ticks are
paced to the control rate with time.sleep; a commander that falls behind loses ticks, during which the
world keeps moving on the last target (and the watchdog holds the arm if the gap exceeds its timeout).
`advance(ticks)` is that same silence on purpose: the world moves, no command arrives.

`reset_scene(seed)` puts the arm home and the objects in a new place (a person does this on a real arm).
`privileged_success()` reads the task's success predicate from simulator state: an evaluation oracle for
measuring transfer only. Fine-tuning must not use it (HIL-SERL gets its reward from the classifier).
"""

from __future__ import annotations

import time

import mujoco
import numpy as np

from tidyarm.robot.base import Robot, RobotObservation
from tidyarm.robot.gap import RealityGap, ServoModel
from tidyarm.robot.safety import SafetyConfig
from tidyarm.sim.control import ArmKinematics
from tidyarm.sim.env import CAMERAS, PHYSICS_TIMESTEP
from tidyarm.sim.robot import HOME_QPOS, JOINT_NAMES
from tidyarm.sim.scene import build_scene
from tidyarm.sim.tasks import TASKS

MAX_CAMERA_HW = (480, 640)  # the offscreen buffer sim/scene.py allocates
INIT_JOINT_NOISE = 0.02  # rad: a person never puts the arm back exactly (the sim's default reset noise)


class SimRobot(Robot):
    """A simulated SO-101 for deployment tests and transfer measurements."""

    def __init__(self, task: str = "lift", gap: RealityGap | None = None, realtime: bool = False, seed: int = 0,
                 control_hz: float = 10.0, camera_size: tuple[int, int] = (128, 128),
                 cameras: tuple[str, ...] = CAMERAS, safety: SafetyConfig | None = None):
        super().__init__(safety)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid: {sorted(TASKS)}")
        substeps = round(1.0 / (control_hz * PHYSICS_TIMESTEP))
        if not 1 <= substeps <= 200:
            raise ValueError(f"control_hz = {control_hz}: expected 1..200 Hz (physics runs at 200 Hz)")
        height, width = camera_size
        if not (1 <= height <= MAX_CAMERA_HW[0] and 1 <= width <= MAX_CAMERA_HW[1]):
            raise ValueError(f"camera_size = {camera_size}: expected (height, width) within {MAX_CAMERA_HW} "
                             "(the scene's offscreen buffer)")
        unknown = [camera for camera in cameras if camera not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; valid: {list(CAMERAS)}")
        self.task_name, self.gap, self.realtime = task, gap or RealityGap(), realtime
        self.control_hz, self.substeps = 200.0 / substeps, substeps
        self.cameras, self.camera_size = tuple(cameras), tuple(camera_size)
        self.model = build_scene(TASKS[task].objects).compile()
        self.gap.apply_physics(self.model)
        self.data = mujoco.MjData(self.model)
        mujoco.mj_setConst(self.model, self.data)  # masses changed
        self.kin = ArmKinematics(self.model)
        self.task = TASKS[task](self.model, self.kin, self.control_hz)
        self.servo = ServoModel(self.gap, HOME_QPOS)
        self.rng = np.random.default_rng(seed)
        self._seed = seed
        self._renderer: mujoco.Renderer | None = None
        self._latched = HOME_QPOS.copy()
        self._success = False
        self._next_tick: float | None = None
        self.ticks = self.lost_ticks = self.overruns = 0
        self.slept = 0.0  # seconds spent pacing (realtime): the deploy loop subtracts it from its loop time
        self.reset_scene(seed)

    # -- the scene (a person's job on a real arm) ----------------------------------------------------
    def reset_scene(self, seed: int | None = None) -> None:
        """Arm home (with a little noise), objects re-placed by the task; the robot's gap stays as it is."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        qpos = np.clip(HOME_QPOS + self.rng.normal(0.0, INIT_JOINT_NOISE, len(JOINT_NAMES)),
                       self.kin.joint_low, self.kin.joint_high)
        self.data.qpos[self.kin.qpos_adr] = qpos
        self.task.reset(self.data, self.rng)
        self.data.ctrl[self.kin.actuator_ids] = qpos
        mujoco.mj_forward(self.model, self.data)
        self.servo.reset(qpos)
        self._latched, self._success, self._next_tick = qpos.copy(), False, None
        if self.is_connected:
            self.safety.reset(qpos, self._now())

    def privileged_success(self) -> bool:
        """EVALUATION ORACLE: the task's success predicate at the last tick, read from simulator state.
        For measuring transfer only; fine-tuning must never see it."""
        return self._success

    # -- time ------------------------------------------------------------------------------------
    def send_action(self, joint_targets) -> np.ndarray:
        """One control tick: safety layer, servo model, one control period of physics. Returns what was sent."""
        self._require_connection("send_action")
        self._pace()
        sent = super().send_action(joint_targets)
        self._tick()
        return sent

    def advance(self, ticks: int = 1) -> None:
        """Let `ticks` control periods pass with no new command (the watchdog is checked every tick)."""
        self._require_connection("advance")
        for _ in range(ticks):
            self.check_watchdog()
            self._tick()

    def _pace(self) -> None:
        if not self.realtime:
            return
        period, now = 1.0 / self.control_hz, time.monotonic()
        if self._next_tick is None:
            self._next_tick = now
        late = now - self._next_tick
        if late > period:  # the commander missed whole ticks: the world did not wait for it
            missed = int(late // period)
            self.overruns += 1
            self.lost_ticks += missed
            self.advance(missed)
            self._next_tick += missed * period
        elif late < 0:
            time.sleep(-late)
            self.slept += -late
        self._next_tick += period

    def _tick(self) -> None:
        self.servo.command(self._latched)
        for _ in range(self.substeps):
            self.data.ctrl[self.kin.actuator_ids] = self.servo.drive(self.data.qpos[self.kin.qpos_adr])
            mujoco.mj_step(self.model, self.data)
        self._success = bool(self.task.score(self.data).success)  # scored every tick: hold timers count ticks
        self.ticks += 1

    # -- driver hooks ----------------------------------------------------------------------------
    def _connect(self) -> None:
        self._next_tick = None

    def _disconnect(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _now(self) -> float:
        return float(self.data.time)

    def _write(self, joint_targets: np.ndarray) -> None:
        self._latched = np.array(joint_targets, dtype=np.float64)

    def _read(self, images: bool) -> RobotObservation:
        joint_pos = self.data.qpos[self.kin.qpos_adr].copy()
        if self.gap.joint_noise:
            joint_pos += self.rng.normal(0.0, self.gap.joint_noise, joint_pos.shape)
        frames = {camera: self._render(camera) for camera in self.cameras} if images else {}
        return RobotObservation(joint_pos=joint_pos, images=frames, timestamp=self._now(),
                                joint_vel=self.data.qvel[self.kin.dof_adr].copy())

    def _render(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            height, width = self.camera_size
            try:
                self._renderer = mujoco.Renderer(self.model, height, width)
            except mujoco.FatalError as error:
                raise RuntimeError(f"cannot render camera '{camera}': no OpenGL context ({error}). On a machine "
                                   "without a display, set MUJOCO_GL=egl before Python imports mujoco.") from error
        self._renderer.update_scene(self.data, camera)
        return self.gap.color_response(self._renderer.render(), self.rng)

    def describe(self) -> dict:
        """What this robot is, for logs."""
        return {"robot": "sim", "task": self.task_name, "realtime": self.realtime, "control_hz": self.control_hz,
                "camera_size": list(self.camera_size), "seed": self._seed, "gap": _gap_dict(self.gap)}


def _gap_dict(gap: RealityGap) -> dict:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(gap).items()}


ROBOT_PRESETS = {"sim": "none", "sim-gap": "sim-gap", "sim-gap-mild": "sim-gap-mild"}


def make_robot(name: str, task: str = "lift", realtime: bool = False, seed: int = 0, **kwargs) -> SimRobot:
    """A robot by name: 'sim' (no gap), 'sim-gap' (the held-out gap preset) or 'sim-gap-mild'."""
    if name not in ROBOT_PRESETS:
        raise ValueError(f"unknown robot {name!r}; valid: {sorted(ROBOT_PRESETS)} (a real SO-101 driver is not "
                         "part of this release)")
    return SimRobot(task, RealityGap.preset(ROBOT_PRESETS[name]), realtime=realtime, seed=seed, **kwargs)


class _PrivilegedView:
    """A SimRobot under a RobotEnv, shaped like So101Env for the scripted experts (sim/experts.py)."""

    def __init__(self, env):
        robot = env.robot
        self.task_name, self.control, self.kin = env.task_name, env.control, robot.kin
        self.data, self.task, self.unwrapped = robot.data, robot.task, self


def scripted_expert(env):
    """The task's scripted expert driving a RobotEnv over a SimRobot: a stand-in for a human intervener.

    It reads simulator state (object poses), so like `privileged_success` it belongs to measurement and to
    scripted interventions, never to the policy's observation or reward."""
    from tidyarm.sim.experts import make_expert

    if not isinstance(env.robot, SimRobot):
        raise ValueError(f"a scripted expert needs simulator state; the robot is a {type(env.robot).__name__}")
    return make_expert(_PrivilegedView(env))
