"""trackrl: train and compare IQN/BTR agents on Trackmania-style tracks."""

__version__ = "0.1.0"
