"""The real game: TMInterface 2's loopback protocol at both ends (above `sim`, below `train`).

protocol.py (message types, framing, exact reads), blob.py (the simulation-state blob), client.py (the Python end:
`TMIClient`), simulated_game.py + server.py (the game end around the built-in simulator), commands.py
(`trackrl tmi-serve`).
"""
