"""Maps from the game's files. The game's files cannot ship and pygbx cannot write GBX files, so the ghost-to-line
logic runs on synthetic ghosts of known geometry (a straight then a circular arc), the pygbx adapter against a stand-in
module with pygbx's attribute names (checked against the real pygbx where it is installed), and the commands end to
end through both: `track from-replay` writes a .npy that `track info` loads."""

from __future__ import annotations

import sys
import types
from enum import IntEnum
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from trackrl.cli import main
from trackrl.game.gbx_maps import (
    UNFINISHED_RACE_TIME_MS,
    CheckpointBlock,
    GbxError,
    Ghost,
    fastest_ghost,
    is_checkpoint_block,
    race_samples,
    read_ghosts,
    reference_line,
    respawn_warnings,
    teleport_race_times_ms,
)
from trackrl.sim.track import load_track

STRAIGHT_M, RADIUS_M, SPEED_MPS, PERIOD_MS = 100.0, 50.0, 30.0, 100


def path_point(s_m: float) -> np.ndarray:
    """A point at arc length s along: 100 m straight along +z, then a left quarter circle of radius 50 m; y = 2 m."""
    if s_m <= STRAIGHT_M:
        return np.array([0.0, 2.0, s_m])
    angle = min(s_m - STRAIGHT_M, np.pi / 2 * RADIUS_M) / RADIUS_M
    return np.array([RADIUS_M * (1 - np.cos(angle)), 2.0, STRAIGHT_M + RADIUS_M * np.sin(angle)])


def distance_to_path_m(point: np.ndarray) -> float:
    if point[2] <= STRAIGHT_M:
        return float(np.hypot(point[0], point[1] - 2.0))
    centre = np.array([RADIUS_M, 2.0, STRAIGHT_M])
    return float(abs(np.linalg.norm(point - centre) - RADIUS_M))


def synthetic_ghost(race_time_ms: int = 5000, extra_after_finish: int = 10, still_at_start: int = 5, **kw) -> Ghost:
    """Samples every 100 ms at 30 m/s from race time 0, standing still first, then driving on after the finish."""
    n_race = race_time_ms // PERIOD_MS + 1
    arc_m = [0.0] * still_at_start + [SPEED_MPS * PERIOD_MS / 1000 * i for i in range(n_race - still_at_start)]
    arc_m += [arc_m[-1] + 5.0 * (i + 1) for i in range(extra_after_finish)]
    positions = np.stack([path_point(s) for s in arc_m])
    if extra_after_finish:
        positions[n_race:] += [0.0, 0.0, -300.0]  # after the finish the car is somewhere else: must not be kept
    return Ghost(positions, PERIOD_MS, race_time_ms, kw.pop("respawns", 0), **kw)


# ---- ghost -> line --------------------------------------------------------------------------------------------
def test_line_is_every_half_metre_on_the_driven_path_to_the_finish() -> None:
    ghost = synthetic_ghost()
    samples = race_samples(ghost, "synthetic")
    assert len(samples) == 5000 // PERIOD_MS + 1  # race time 0 .. 5000 ms, nothing after the finish
    line = reference_line(samples)
    steps_m = np.linalg.norm(np.diff(line, axis=0), axis=1)
    chord_length_m = np.linalg.norm(np.diff(samples, axis=0), axis=1).sum()
    # Uniform along the polyline: a step across a chord corner is a hair shorter in a straight line.
    uniform_m = chord_length_m / len(steps_m)
    assert np.all(steps_m <= uniform_m + 1e-9) and np.all(steps_m >= uniform_m * (1 - 1e-3))
    assert abs(uniform_m - 0.5) < 0.5 / len(steps_m)  # as near to 0.5 m as a whole number of steps allows
    np.testing.assert_allclose(line[0], path_point(0.0))
    np.testing.assert_allclose(line[-1], samples[-1])
    # Every point lies on the 3 m chords of the arc: within the sagitta r(1 - cos(θ/2)), θ = 3 m / 50 m.
    sagitta_m = RADIUS_M * (1 - np.cos(3.0 / RADIUS_M / 2))
    assert max(distance_to_path_m(p) for p in line) <= sagitta_m + 1e-9
    # the chords add up to the arc driven: 3 m per sample after the 5 standing still
    driven_arc_m = SPEED_MPS * PERIOD_MS / 1000 * (len(samples) - 5 - 1)
    assert chord_length_m == pytest.approx(driven_arc_m, rel=2e-4)


def test_fastest_finished_ghost_is_chosen() -> None:
    slow, fast = synthetic_ghost(5500, name="slow"), synthetic_ghost(5000, name="fast")
    unfinished = synthetic_ghost(4000, name="gave up")
    unfinished = Ghost(unfinished.positions_m, PERIOD_MS, UNFINISHED_RACE_TIME_MS, 0, "gave up")
    assert fastest_ghost([slow, unfinished, fast], "r").name == "fast"
    with pytest.raises(GbxError, match="holds no ghost"):
        fastest_ghost([], "r.Replay.Gbx")
    with pytest.raises(GbxError, match="none of its 1 ghost"):
        fastest_ghost([unfinished], "r.Replay.Gbx")


def test_respawns_are_warned_about() -> None:
    ghost = synthetic_ghost(respawns=1)
    positions = race_samples(ghost, "r").copy()
    assert respawn_warnings(ghost, positions) == [
        "the ghost respawned 1 time(s): the line may double back where it did; a run without respawns makes a "
        "cleaner line"
    ]
    positions[40:] -= [0.0, 0.0, 60.0]  # put back 60 m in 100 ms: a teleport at race time 4.00 s
    assert teleport_race_times_ms(positions, PERIOD_MS) == [4000]
    warnings = respawn_warnings(ghost, positions)
    assert len(warnings) == 2 and "race time 4.00 s" in warnings[1]
    # 30 m/s never looks like a teleport, even at 50 ms samples
    assert teleport_race_times_ms(race_samples(synthetic_ghost(), "r"), 50) == []


@pytest.mark.parametrize(
    ("ghost", "message"),
    [
        (Ghost(np.zeros((10, 3)), 0, 900, 0), "sample period is 0 ms"),
        (Ghost(np.zeros((1, 3)), 100, 900, 0), "1 position sample"),
        (Ghost(np.zeros((10, 2)), 100, 900, 0), r"shape \(10, 2\)"),
        (Ghost(np.full((10, 3), np.nan), 100, 900, 0), "NaN/inf positions, first at sample 0"),
    ],
)
def test_bad_ghosts_are_clear_errors(ghost: Ghost, message: str) -> None:
    with pytest.raises(GbxError, match=message):
        race_samples(ghost, "r.Replay.Gbx")


def test_a_ghost_that_never_moves_is_refused() -> None:
    with pytest.raises(GbxError, match="never moves"):
        reference_line(np.zeros((10, 3)))


# ---- checkpoints ------------------------------------------------------------------------------------------------
def test_checkpoint_blocks_positions_and_kinds() -> None:
    assert CheckpointBlock("StadiumRoadMainCheckpoint", (10, 1, 12)).position_m.tolist() == [336.0, 8.0, 400.0]
    assert CheckpointBlock("StadiumRoadMainCheckpointHigh", (10, 1, 12)).position_m[1] == pytest.approx(15.0)
    assert CheckpointBlock("StadiumRoadMainCheckpointLeft", (10, 1, 12)).position_m[1] == pytest.approx(13.0)
    names = ["StadiumRoadMainCheckpoint", "StadiumRoadMainStartLine", "StadiumRoadMainFinishLine"]
    kinds = {name: CheckpointBlock(name, (0, 0, 0)).kind for name in [*names, "StadiumRoadMainStartFinishLine"]}
    assert list(kinds.values()) == ["checkpoint", "start", "finish", "start/finish"]
    assert all(is_checkpoint_block(name) for name in kinds)
    assert not is_checkpoint_block("StadiumRoadMain") and not is_checkpoint_block("StadiumCircuitTurn")


# ---- the pygbx adapter and the commands ---------------------------------------------------------------------------
class FakeGbxType(IntEnum):  # pygbx.GbxType's values for the classes read here
    CHALLENGE = 0x03043000
    CHALLENGE_OLD = 0x24003000
    CTN_GHOST = 0x03092000
    CTN_GHOST_OLD = 0x2401B000


def fake_ghost(ghost: Ghost, login: str, race_time: int | None = None, cp_times: list | None = None) -> SimpleNamespace:
    records = [SimpleNamespace(position=SimpleNamespace(x=x, y=y, z=z)) for x, y, z in ghost.positions_m]
    return SimpleNamespace(id=FakeGbxType.CTN_GHOST, records=records, sample_period=ghost.sample_period_ms,
                           race_time=ghost.race_time_ms if race_time is None else race_time,
                           num_respawns=ghost.respawns, cp_times=cp_times or [], login=login)  # fmt: skip


@pytest.fixture
def fake_pygbx(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A stand-in `pygbx` module: Gbx(path) holds `classes` (set by the test), get_classes_by_ids filters by id."""
    content = SimpleNamespace(classes=[])
    module = types.ModuleType("pygbx")

    class Gbx:
        def __init__(self, path: str) -> None:
            self.path = path

        def get_classes_by_ids(self, ids: list[int]) -> list:
            return [c for c in content.classes if c.id in ids]

    module.Gbx, module.GbxType = Gbx, FakeGbxType
    monkeypatch.setitem(sys.modules, "pygbx", module)
    return content


def gbx_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"GBX\x06\x00BUCR" + bytes(64))  # the magic check passes; the stand-in parses nothing
    return path


def test_from_replay_end_to_end(tmp_path: Path, fake_pygbx: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    fast = synthetic_ghost(5000)
    # the slower ghost stores no race time chunk: its last checkpoint time is the finish
    slow = fake_ghost(synthetic_ghost(5500), "slow", race_time=0, cp_times=[3000, 5500])
    fake_pygbx.classes = [slow, fake_ghost(fast, "fast"), SimpleNamespace(id=FakeGbxType.CHALLENGE)]
    replay, output = gbx_file(tmp_path, "A01.Replay.Gbx"), tmp_path / "maps" / "a01_0.5m_player.npy"
    assert [g.race_time_ms for g in read_ghosts(replay)] == [5500, 5000]
    assert main(["track", "from-replay", str(replay), "-o", str(output)]) == 0
    out = capsys.readouterr().out
    assert "ghost 1 (fast)" in out and "5.000 s" in out and "every 100 ms" in out
    line = np.load(output, allow_pickle=False)
    assert line.dtype == np.float64 and line.shape[1] == 3
    np.testing.assert_allclose(line, reference_line(race_samples(fast, "r")))
    track = load_track(str(output))  # what `trackrl track info line.npy` loads
    assert track.length_m == pytest.approx(np.linalg.norm(np.diff(line, axis=0), axis=1).sum(), rel=1e-6)


def test_checkpoints_end_to_end(tmp_path: Path, fake_pygbx: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    blocks = [SimpleNamespace(name=n, position=SimpleNamespace(x=x, y=y, z=z)) for n, x, y, z in [
        ("StadiumRoadMainStartLine", 16, 1, 10), ("StadiumRoadMain", 16, 1, 11),
        ("StadiumRoadMainCheckpoint", 16, 1, 12), ("StadiumRoadMainFinishLine", 16, 1, 14)]]  # fmt: skip
    fake_pygbx.classes = [SimpleNamespace(id=FakeGbxType.CHALLENGE, blocks=blocks, environment="Stadium")]
    challenge, output = gbx_file(tmp_path, "A01.Challenge.Gbx"), tmp_path / "a01_cps.npy"
    assert main(["track", "checkpoints", str(challenge), "-o", str(output)]) == 0
    np.testing.assert_allclose(np.load(output), [[528, 8, 336], [528, 8, 400], [528, 8, 464]])
    assert "3 positions (1 checkpoints + start/finish)" in capsys.readouterr().out
    fake_pygbx.classes = [SimpleNamespace(id=FakeGbxType.CHALLENGE, blocks=blocks[1:2], environment="Stadium")]
    assert main(["track", "checkpoints", str(challenge), "-o", str(output)]) == 2
    assert "none of its 1 blocks is a checkpoint" in capsys.readouterr().err


def test_cli_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "line.npy"
    not_gbx = tmp_path / "notes.Replay.Gbx"
    not_gbx.write_text("hello")
    cases = [
        (["track", "from-replay", str(not_gbx), "-o", str(output)], "not a GBX file (it starts with b'hel'"),
        (["track", "from-replay", str(tmp_path / "missing.Replay.Gbx"), "-o", str(output)], "no such file"),
        (["track", "checkpoints", str(tmp_path), "-o", str(output)], "is not a file"),
    ]
    monkeypatch.setitem(sys.modules, "pygbx", None)  # import pygbx fails: the message says how to install it
    cases.append((["track", "from-replay", str(gbx_file(tmp_path, "a.Replay.Gbx")), "-o", str(output)], "trackrl[gbx]"))
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not output.exists()


def test_replay_without_ghost(tmp_path: Path, fake_pygbx: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    fake_pygbx.classes = [SimpleNamespace(id=FakeGbxType.CHALLENGE, blocks=[])]
    challenge = gbx_file(tmp_path, "a.Challenge.Gbx")
    assert main(["track", "from-replay", str(challenge), "-o", str(tmp_path / "l.npy")]) == 2
    assert "holds no ghost" in capsys.readouterr().err


def test_stand_in_matches_real_pygbx_names() -> None:
    """The stand-in's attribute names are pygbx 0.3's (skipped where the optional extra is not installed)."""
    pygbx = pytest.importorskip("pygbx")
    from pygbx import headers

    for name in FakeGbxType.__members__:
        assert pygbx.GbxType[name] == FakeGbxType[name]
    ghost = headers.CGameCtnGhost(FakeGbxType.CTN_GHOST)
    for attribute in ("records", "sample_period", "race_time", "num_respawns", "cp_times", "login"):
        assert hasattr(ghost, attribute)
    assert hasattr(headers.GhostSampleRecord(headers.Vector3(), 0, 0, 0, 0, 0, 0), "position")
    challenge = headers.CGameChallenge(FakeGbxType.CHALLENGE)
    assert hasattr(challenge, "blocks") and hasattr(challenge, "environment")
    block = headers.MapBlock()
    assert hasattr(block, "name") and hasattr(block.position, "x")
    assert callable(pygbx.Gbx.get_classes_by_ids)


# ---- through the real pygbx, on GBX files written by tests/gbx_writer.py (skipped without the extra) ------------
def test_real_pygbx_replay_to_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("pygbx")
    from gbx_writer import replay_gbx

    fast, slow = synthetic_ghost(5000, extra_after_finish=3), synthetic_ghost(5500)
    replay = tmp_path / "A01.Replay.Gbx"
    replay.write_bytes(replay_gbx([(slow.positions_m, 100, 5500, 0), (fast.positions_m, 100, 5000, 2)]))
    output = tmp_path / "line.npy"
    assert main(["track", "from-replay", str(replay), "-o", str(output)]) == 0
    captured = capsys.readouterr()
    assert "ghost 1" in captured.out and "respawned 2 time(s)" in captured.err
    positions_f32 = fast.positions_m.astype(np.float32).astype(np.float64)  # a ghost stores float32 positions
    np.testing.assert_allclose(np.load(output), reference_line(race_samples(Ghost(positions_f32, 100, 5000, 2), "r")))
    assert load_track(str(output)).length_m > 100
    truncated = tmp_path / "cut.Replay.Gbx"
    truncated.write_bytes(replay.read_bytes()[:60])
    assert main(["track", "from-replay", str(truncated), "-o", str(output)]) == 2
    assert "pygbx cannot parse it" in capsys.readouterr().err


def test_real_pygbx_challenge_to_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("pygbx")
    from gbx_writer import challenge_gbx

    blocks = [("StadiumRoadMainStartLine", (16, 1, 10)), ("StadiumRoadMain", (16, 1, 11)),
              ("StadiumRoadMainCheckpointHigh", (16, 1, 12)), ("StadiumRoadMainFinishLine", (17, 2, 14))]  # fmt: skip
    challenge = tmp_path / "A01.Challenge.Gbx"
    challenge.write_bytes(challenge_gbx(blocks))
    output = tmp_path / "cps.npy"
    assert main(["track", "checkpoints", str(challenge), "-o", str(output)]) == 0
    np.testing.assert_allclose(np.load(output), [[528, 8, 336], [528, 15, 400], [560, 16, 464]])
