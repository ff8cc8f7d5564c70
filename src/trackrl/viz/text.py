"""Bitmap text for NumPy frames: strings rasterised once by FreeType (matplotlib's DejaVu Sans Mono), then blended.

Drawing text through a matplotlib figure costs milliseconds per frame; a cached glyph mask costs microseconds.
"""

from __future__ import annotations

import functools

import numpy as np
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

FONT_FAMILY = "DejaVu Sans Mono"


@functools.lru_cache(maxsize=8)
def _font(size_px: int, bold: bool) -> FT2Font:
    properties = font_manager.FontProperties(family=FONT_FAMILY, weight="bold" if bold else "normal")
    font = FT2Font(font_manager.findfont(properties))
    font.set_size(size_px, 72)  # points at 72 dpi = pixels
    return font


@functools.lru_cache(maxsize=4096)
def text_mask(text: str, size_px: int, bold: bool = True) -> tuple[np.ndarray, int]:
    """(coverage in [0, 1] as (h, w) float32, rows from the mask's top to the baseline)."""
    font = _font(size_px, bold)
    font.set_text(text, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    mask = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    descent_px = round(font.get_descent() / 64)
    return mask, mask.shape[0] - descent_px


def draw_text(frame: np.ndarray, text: str, left_px: int, baseline_px: int, size_px: int,
              colour: tuple[int, int, int], bold: bool = True) -> int:  # fmt: skip
    """Blend ``text`` into ``frame`` (H, W, 3) uint8 in place; returns the text's width in pixels."""
    if not text:
        return 0
    mask, ascent_px = text_mask(text, size_px, bold)
    top = baseline_px - ascent_px
    blend_mask(frame, mask, top, left_px, colour)
    return mask.shape[1]


def blend_mask(frame: np.ndarray, mask: np.ndarray, top: int, left: int, colour: tuple[int, int, int]) -> None:
    """frame ← (1 − a) · frame + a · colour over the mask's rectangle, clipped to the frame."""
    h, w = mask.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, frame.shape[0]), min(left + w, frame.shape[1])
    if r1 <= r0 or c1 <= c0:
        return
    alpha = mask[r0 - top : r1 - top, c0 - left : c1 - left, None]
    region = frame[r0:r1, c0:c1].astype(np.float32)
    frame[r0:r1, c0:c1] = (region + alpha * (np.asarray(colour, dtype=np.float32) - region) + 0.5).astype(np.uint8)
