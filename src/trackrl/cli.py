"""`trackrl` command line: train | replay | sweep | compare | audit | track | config | tmi-serve | game.

Each sub-command is parsed here and handled by its package; handlers are imported lazily so that
`trackrl config validate` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _add_config_commands(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="validate or show a YAML config")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    validate = config_sub.add_parser("validate", help="check a config file; print every problem")
    validate.add_argument("file")
    validate.set_defaults(handler=_lazy("trackrl.config.commands", "cmd_validate"))
    show = config_sub.add_parser("show", help="print the resolved config (defaults filled in)")
    show.add_argument("file")
    show.add_argument("--at-frames", type=float, default=None, help="also print every schedule's value here")
    show.set_defaults(handler=_lazy("trackrl.config.commands", "cmd_show"))


def _add_track_commands(subparsers: argparse._SubParsersAction) -> None:
    track = subparsers.add_parser("track", help="inspect built-in tracks or Linesight .npy centre lines")
    track_sub = track.add_subparsers(dest="track_command", required=True)
    listing = track_sub.add_parser("list", help="list the built-in tracks")
    listing.set_defaults(handler=_lazy("trackrl.sim.commands", "cmd_track_list"))
    info = track_sub.add_parser("info", help="length, width, turns, optimal (model) and achieved (simulator) times")
    info.add_argument("track", help="built-in name (e.g. a01) or path to a .npy centre line")
    info.add_argument("--road-width", type=float, default=None, help="road width in metres (.npy files)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    info.set_defaults(handler=_lazy("trackrl.sim.commands", "cmd_track_info"))
    plot = track_sub.add_parser("plot", help="draw the track with the optimal line coloured by speed")
    plot.add_argument("track")
    plot.add_argument("--road-width", type=float, default=None)
    plot.add_argument("-o", "--output", default="track.png")
    plot.set_defaults(handler=_lazy("trackrl.viz.commands", "cmd_track_plot"))
    _add_gbx_track_commands(track_sub)


def _add_train_commands(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train an agent on the built-in simulator")
    train.add_argument(
        "--config", default=None, help="YAML config (default configs/a01.yaml; with --resume: the run's snapshot)"
    )
    train.add_argument("--run-name", default=None, help="defaults to the config's run_name")
    train.add_argument("--resume", action="store_true", help="continue save/<run> exactly")
    train.add_argument(
        "--init-from", default=None, metavar="RUN", help="start from RUN's weights (name or folder), fresh counters"
    )
    train.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after M minutes")
    train.add_argument("--max-frames", type=float, default=None, help="stop (with a checkpoint) after N frames")
    train.add_argument("--save-dir", default="save")
    train.add_argument("--logdir", default="tensorboard")
    train.add_argument("--no-live", action="store_true", help="plain log lines instead of the live view")
    train.set_defaults(handler=_lazy("trackrl.train.commands", "cmd_train"))
    replay = subparsers.add_parser("replay", help="re-simulate a saved best run and check its race time; draw it")
    replay.add_argument("best_run_dir")
    replay.add_argument("--video", default=None, help="write a top-down video of the run here (.mp4 or .gif)")
    replay.add_argument("--speed", type=float, default=1.0, help="video speed: 1 = real time (20 actions/s)")
    replay.add_argument("--plot", default=None, help="write the racing line vs the reference here (.png)")
    replay.set_defaults(handler=_lazy("trackrl.train.commands", "cmd_replay"))


def _add_sweep_commands(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="a grid of train runs (configs x --set values x seeds) on Ray",
        description="Trials are ordinary `trackrl train` runs named <run_name>[-<override values>]-s<seed>. "
        "On a Ray cluster, --save-dir and --logdir must be on storage every node sees.",
    )  # fmt: skip
    sweep.add_argument("name", help="sweep name; state in <save-dir>/sweeps/NAME/sweep.json")
    sweep.add_argument("--config", action="append", help="a config file (repeat for several)")
    sweep.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per grid cell")
    sweep.add_argument("--set", action="append", metavar="KEY=V1,V2", help="dotted config key and its values")
    limit = sweep.add_mutually_exclusive_group()
    limit.add_argument("--max-minutes", type=float, default=None, help="per trial, over all its sessions")
    limit.add_argument("--max-frames", type=float, default=None, help="per trial")
    sweep.add_argument("--address", default=None, help="Ray cluster: auto or ray://HOST:PORT (default RAY_ADDRESS, "
                       "else a local Ray)")  # fmt: skip
    sweep.add_argument("--cpus-per-trial", type=int, default=None, help="default: collectors + 1")
    sweep.add_argument("--save-dir", default="save")
    sweep.add_argument("--logdir", default="tensorboard")
    mode = sweep.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue: finished trials skipped, others resumed")
    mode.add_argument("--status", action="store_true", help="print the table of trials and exit")
    sweep.set_defaults(handler=_lazy("trackrl.sweep.commands", "cmd_sweep"))


def _add_analysis_commands(subparsers: argparse._SubParsersAction) -> None:
    compare = subparsers.add_parser("compare", help="compare runs from their TensorBoard logs, exactly")
    compare.add_argument("runs", nargs="*", help="run names (folders under --logdir)")
    compare.add_argument("--sweep", default=None, help="compare the sweep's grid cells across seeds")
    compare.add_argument("--group", action="append", default=None, metavar="RUN,RUN,...",
                         help="a group of runs (seeds of one setting); repeat for each group")  # fmt: skip
    compare.add_argument("--logdir", default="tensorboard")
    compare.add_argument("--save-dir", default="save")
    compare.add_argument("--time-axis", choices=["auto", "wall_minutes", "cumul_training_hours"], default="auto")
    compare.add_argument(
        "--interval",
        default=None,
        help="checkpoint spacing with a unit: 10m, 90s, 0.5h (a bare number is in the axis unit)",
    )
    compare.add_argument("--times", default=None, help="explicit time checkpoints, e.g. 20m,60m,90m,150m")
    compare.add_argument(
        "--beyond-window",
        action="store_true",
        help="also show the longer runs past the common window (marked as outside it)",
    )
    compare.add_argument("--steps", default=None, help="step checkpoints, e.g. 500k,2.5M,10M")
    compare.add_argument("--step-interval", default=None, help="step checkpoints every N frames, e.g. 2M")
    compare.add_argument("--map", default=None, help="only this map's race tags")
    compare.add_argument("--report", default=None, help="write a Markdown report here")
    compare.add_argument("--json", default=None, help="write every table as JSON here")
    compare.add_argument("--plots", default=None, help="write one PNG per metric into this folder")
    compare.set_defaults(handler=_lazy("trackrl.analysis.commands", "cmd_compare"))
    audit = subparsers.add_parser("audit", help="wall span vs cumulative training hours per run")
    audit.add_argument("runs", nargs="*", help="run names (default: every run under --logdir)")
    audit.add_argument("--logdir", default="tensorboard")
    audit.add_argument("--save-dir", default="save")
    audit.set_defaults(handler=_lazy("trackrl.analysis.commands", "cmd_audit"))


def _add_game_commands(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "tmi-serve", help="serve the simulator as TMInterface 2 game instances (Linesight's protocol, loopback only)"
    )
    serve.add_argument("--track", required=True, help="built-in name (e.g. a01) or path to a .npy centre line")
    serve.add_argument("--port", type=int, default=8478, help="first port; instance i listens on port + i")
    serve.add_argument("--instances", type=int, default=1, help="game instances, one process and port each")
    serve.add_argument("--realtime", action="store_true", help="speed s runs at s x real time (default: as fast as "
                       "the client answers)")  # fmt: skip
    serve.add_argument("--checkpoints", type=int, default=3, help="checkpoints before the finish, evenly spaced")
    serve.set_defaults(handler=_lazy("trackrl.game.commands", "cmd_tmi_serve"))


# ---- the real game's files: .Gbx maps to .npy (track from-replay | checkpoints), the plugin (game install-plugin)
def _add_gbx_track_commands(track_sub: argparse._SubParsersAction) -> None:
    replay = track_sub.add_parser("from-replay", help="a .npy reference line (0.5 m) from a replay's fastest ghost")
    replay.add_argument("replay", help="FILE.Replay.Gbx (or a .Challenge.Gbx holding a ghost); needs trackrl[gbx]")
    replay.add_argument("-o", "--output", required=True, help="the .npy file to write (N x 3, Linesight's format)")
    replay.set_defaults(handler=_lazy("trackrl.game.map_commands", "cmd_track_from_replay"))
    checkpoints = track_sub.add_parser("checkpoints", help="the real checkpoint positions of a .Challenge.Gbx")
    checkpoints.add_argument("challenge", help="FILE.Challenge.Gbx; needs trackrl[gbx]")
    checkpoints.add_argument("-o", "--output", required=True, help="the .npy file to write (N x 3 metres)")
    checkpoints.set_defaults(handler=_lazy("trackrl.game.map_commands", "cmd_track_checkpoints"))


def _add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
    game = subparsers.add_parser("game", help="the real game: install trackrl's TMInterface 2 plugin")
    game_sub = game.add_subparsers(dest="game_command", required=True)
    install = game_sub.add_parser("install-plugin", help="copy trackrl_link.as into TMInterface's Plugins folder")
    install.add_argument("--tmi-dir", default=None, help="the TMInterface folder (default: Documents/TMInterface; "
                         "under Wine, the prefix's, $WINEPREFIX or ~/.wine)")  # fmt: skip
    install.add_argument("--force", action="store_true", help="replace a different trackrl_link.as (kept as .bak)")
    install.set_defaults(handler=_lazy("trackrl.game.plugin_install", "cmd_install_plugin"))


def _lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return importlib.import_module(module).__getattribute__(function)(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trackrl", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train_commands(subparsers)
    _add_sweep_commands(subparsers)
    _add_analysis_commands(subparsers)
    _add_track_commands(subparsers)
    _add_config_commands(subparsers)
    _add_game_commands(subparsers)
    _add_plugin_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the report records the command line
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # user-facing errors: one clear line, no traceback
        from trackrl.errors import UserError

        if isinstance(error, UserError):
            print(f"trackrl {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
