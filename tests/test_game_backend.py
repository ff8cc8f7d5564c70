"""The game backend against `tmi-serve`: a race through the game path yields the simulator's own transitions (same
actions, rewards, observations, race time), start-state rewinds, cutoffs, images; the lifecycle (a killed game is
relaunched, a silent one times out with one log line, reboots); the pre-start checks and the config's rules."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_game_server import ServerThread

from trackrl.config import TrackRLConfig, config_from_dict, load_config
from trackrl.errors import UserError
from trackrl.game.instance import GameInstance, GameRace
from trackrl.game.launcher import GameSetupError, check_game_setup
from trackrl.game.observation_adapter import GameRaceObserver
from trackrl.sim.actions import ACTION_NAMES
from trackrl.sim.drivers import follow_centerline_actions
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.track import load_track

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
NOTHING = ACTION_NAMES.index("nothing")


def free_port(n: int = 1) -> int:
    """A port p with p .. p + n - 1 free on loopback (probed; good enough for tests)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        if port + n > 65535:
            continue
        others = []
        try:
            for offset in range(1, n):
                other = socket.socket()
                other.bind(("127.0.0.1", port + offset))
                others.append(other)
            return port
        except OSError:
            continue
        finally:
            for other in others:
                other.close()
    raise RuntimeError("no free port range")


def game_config(port: int, launcher: str = "external", **overrides: dict) -> TrackRLConfig:
    data = {
        "environment": {"backend": "game", "cutoff_rollout_if_race_not_finished_within_duration_ms": 30_000},
        "nn": {"use_image": False},
        "map_cycle": {"entries": [{"map": "easy"}]},
        "performance": {"gpu_collectors_count": 1, "cars_per_collector": 1},
        "game": {"launcher": launcher, "base_tmi_port": port, "game_connect_timeout_s": 30,
                 "tmi_protection_timeout_s": 10},
    }  # fmt: skip
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return config_from_dict(data)


@pytest.fixture
def served() -> Iterator[ServerThread]:
    game = ServerThread("easy")  # tmi-serve's server in a thread of this process (the external launcher's game)
    yield game
    game.close()


def follower(config: TrackRLConfig):
    def choose(image: np.ndarray | None, floats: np.ndarray) -> int:
        return int(follow_centerline_actions(floats[None], config.environment)[0])

    return choose


def simulator_race(config: TrackRLConfig, actions: list[int], use_image: bool = False) -> dict:
    """The same actions stepped by the simulator's VecRaceEnv (the collectors' environment)."""
    size_px = (config.nn.image_height_px, config.nn.image_width_px)
    env = VecRaceEnv(load_track("easy"), 1, env_config=config.environment, rewards_config=config.rewards,
                     image_size_px=size_px, render_images=use_image)  # fmt: skip
    images, floats = env.reset()
    rows = {"floats": [floats[0]], "images": [images[0]], "rewards": [], "positions": [env.positions_m[0]]}
    for action in actions:
        result = env.step(np.array([action]))
        rows["floats"].append(result.floats[0])
        rows["images"].append(result.images[0])
        rows["rewards"].append(float(result.rewards[0]))
        rows["positions"].append(result.positions_m[0])
        done = bool(result.terminated[0] or result.truncated[0])
    rows.update(done=done, finished=bool(result.finished[0]), race_time_ms=int(result.race_time_ms[0]))
    return rows


def assert_same_as_simulator(race: GameRace, config: TrackRLConfig, use_image: bool = False) -> None:
    sim = simulator_race(config, race.actions, use_image)
    assert sim["done"], "the simulator's race did not end after the game's actions"
    assert (race.finished, race.race_time_ms) == (sim["finished"], sim["race_time_ms"])
    assert len(race.floats) == len(race.actions) + 1 == len(race.rewards) + 1 == len(race.positions_m)
    # float32 blob fields vs float64 simulator state: agreement to a millimetre / mm/s (wall contact rides on the
    # wheels' sliding flags in both, sim/observation.py's SIM_SLIDING_RULE).
    game_floats, sim_floats = np.stack(race.floats), np.stack(sim["floats"])
    np.testing.assert_allclose(game_floats, sim_floats, atol=2e-3, rtol=1e-5)
    np.testing.assert_allclose(race.rewards, sim["rewards"], atol=1e-5)
    np.testing.assert_allclose(np.stack(race.positions_m), np.stack(sim["positions"]), atol=1e-3)
    if use_image:
        assert np.array_equal(np.stack(race.images)[:-1], np.stack(sim["images"])[:-1])


def test_a_game_race_yields_the_simulators_transitions_and_the_next_race_rewinds_to_the_start(
    served: ServerThread,
) -> None:
    config = game_config(served.port)
    instance = GameInstance(config, 0)
    observer = GameRaceObserver(load_track("easy"), config.environment, config.rewards)
    try:
        first = instance.rollout("easy", "easy", observer, follower(config))
        assert first is not None and first.finished and 5_000 < first.race_time_ms < 30_000
        assert_same_as_simulator(first, config)
        assert "easy" in instance.start_states  # cached at race time 0 of the first race (which rode the countdown)
        second = instance.rollout("easy", "easy", observer, follower(config))  # rewinds to the cached start
        assert second is not None
        assert second.actions == first.actions and second.race_time_ms == first.race_time_ms
        assert instance.connections == 1 and served.server.clients_served == 1  # frozen between races, not dropped
    finally:
        instance.close()


def test_no_progress_cutoff_and_images_match_the_simulator(served: ServerThread) -> None:
    config = game_config(served.port, nn={"use_image": True, "image_height_px": 24, "image_width_px": 32})
    instance = GameInstance(config, 0)
    observer = GameRaceObserver(load_track("easy"), config.environment, config.rewards)
    try:
        race = instance.rollout("easy", "easy", observer, lambda image, floats: NOTHING)
        assert race is not None and not race.finished
        assert race.race_time_ms == 30_000  # a DNF reports the race cutoff, as the simulator does
        # standing still: cut off at the first step more than 2 s after the last progress (Linesight's rule)
        assert len(race.actions) == 2_000 // 50 + 1
        assert race.images[0].shape == (1, 24, 32)
        assert_same_as_simulator(race, config, use_image=True)
        moving = instance.rollout("easy", "easy", observer, follower(config))  # the frozen frame echo resumes it
        assert moving is not None and moving.finished
        assert_same_as_simulator(moving, config, use_image=True)
    finally:
        instance.close()


def test_a_killed_tmi_serve_drops_that_race_and_the_game_is_relaunched_and_rebooted() -> None:
    config = game_config(free_port(), launcher="simulator")
    instance = GameInstance(config, 0)
    observer = GameRaceObserver(load_track("easy"), config.environment, config.rewards)
    choose = follower(config)
    actions_seen: list[int] = []

    def kill_mid_race(image: np.ndarray | None, floats: np.ndarray) -> int:
        actions_seen.append(0)
        if len(actions_seen) == 30:
            instance.launched.process.kill()
            instance.launched.process.wait()
        return choose(image, floats)

    try:
        assert instance.rollout("easy", "easy", observer, kill_mid_race) is None
        assert instance.races_dropped == 1 and instance.client is None and len(actions_seen) == 30
        race = instance.rollout("easy", "easy", observer, choose)
        assert race is not None and race.finished and instance.launches == 2 and instance.connections == 2
        assert_same_as_simulator(race, config)
        # A game up longer than game_reboot_interval (43,200 s) is closed and relaunched at the next race.
        instance.launched_at_s -= config.game.game_reboot_interval + 1
        old_process = instance.launched.process
        race = instance.rollout("easy", "easy", observer, choose)
        assert race is not None and race.finished and instance.launches == 3
        assert old_process.poll() is not None  # the old game was stopped, not left running
    finally:
        instance.close()
    assert instance.launched is None


def test_a_game_that_never_answers_times_out_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts (the kernel does), never sends a byte
    config = game_config(listener.getsockname()[1], game={"tmi_protection_timeout_s": 0.5})
    instance = GameInstance(config, 0)
    observer = GameRaceObserver(load_track("easy"), config.environment, config.rewards)
    try:
        with caplog.at_level(logging.INFO, logger="trackrl.game"):
            assert instance.rollout("easy", "easy", observer, lambda image, floats: 0) is None
    finally:
        instance.close()
        listener.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "timed out reading the next message type" in warnings[0] and "race dropped" in warnings[0]
    assert "tmi_protection_timeout_s = 0.5 s" in warnings[0]


# ---- checks before anything starts -----------------------------------------------------------------------------
def test_setup_checks_name_each_missing_piece(tmp_path: Path) -> None:
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        script = tmp_path / "launch_game.sh"
        script.write_text("#!/bin/sh\n")
        config = game_config(port, launcher="launch_script", game={
            "linux_launch_game_path": str(script), "target_python_link_path": str(tmp_path / "Python_Link.as"),
            "trackmania_base_path": str(tmp_path / "TrackMania")})  # fmt: skip
        with pytest.raises(GameSetupError) as error:
            check_game_setup(config, platform="linux")
        message = str(error.value)
        assert f"no TMInterface plugin at {tmp_path / 'Python_Link.as'}" in message
        assert "trackrl game install-plugin" in message
        assert "game_map_path is not set" in message
        assert "is not executable" in message
        assert f"port(s) {port}" in message and "in use" in message
        windows = game_config(port + 1, launcher="tmloader", game={"windows_TMLoader_path": str(tmp_path / "no.exe")})
        with pytest.raises(GameSetupError, match=r"windows_TMLoader_path: .*no\.exe does not exist"):
            check_game_setup(windows, platform="win32")
    finally:
        blocker.close()
    # Everything in place: no error.
    plugin = tmp_path / "Python_Link.as"
    plugin.write_text("// plugin")
    challenges = tmp_path / "TrackMania" / "Tracks" / "Challenges"
    challenges.mkdir(parents=True)
    (challenges / "A01.Challenge.Gbx").write_bytes(b"")
    os.chmod(script, 0o755)
    ready = game_config(free_port(), launcher="launch_script", game={
        "linux_launch_game_path": str(script), "target_python_link_path": str(plugin),
        "trackmania_base_path": str(tmp_path / "TrackMania")},
        map_cycle={"entries": [{"map": "easy", "game_map_path": "A01.Challenge.Gbx"}]})  # fmt: skip
    check_game_setup(ready, platform="linux")


def test_a01_game_is_linesights_real_game_setup_and_says_what_is_missing_here() -> None:
    config = load_config(CONFIGS / "a01_game.yaml")
    assert config.environment.backend == "game" and config.performance.gpu_collectors_count == 2
    assert (config.nn.use_image, config.nn.image_width_px, config.nn.image_height_px) == (True, 160, 120)
    assert config.game.resolved_launcher("linux") == "launch_script"
    with pytest.raises(GameSetupError) as error:
        check_game_setup(config, platform="linux")
    message = str(error.value)
    assert "no TMInterface plugin" in message and "linux_launch_game_path is not set" in message
    assert message.count("A01-Race.Challenge.Gbx does not exist") == 1
    smoke = load_config(CONFIGS / "smoke_game.yaml")
    assert smoke.game.resolved_launcher("linux") == "simulator" and smoke.performance.gpu_collectors_count == 2


def test_config_rules_of_the_game_backend() -> None:
    with pytest.raises(UserError, match="cars_per_collector is 8, but on the game backend"):
        game_config(9000, performance={"cars_per_collector": 8})
    with pytest.raises(UserError, match="runs past port 65535"):
        game_config(65535, performance={"gpu_collectors_count": 2})
    with pytest.raises(UserError, match="launcher"):
        game_config(9000, game={"launcher": "steam"})
    assert game_config(9000).game.resolved_launcher("win32") == "external"
    defaults = config_from_dict({}).game  # Linesight's names and defaults (GAME_BRIDGE.md §8)
    assert (defaults.base_tmi_port, defaults.game_reboot_interval, defaults.running_speed) == (8478, 43_200, 80)
    assert (defaults.timeout_during_run_ms, defaults.timeout_between_runs_ms) == (10_100, 600_000_000)
    assert defaults.tmi_protection_timeout_s == 500 and defaults.windows_TMLoader_profile_name == "default"
    assert defaults.resolved_launcher("win32") == "tmloader" and defaults.resolved_launcher("linux") == "launch_script"


def test_a_game_that_cannot_start_stops_the_collector_after_three_launches() -> None:
    config = game_config(free_port(), launcher="simulator")
    instance = GameInstance(config, 0)
    observer = GameRaceObserver(load_track("easy"), config.environment, config.rewards)
    try:
        # tmi-serve refuses the map and exits: each race is dropped and the game relaunched, until the third launch
        for _ in range(2):
            assert instance.rollout("no_such_track", "no_such_track", observer, lambda image, floats: 0) is None
        with pytest.raises(GameSetupError, match=r"exited before it answered .*its log: .*3 launches in a row"):
            instance.rollout("no_such_track", "no_such_track", observer, lambda image, floats: 0)
        assert instance.launches == 3
    finally:
        instance.close()
