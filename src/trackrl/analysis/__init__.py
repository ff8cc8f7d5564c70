"""Exact comparison of runs from their TensorBoard logs: `trackrl compare` and `trackrl audit`.

events.py (exact TFRecord reader) → runs.py (which folders make a run) → axes.py (wall minutes, training hours,
frames; common window) → tables.py (rows and key findings) → comparison.py (one comparison) → plots.py, report.py,
commands.py (outputs). Tag names come from trackrl.train.tb only.
"""
