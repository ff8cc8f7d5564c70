"""`trackrl tmi-serve`: the built-in simulator served as TMInterface 2 game instances, one per port."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal

from trackrl.errors import UserError
from trackrl.game.server import PluginServer
from trackrl.game.simulated_game import SimulatedGame
from trackrl.sim.track import load_track

log = logging.getLogger("trackrl.game.server")


def serve_instance(track_name: str, port: int, realtime: bool, n_checkpoints: int) -> None:
    """One game instance until Ctrl-C / SIGTERM (run in its own process when there are several)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops as cleanly as Ctrl-C
    try:
        server = PluginServer(SimulatedGame(load_track(track_name), n_checkpoints), port, realtime=realtime)
    except UserError as error:
        log.error("port %d: %s", port, error)
        raise SystemExit(2) from None
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("port %d: stopped (%d clients served)", port, server.clients_served)
    finally:
        server.close()


def cmd_tmi_serve(args: argparse.Namespace) -> int:
    if args.instances < 1:
        raise UserError(f"--instances must be at least 1, got {args.instances}")
    if not 0 < args.port <= 65535 - args.instances + 1:
        raise UserError(f"--port {args.port}: ports {args.port}..{args.port + args.instances - 1} are not all valid")
    if args.checkpoints < 0:
        raise UserError(f"--checkpoints must be >= 0, got {args.checkpoints}")
    load_track(args.track)  # a bad track is one clear error before any process starts
    ports = [args.port + i for i in range(args.instances)]
    if len(ports) == 1:
        serve_instance(args.track, ports[0], args.realtime, args.checkpoints)
        return 0
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=serve_instance, args=(args.track, port, args.realtime, args.checkpoints), daemon=False)
        for port in ports
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # every instance got the same Ctrl-C and stops by itself
        for process in processes:
            process.join(timeout=5)
    return 0
