"""The 12 discrete actions: keyboard combinations in Linesight's order (index 0 = accelerate, 6 = brake)."""

from __future__ import annotations

import numpy as np

N_ACTIONS = 12

# Columns: (accelerate, brake, left, right), one row per action, exactly Linesight's inputs list.
ACTIONS: np.ndarray = np.array(
    [
        [1, 0, 0, 0],  # accel
        [1, 0, 1, 0],  # accel + left
        [1, 0, 0, 1],  # accel + right
        [0, 0, 0, 0],  # nothing
        [0, 0, 1, 0],  # left
        [0, 0, 0, 1],  # right
        [0, 1, 0, 0],  # brake
        [0, 1, 1, 0],  # brake + left
        [0, 1, 0, 1],  # brake + right
        [1, 1, 0, 0],  # accel + brake
        [1, 1, 1, 0],  # accel + brake + left
        [1, 1, 0, 1],  # accel + brake + right
    ],
    dtype=bool,
)
ACTIONS.setflags(write=False)
# The car kernel's steering input per action: right − left, so −1 full left, 0 straight, +1 full right.
STEER_INPUT: np.ndarray = ACTIONS[:, 3].astype(np.float64) - ACTIONS[:, 2].astype(np.float64)
STEER_INPUT.setflags(write=False)

ACTION_NAMES: list[str] = [
    "accel",
    "accel+left",
    "accel+right",
    "nothing",
    "left",
    "right",
    "brake",
    "brake+left",
    "brake+right",
    "accel+brake",
    "accel+brake+left",
    "accel+brake+right",
]

ACCELERATE_ACTION = 0
BRAKE_ACTION = 6
