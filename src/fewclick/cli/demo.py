"""``fewclick demo``: a demo project from synthetic aerial scenes, its first model training
in the background, and the app serving it."""

from __future__ import annotations

from pathlib import Path

from fewclick.cli.serve import run_app

DEMO_USER = "demo"  # the admin `fewclick demo` logs in as


def add_commands(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="make a demo project from synthetic aerial scenes, train its first model in the background "
        "and serve the app",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="folder for the demo (default: out/demo)"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--train-minutes", type=float, default=3.0, help="training budget of the first model")
    demo.add_argument("--no-serve", action="store_true", help="set the project up and exit (no training)")
    demo.set_defaults(run=_demo)


def _demo(args) -> int:
    from fewclick.server.demo import setup_demo

    url, project_id, job_id = setup_demo(args.out, args.train_minutes, train=not args.no_serve)
    print(f"demo project {project_id} in {url}")
    print(f"log in as {DEMO_USER} with the password {_demo_login(url)} (an admin; new on every run)")
    if args.no_serve:
        return 0
    if job_id is not None:
        print(f"its background trainer and first models are training (job {job_id})")
    greeting = f"open http://{args.host}:{args.port}/#/project/{project_id}"
    run_app(args.log_level, greeting, url, args.out, args.host, args.port)
    return 0


def _demo_login(url: str) -> str:
    """A new password for the demo's admin user (made on the first run)."""
    import secrets

    from fewclick.server import accounts
    from fewclick.server.db import init_db, session_factory
    from fewclick.server.storage import users

    password = secrets.token_urlsafe(9)
    with session_factory(init_db(url))() as session:
        user = users.named(session, DEMO_USER)
        if user is None:
            accounts.add_user(session, DEMO_USER, "admin", password)
        else:
            accounts.set_password(user, password)
        session.commit()
    return password
