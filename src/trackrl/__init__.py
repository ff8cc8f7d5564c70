"""trackrl: train and compare IQN/BTR agents on Trackmania-style tracks.

Importing trackrl registers the Gymnasium env `trackrl/Race-v0` and its vector entry point (Gymnasium's habit,
as ale_py and minigrid do); the env modules, numba and torch load only when an env is made.
"""

import gymnasium

__version__ = "0.1.0"

RACE_ENV_ID = "trackrl/Race-v0"
# The race cutoff in actions: cutoff_rollout_if_race_not_finished_within_duration_ms (300 s) / 50 ms per action
# (EnvironmentConfig defaults; a test checks it). The env truncates there itself, with any env_config.
RACE_MAX_EPISODE_STEPS = 6000


def _register_gymnasium_envs() -> None:
    if RACE_ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=RACE_ENV_ID,
            entry_point="trackrl.sim.gym_env:RaceEnv",
            vector_entry_point="trackrl.sim.gym_vector:RaceVectorEnv",
            max_episode_steps=RACE_MAX_EPISODE_STEPS,
        )


_register_gymnasium_envs()
