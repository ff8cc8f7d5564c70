"""The base of every error that is the user's input (config, track file, log folder, checkpoint).

The CLI prints these as one clear message without a traceback; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names what is wrong and where."""
