"""``fewclick serve``: run the annotation web app."""

from __future__ import annotations

from pathlib import Path

from fewclick.cli.common import app_url


def add_commands(commands) -> None:
    srv = commands.add_parser("serve", help="run the annotation web app")
    srv.add_argument("--db", help="database URL (default: sqlite file fewclick.db in --data)")
    srv.add_argument(
        "--data", type=Path, default=Path("fewclick-data"), help="folder for uploads, tiles and models"
    )
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument(
        "--data-root",
        type=Path,
        action="append",
        dest="data_roots",
        metavar="DIR",
        help="a folder whose images and datasets projects may be made from (repeatable; default: --data)",
    )
    srv.add_argument("--max-upload-mb", type=float, help="the largest upload, in MB (default: the app's)")
    srv.add_argument(
        "--embeddings-gb",
        type=float,
        help="the most SAM embeddings kept on disk, in GB; the least recently used go first "
        "(default: FEWCLICK_EMBEDDINGS_GB, else 16)",
    )
    srv.set_defaults(run=_serve)


def run_app(log_level: str, greeting: str, url: str, data: Path, host: str, port: int, *options) -> None:
    """Serve the app from database ``url`` and folder ``data`` after printing ``greeting``;
    it logs to stderr itself, each line with its request id (fewclick.server.logs)."""
    from fewclick.server import logs
    from fewclick.server.app import serve

    logs.configure(log_level)
    print(greeting)
    serve(url, data, host, port, *options)


def _serve(args) -> int:
    import os

    from fewclick.server import embeddings

    if args.embeddings_gb is not None:  # the worker process reads it from the environment
        os.environ[embeddings.DISK_ENV] = str(args.embeddings_gb)
    try:
        embeddings.disk_gb()
    except ValueError as exc:
        raise SystemExit(f"fewclick serve: {exc}") from None
    url = app_url(args)
    greeting = f"fewclick on http://{args.host}:{args.port}/ (database {url})"
    run_app(
        args.log_level, greeting, url, args.data, args.host, args.port, args.data_roots, args.max_upload_mb
    )
    return 0
