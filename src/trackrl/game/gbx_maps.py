"""Maps from the game's files: a `.npy` reference line from a replay's fastest ghost, checkpoints from a challenge.

`.Gbx` files are read with pygbx (PyPI `pygbx`, the parser Linesight uses; optional extra `trackrl[gbx]`), imported
only inside `read_ghosts` / `read_checkpoint_blocks`. Everything after the read is plain NumPy on `Ghost` and
`CheckpointBlock` values, so it is tested on synthetic ghosts without the library (GAME_BRIDGE.md §7.4, §7.6).

Reference line: the ghost's samples up to its race time (a TMNF ghost records a position every `sample_period_ms`:
100 ms, or 50 ms for TMInterface's high-quality replays, read from the ghost instead of assumed: Linesight issue
#91), then points every 0.5 m of arc length along them (Linesight's `.npy` format: N x 3 float64, world metres,
y up). Checkpoints: blocks whose name holds "Checkpoint" or "Line" (start, finish, multilap lines too, as
Linesight), at the block's centre for 32 x 8 x 32 m Stadium blocks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackrl.errors import UserError
from trackrl.sim.track import POINT_SPACING_M, resample_centerline

GBX_MAGIC = b"GBX"
UNFINISHED_RACE_TIME_MS = 0xFFFFFFFF  # what a ghost that did not finish stores as its race time
MAX_PLAUSIBLE_SPEED_MPS = 1000 / 3.6 * 1.5  # TMNF cars top out near 1000 km/h: a faster jump is a teleport
BLOCK_SIZE_M = np.array([32.0, 8.0, 32.0])  # Stadium blocks (the only TMNF environment)
BLOCK_CENTRE_OFFSET_M = np.array([16.0, 0.0, 16.0])
# Linesight's height corrections, in blocks: the gate of a "High" checkpoint, and the side checkpoints.
HIGH_BLOCK_LIFT = 7 / 8
SIDE_CHECKPOINT_LIFT = 5 / 8
SIDE_CHECKPOINT_NAMES = frozenset({"StadiumRoadMainCheckpointRight", "StadiumRoadMainCheckpointLeft"})
PYGBX_MISSING = (
    "reading .Gbx files needs the pygbx package: pip install 'trackrl[gbx]' (pygbx needs python-lzo, which on Linux "
    "builds from source: install liblzo2-dev first, e.g. apt-get install liblzo2-dev)"
)
log = logging.getLogger("trackrl.game.gbx_maps")


class GbxError(UserError):
    """A .Gbx file that is not one, cannot be parsed, or lacks what the command needs (a ghost, checkpoints)."""


@dataclass(frozen=True)
class Ghost:
    positions_m: np.ndarray  # (n_samples, 3) world metres, y up; sample i at race time i * sample_period_ms
    sample_period_ms: int
    race_time_ms: int  # UNFINISHED_RACE_TIME_MS if the ghost did not finish
    respawns: int
    name: str = "ghost"

    @property
    def finished(self) -> bool:
        return 0 < self.race_time_ms < UNFINISHED_RACE_TIME_MS


@dataclass(frozen=True)
class CheckpointBlock:
    name: str
    block_xyz: tuple[int, int, int]  # block coordinates as stored in the challenge

    @property
    def kind(self) -> str:
        if "Checkpoint" in self.name:
            return "checkpoint"
        if "StartFinish" in self.name or "Multilap" in self.name:
            return "start/finish"
        return "finish" if "Finish" in self.name else "start"

    @property
    def position_m(self) -> np.ndarray:
        """The block's centre in world metres (Linesight's rule, with its height corrections)."""
        block = np.asarray(self.block_xyz, dtype=np.float64)
        if "High" in self.name:
            block[1] += HIGH_BLOCK_LIFT
        elif self.name in SIDE_CHECKPOINT_NAMES:
            block[1] += SIDE_CHECKPOINT_LIFT
        return block * BLOCK_SIZE_M + BLOCK_CENTRE_OFFSET_M


def is_checkpoint_block(name: str) -> bool:
    return "Checkpoint" in name or "Line" in name


# ---- from a ghost to a reference line ---------------------------------------------------------------------------
def fastest_ghost(ghosts: list[Ghost], where: str) -> Ghost:
    """The finished ghost with the smallest race time (Linesight: the smallest last checkpoint time)."""
    if not ghosts:
        raise GbxError(f"{where}: holds no ghost (a .Replay.Gbx of a driven race, or a challenge with a ghost, needed)")
    finished = [ghost for ghost in ghosts if ghost.finished]
    if not finished:
        raise GbxError(f"{where}: none of its {len(ghosts)} ghost(s) finished the race; drive the map to the finish")
    return min(finished, key=lambda ghost: ghost.race_time_ms)


def race_samples(ghost: Ghost, where: str) -> np.ndarray:
    """The positions sampled from race time 0 to the finish (a ghost keeps recording a little after it)."""
    if ghost.sample_period_ms <= 0:
        raise GbxError(f"{where}: the ghost's sample period is {ghost.sample_period_ms} ms; cannot time its samples")
    positions = np.asarray(ghost.positions_m, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise GbxError(f"{where}: the ghost's positions have shape {positions.shape}, not (n, 3)")
    kept = positions[: ghost.race_time_ms // ghost.sample_period_ms + 1]
    if len(kept) < 2:
        raise GbxError(f"{where}: the ghost has {len(kept)} position sample(s) up to its finish; at least 2 needed")
    bad = ~np.isfinite(kept).all(axis=1)
    if bad.any():
        raise GbxError(f"{where}: the ghost has NaN/inf positions, first at sample {int(np.argmax(bad))}")
    return kept


def teleport_race_times_ms(positions_m: np.ndarray, sample_period_ms: int) -> list[int]:
    """Race times of the samples reached faster than any car drives: respawns (the car put back at a checkpoint)."""
    jumps_m = np.linalg.norm(np.diff(positions_m, axis=0), axis=1)
    too_fast = np.flatnonzero(jumps_m > MAX_PLAUSIBLE_SPEED_MPS * sample_period_ms / 1000)
    return [int((i + 1) * sample_period_ms) for i in too_fast]


def respawn_warnings(ghost: Ghost, positions_m: np.ndarray) -> list[str]:
    """Linesight warns on respawns: the line then doubles back to the checkpoint the car respawned at."""
    warnings = []
    if ghost.respawns > 0:
        warnings.append(f"the ghost respawned {ghost.respawns} time(s): the line may double back where it did; "
                        "a run without respawns makes a cleaner line")  # fmt: skip
    jumps_ms = teleport_race_times_ms(positions_m, ghost.sample_period_ms)
    if jumps_ms:
        shown = ", ".join(f"{t / 1000:.2f} s" for t in jumps_ms[:5]) + (" ..." if len(jumps_ms) > 5 else "")
        warnings.append(f"the ghost jumps faster than a car drives at {len(jumps_ms)} sample(s) (race time {shown}): "
                        "respawns or teleports; the line has a gap there")  # fmt: skip
    return warnings


def reference_line(positions_m: np.ndarray, spacing_m: float = POINT_SPACING_M) -> np.ndarray:
    """Points every `spacing_m` (as near as a whole number of steps allows) along the polyline, ends kept."""
    gaps_m = np.linalg.norm(np.diff(positions_m, axis=0), axis=1)
    moving = positions_m[np.concatenate([[True], gaps_m > 1e-9])]  # the car standing still adds no points
    if len(moving) < 2:
        raise GbxError("the ghost never moves: no line to resample")
    return resample_centerline(moving, spacing_m)


# ---- reading .Gbx files (pygbx) -------------------------------------------------------------------------------
def check_gbx_file(path: Path) -> None:
    """A clear error for a missing file or one that is not a GBX file, before pygbx sees it."""
    if not path.is_file():
        raise GbxError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    with open(path, "rb") as handle:
        magic = handle.read(len(GBX_MAGIC))
    if magic != GBX_MAGIC:
        raise GbxError(f"{path}: not a GBX file (it starts with {magic!r}, not {GBX_MAGIC!r})")


def _import_pygbx():  # -> the pygbx module
    try:
        import pygbx
    except ImportError as error:
        raise GbxError(PYGBX_MISSING) from error
    return pygbx


def _parse(path: Path):  # -> (pygbx, pygbx.Gbx)
    check_gbx_file(path)
    pygbx = _import_pygbx()
    try:
        return pygbx, pygbx.Gbx(str(path))
    except Exception as error:  # pygbx raises GbxLoadError, struct.error, zlib/lzo errors on damaged files
        raise GbxError(f"{path}: pygbx cannot parse it ({type(error).__name__}: {error})") from error


def read_ghosts(path: Path) -> list[Ghost]:
    """Every ghost (CTN_GHOST, old or new class id) in a replay or a challenge."""
    pygbx, gbx = _parse(path)
    kinds = [pygbx.GbxType.CTN_GHOST, pygbx.GbxType.CTN_GHOST_OLD]
    ghosts = []
    for index, ghost in enumerate(gbx.get_classes_by_ids(kinds)):
        records = list(getattr(ghost, "records", None) or [])
        positions = np.array([[r.position.x, r.position.y, r.position.z] for r in records], dtype=np.float64)
        race_time = getattr(ghost, "race_time", 0) or 0
        cp_times = list(getattr(ghost, "cp_times", None) or [])
        if race_time in (0, UNFINISHED_RACE_TIME_MS) and cp_times:
            race_time = cp_times[-1]  # the finish is the last checkpoint time
        login = getattr(ghost, "login", None)
        ghosts.append(
            Ghost(
                positions_m=positions.reshape(-1, 3),
                sample_period_ms=int(getattr(ghost, "sample_period", 0) or 0),
                race_time_ms=int(race_time),
                respawns=int(getattr(ghost, "num_respawns", 0) or 0),
                name=f"ghost {index} ({login})" if login else f"ghost {index}",
            )
        )
    return ghosts


def read_checkpoint_blocks(path: Path) -> list[CheckpointBlock]:
    """The checkpoint, start and finish blocks of a challenge, in the file's block order."""
    pygbx, gbx = _parse(path)
    challenges = gbx.get_classes_by_ids([pygbx.GbxType.CHALLENGE, pygbx.GbxType.CHALLENGE_OLD])
    if not challenges:
        raise GbxError(f"{path}: holds no challenge (map); pass a .Challenge.Gbx")
    challenge = challenges[0]
    environment = getattr(challenge, "environment", None)
    if environment and environment != "Stadium":
        log.warning("%s: environment %s: block positions assume Stadium's 32 x 8 x 32 m blocks", path, environment)
    blocks = [
        CheckpointBlock(block.name, (int(block.position.x), int(block.position.y), int(block.position.z)))
        for block in challenge.blocks
        if block.name and is_checkpoint_block(block.name)
    ]
    if not blocks:
        raise GbxError(f"{path}: none of its {len(challenge.blocks)} blocks is a checkpoint, start or finish block")
    return blocks


def checkpoint_positions_m(blocks: list[CheckpointBlock]) -> np.ndarray:
    return np.stack([block.position_m for block in blocks]).astype(np.float64)
