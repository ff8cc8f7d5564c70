"""The real game: TMInterface 2's loopback protocol at both ends (above `sim`, below `train`).

protocol.py (message types, framing, exact reads), blob.py (the simulation-state blob), client.py (the Python end:
`TMIClient`), simulated_game.py + server.py (the game end around the built-in simulator), commands.py
(`trackrl tmi-serve`); the game backend's launcher.py (launch, stop, pre-start checks), instance.py (one game
instance: lifecycle and Linesight's per-action race loop), observation_adapter.py (observation, progress, reward
from state blobs).
"""
