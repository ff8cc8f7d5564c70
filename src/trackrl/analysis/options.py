"""Parsing and checking of `compare` options: one small function per option type, each raising a UserError that
names the option and the value (the CLI passes the text through unchanged; the Python API may pass numbers).

- frame counts (``--steps`` entries, ``--step-interval``): ``500k``, ``2.5M``, ``1e6``; whole, positive, finite;
- a list of frame counts (``--steps``): comma-separated, no empty entry;
- a time interval (``--interval``): a positive finite number on the time axis (minutes or hours);
- the number of checkpoint rows an interval gives: at most ``MAX_CHECKPOINT_ROWS`` (a tiny interval would otherwise
  compute millions of rows and never finish).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from trackrl.errors import UserError

MAX_CHECKPOINT_ROWS = 1_000

_FRAMES_PATTERN = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?(?:e\+?\d+)?)\s*(?P<unit>[kKmMgGbB]?)\s*$")
_MAX_EXPONENT = 18  # 1e18 frames: beyond any run, and still an int64 TensorBoard step
_FRAME_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000, "b": 1_000_000_000}


def parse_frames(text: str, option: str = "--steps") -> int:
    """'500k' -> 500000, '2.5M' -> 2500000, '1e6' -> 1000000; refuses 0, fractions of a frame and overflow."""
    match = _FRAMES_PATTERN.match(text)
    if not match:
        raise UserError(f"{option}: '{text}' is not a frame count (e.g. 500k, 2.5M, 10M, 1000000)")
    exponent = match["number"].lower().partition("e")[2]
    if exponent and int(exponent) > _MAX_EXPONENT:
        raise UserError(f"{option}: '{text}' is too large to be a frame count")
    # Decimal, not float: 2.3M must be exactly 2,300,000 frames (2.3 * 1e6 is 2299999.9999999995 in floats).
    frames = Decimal(match["number"]) * _FRAME_UNITS[match["unit"].lower()]
    if frames < 1:
        raise UserError(f"{option}: '{text}' must be at least 1 frame")
    if frames != frames.to_integral_value():
        raise UserError(f"{option}: '{text}' is not a whole number of frames ({frames:f})")
    return int(frames)


def parse_frame_list(text: str, option: str = "--steps") -> list[int]:
    """'500k,2.5M' -> [500000, 2500000] (sorted, without repeats)."""
    parts = text.split(",")
    if any(not part.strip() for part in parts):
        raise UserError(f"{option}: '{text}' has an empty entry; give frame counts separated by commas, e.g. 500k,2.5M")
    frames = sorted({parse_frames(part, option) for part in parts})
    check_row_count(len(frames), option, text)
    return frames


def parse_interval(value: str | float | None, option: str = "--interval") -> float | None:
    """A checkpoint spacing on the time axis: positive and finite (nan, inf and 1e999 are refused)."""
    if value is None:
        return None
    try:
        interval = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{option}: '{value}' is not a number") from None
    if not math.isfinite(interval) or interval <= 0:
        raise UserError(f"{option}: must be a positive finite number, got '{value}'")
    return interval


def check_row_count(count: float, option: str, value: object, smallest: str | None = None) -> None:
    """Refuse an option that would make more than MAX_CHECKPOINT_ROWS checkpoint rows (and say what would fit)."""
    if count > MAX_CHECKPOINT_ROWS:
        hint = f"; use {option} {smallest} or more" if smallest else ""
        shown = f"{count:,.0f}" if count < 1e12 else f"{count:.3g}"
        raise UserError(
            f"{option} {value} gives {shown} checkpoint rows, more than the limit of {MAX_CHECKPOINT_ROWS:,}{hint}"
        )
