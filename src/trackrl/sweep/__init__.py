"""`trackrl sweep`: a grid (configs x --set overrides x seeds) of ordinary `trackrl train` runs, run by Ray.

grid.py builds and validates the trials, state.py keeps save/sweeps/NAME/sweep.json, trial.py is the Ray task that
runs one `trackrl train` process, runner.py schedules the tasks and shows progress, commands.py is the CLI handler.
"""
