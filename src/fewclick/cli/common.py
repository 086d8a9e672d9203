"""What several command groups share: a group's subcommands, the dataset, output, format and
Ray options, the worker count those options mean, and the app database's URL."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_group(commands, name: str, help: str):
    """The subcommands of ``fewclick NAME``, listed under "NAME commands"."""
    return commands.add_parser(name, help=help).add_subparsers(title=f"{name} commands")


def add_io(parser: argparse.ArgumentParser, data: str, out: str) -> None:
    """The required ``--data`` (the dataset read) and ``--out`` options, with their help."""
    parser.add_argument("--data", required=True, type=Path, help=data)
    parser.add_argument("--out", required=True, type=Path, help=out)


def add_format(parser: argparse.ArgumentParser, what: str = "dataset") -> None:
    """The ``--format`` option of a command that reads a dataset (default: detect it)."""
    parser.add_argument("--format", help=f"the {what} format (default: detect)")


def add_ray(parser: argparse.ArgumentParser, help: str = "as for encode") -> None:
    """The ``--ray [ADDRESS]`` and ``--workers`` options of a batch job; see :func:`workers`."""
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS", help=help)
    parser.add_argument("--workers", type=int, default=None, help="Ray workers, one thread each (default 2)")


def workers(args: argparse.Namespace) -> int:
    """How many workers a batch job runs: 1 in this process, else ``--workers`` (default 2) on Ray."""
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.workers not in (None, 1) and args.ray is None:
        raise ValueError("--workers needs --ray: in this process the job runs as one worker")
    return 1 if args.ray is None else (args.workers or 2)


def app_url(args: argparse.Namespace) -> str:
    """The app's database URL: ``--db``, else the sqlite file fewclick.db in ``--data``."""
    from fewclick.server.db import sqlite_url

    return args.db or sqlite_url(args.data / "fewclick.db")
