"""A `.npy` track's side file: the road around a recorded racing line.

Linesight's `.npy` files hold the path of a best run (a racing line), not the road's centre: the line cuts corners,
so walls at ± width / 2 around it would put the apex on the road's edge in the middle of the road. A side file
`NAME.track.yaml` (or `.track.yml`, `.track.json`) beside `NAME.npy` says where the road is:

    road_width_m: 32          # the road's full width (m); a --road-width / map-cycle road_width_m overrides it
    line_offset_m: 0.0        # where the recorded line lies in the road: metres to the right of the road centre
                              # (negative: left), one number for the whole line or a list, one per .npy point
    name: A01                 # optional: the name `track info` shows (default: the file name)
    real_checkpoints: A01_cps.npy   # optional: the map's real checkpoint positions (N, 3), world metres, as
                              # `trackrl track checkpoints MAP.Challenge.Gbx -o A01_cps.npy` writes them (a path
                              # relative to the side file); the virtual checkpoints sync to them (GAME_BRIDGE.md 7.4)

"Right" is the simulator's right (car.py: the right normal (−t_z, t_x) of the direction of travel, steer +1). The
road centre is the line moved by −line_offset_m along that normal. Every key is optional; a file without a side file
is read as a road centred on the line, 16 m wide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from trackrl.errors import UserError

SIDE_FILE_SUFFIXES = (".track.yaml", ".track.yml", ".track.json")
KNOWN_KEYS = ("road_width_m", "line_offset_m", "name", "real_checkpoints")
DEFAULT_ROAD_WIDTH_M = 16.0


class TrackFileError(UserError):
    """A side file that cannot be used: unreadable, unknown key, or a value of the wrong kind."""


@dataclass(frozen=True)
class TrackFileSettings:
    source: Path | None  # the side file read, None when there is none
    road_width_m: float | None = None
    line_offset_m: float | list[float] = 0.0
    name: str | None = None
    real_checkpoint_positions_m: np.ndarray | None = None  # (N, 3) world metres, from the `real_checkpoints` file


def side_file_of(npy_path: Path) -> Path | None:
    """The side file beside `npy_path` (`A01.npy` -> `A01.track.yaml`), None when there is none."""
    stem = npy_path.name[: -len(".npy")] if npy_path.name.endswith(".npy") else npy_path.name
    found = [npy_path.with_name(stem + suffix) for suffix in SIDE_FILE_SUFFIXES]
    found = [path for path in found if path.exists()]
    if len(found) > 1:
        raise TrackFileError(f"track {npy_path}: two side files ({', '.join(map(str, found))}); keep one")
    return found[0] if found else None


def read_track_settings(npy_path: Path) -> TrackFileSettings:
    """The settings of the side file beside `npy_path`, checked key by key (TrackFileError names file and key)."""
    path = side_file_of(npy_path)
    if path is None:
        return TrackFileSettings(source=None)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise TrackFileError(f"track side file {path}: cannot be read ({str(error).splitlines()[0]})") from error
    if data is None:
        return TrackFileSettings(source=path)
    if not isinstance(data, dict):
        raise TrackFileError(f"track side file {path}: must be a mapping of keys ({', '.join(KNOWN_KEYS)}), "
                             f"not a {type(data).__name__}")  # fmt: skip
    unknown = sorted(str(key) for key in data if key not in KNOWN_KEYS)
    if unknown:
        raise TrackFileError(f"track side file {path}: unknown key {', '.join(unknown)} "
                             f"(known: {', '.join(KNOWN_KEYS)})")  # fmt: skip
    return TrackFileSettings(
        source=path,
        road_width_m=_road_width(data.get("road_width_m"), path),
        line_offset_m=_line_offset(data.get("line_offset_m", 0.0), path),
        name=_name(data.get("name"), path),
        real_checkpoint_positions_m=_real_checkpoints(data.get("real_checkpoints"), path),
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def _road_width(value: object, path: Path) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or value <= 0:
        raise TrackFileError(f"track side file {path}: road_width_m must be a number > 0 (metres), not {value!r}")
    return float(value)


def _line_offset(value: object, path: Path) -> float | list[float]:
    if _is_number(value):
        return float(value)
    if isinstance(value, list) and value and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    raise TrackFileError(f"track side file {path}: line_offset_m must be a number or a list of numbers, one per point "
                         f"of the .npy (metres to the right of the road centre), not {_short(value)}")  # fmt: skip


def _name(value: object, path: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise TrackFileError(f"track side file {path}: name must be a non-empty string, not {value!r}")
    return str(value).strip()


def _real_checkpoints(value: object, path: Path) -> np.ndarray | None:
    """The (N, 3) checkpoint positions of the `.npy` file the key names (relative to the side file's folder)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TrackFileError(f"track side file {path}: real_checkpoints must be the path of a .npy of checkpoint "
                             f"positions, not {_short(value)}")  # fmt: skip
    file = (path.parent / value).expanduser()
    try:
        positions = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise TrackFileError(f"track side file {path}: real_checkpoints {file} cannot be read as a .npy "
                             f"({str(error).splitlines()[0]})") from error  # fmt: skip
    well_shaped = positions.dtype.kind in "iuf" and positions.ndim == 2 and positions.shape[1:] == (3,) \
        and len(positions) > 0  # fmt: skip
    if not well_shaped or not np.isfinite(positions).all():
        what = "non-finite values" if well_shaped else f"an array of {positions.dtype} and shape {positions.shape}"
        raise TrackFileError(f"track side file {path}: real_checkpoints {file} must hold finite (N, 3) positions "
                             f"(x, y, z in metres), not {what}")  # fmt: skip
    return np.ascontiguousarray(positions, dtype=np.float64)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def road_centre_from_line(
    line_m: np.ndarray, line_offset_m: float | list[float], road_width_m: float, where: str
) -> np.ndarray:
    """The road centre of a racing line (N, 3) that lies `line_offset_m` to the right of it (one value or N).

    The offset is applied along the line's right normal (−t_z, t_x) in plan view; the height stays the line's.
    A line that turns tighter than its offset (radius < |offset|) would fold the centre back on itself: refused.
    """
    offsets = np.asarray(line_offset_m, dtype=np.float64)
    if offsets.ndim == 0:
        offsets = np.full(len(line_m), float(offsets))
    if len(offsets) != len(line_m):
        raise TrackFileError(f"track {where}: line_offset_m has {len(offsets)} values but the .npy has "
                             f"{len(line_m)} points (give one number, or one per point)")  # fmt: skip
    outside = np.abs(offsets) >= road_width_m / 2
    if outside.any():
        i = int(np.argmax(outside))
        raise TrackFileError(f"track {where}: line_offset_m {offsets[i]:g} m at point {i} puts the line off a road "
                             f"{road_width_m:g} m wide (|offset| < width / 2 needed)")  # fmt: skip
    if not offsets.any():
        return line_m
    tangent = np.gradient(line_m[:, [0, 2]], axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    right = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    centre = line_m.copy()
    centre[:, [0, 2]] -= offsets[:, None] * right
    line_steps, centre_steps = np.diff(line_m[:, [0, 2]], axis=0), np.diff(centre[:, [0, 2]], axis=0)
    folded = np.einsum("ij,ij->i", line_steps, centre_steps) < 0
    if folded.any():
        i = int(np.argmax(folded))
        raise TrackFileError(f"track {where}: line_offset_m {offsets[i]:g} m at point {i} folds the road centre "
                             "back on itself (the line turns tighter there than the offset); give a smaller offset "
                             "or one value per point")  # fmt: skip
    return centre
