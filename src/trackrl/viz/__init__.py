"""Pictures of tracks and runs: top-down video frames, racing-line figures, TensorBoard line images.

Above sim (it draws sim's tracks and re-simulated races); train and analysis import it. matplotlib draws the static
pictures (track, line figures) once; the per-frame work of a video is plain NumPy on top of that picture.
"""
