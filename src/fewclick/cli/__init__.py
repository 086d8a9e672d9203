"""The one entry point: ``fewclick <command>`` (also ``python -m fewclick``).

Every command builds its arguments once and calls library functions; errors that come
from the user's input (a bad file, an unknown name) end the command with a one-line
message and exit code 2, never a traceback.

This module holds ``main`` and the top-level parser; each command group is a module here
(``data``, ``train``, ``batch``, ...) whose ``add_commands`` registers its commands, each
with its function as ``run``. A command's name comes from its function's: ``_train_detect``
is ``fewclick train detect``. Heavy libraries (torch, the web app) are imported inside the
command functions, so ``fewclick --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from fewclick import __version__
from fewclick.batch import BatchError
from fewclick.cli import batch, data, demo, evaluate, models, protocol, serve, train, users
from fewclick.extras import missing_extra

log = logging.getLogger("fewclick")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# commands (and groups) that run long enough to report progress
LONG_RUNNING = ("train", "refine", "protocol", "encode", "predict", "demo", "serve")
APP_COMMANDS = ("serve", "demo")  # the app logs with request ids (fewclick.server.logs)
# in the order `fewclick --help` lists them
GROUPS = (demo, data, train, batch, protocol, serve, users, models, evaluate)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    command = _command(args)
    # long-running commands say how training and jobs go (INFO); the others only what went wrong
    chatty = command.startswith(LONG_RUNNING)
    level = args.log_level or os.environ.get("FEWCLICK_LOG", "INFO" if chatty else "WARNING").upper()
    if level not in LEVELS:
        print(
            f"fewclick: error: FEWCLICK_LOG={level!r}: expected one of {', '.join(LEVELS)}", file=sys.stderr
        )
        return 2
    args.log_level = level
    if command not in APP_COMMANDS:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log.setLevel(level)  # fewclick's records; other libraries stay at warnings
    log.debug("fewclick %s: %s", __version__, " ".join(map(str, argv if argv is not None else sys.argv[1:])))
    return _run(args, command)


def _command(args: argparse.Namespace) -> str:
    """The command ``args`` runs, as typed: ``train detect`` for ``_train_detect``."""
    return args.run.__name__.strip("_").replace("_", " ")


def _run(args: argparse.Namespace, command: str) -> int:
    """Run the command; the user's errors end it with a one-line message and exit code 2."""
    try:
        return args.run(args) or 0
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return 0
    except (ValueError, KeyError, FileNotFoundError, NotADirectoryError, BatchError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"fewclick: error: {message}", file=sys.stderr)
        return 2
    except ImportError as exc:
        message = missing_extra(exc, f"fewclick {command}")
        if message is None:
            raise
        print(f"fewclick: error: {message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewclick", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fewclick {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        help="what fewclick logs to stderr (default: $FEWCLICK_LOG, else INFO for training, refining, "
        "protocols, batch jobs and the app, WARNING for the rest)",
    )
    commands = parser.add_subparsers(title="commands")
    for group in GROUPS:
        group.add_commands(commands)
    return parser
