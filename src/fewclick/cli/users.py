"""``fewclick users`` and ``fewclick token``: the app's users and their bearer tokens for
scripts, edited straight in the app's database."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from fewclick.cli.common import app_url


def add_commands(commands) -> None:
    users = commands.add_parser("users", help="the app's users").add_subparsers(title="users", required=True)
    uadd = users.add_parser("add", help="add a user of the app (admins add the others in the app too)")
    uadd.add_argument("name")
    uadd.add_argument("--role", required=True, choices=("admin", "annotator", "reviewer"))
    uadd.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    _app_database(uadd)
    uadd.set_defaults(run=_users_add)
    urm = users.add_parser(
        "remove", help="remove user NAME: their tokens and browser sessions end at once, their work stays"
    )
    urm.add_argument("name")
    _app_database(urm)
    urm.set_defaults(run=_users_remove)
    _add_token(commands)


def _add_token(commands) -> None:
    token = commands.add_parser("token", help="bearer tokens for scripts").add_subparsers(
        title="token", required=True
    )
    tnew = token.add_parser("create", help="print a new bearer token of user NAME (alone on stdout)")
    tnew.add_argument("name")
    tnew.add_argument("--label", default="script", help="what the token is for")
    tnew.add_argument(
        "--expires-days",
        type=float,
        help="the token stops working after this many days (default: never)",
    )
    _app_database(tnew)
    tnew.set_defaults(run=_token_create)
    trevoke = token.add_parser("revoke", help="revoke user NAME's tokens (all, or those of one --label)")
    trevoke.add_argument("name")
    trevoke.add_argument("--label", help="revoke only the tokens of this label")
    _app_database(trevoke)
    trevoke.set_defaults(run=_token_revoke)
    tlist = token.add_parser("list", help="user NAME's tokens: label, created, last used, expiry")
    tlist.add_argument("name")
    _app_database(tlist)
    tlist.set_defaults(run=_token_list)


def _app_database(parser: argparse.ArgumentParser) -> None:
    """The options that name the app's database, as ``serve`` takes them."""
    parser.add_argument("--db", help="database URL (default: sqlite file fewclick.db in --data)")
    parser.add_argument("--data", type=Path, default=Path("fewclick-data"), help="the app's data folder")


def _app_session(args):
    from fewclick.server.db import init_db, session_factory

    return session_factory(init_db(app_url(args)))()


def _users_add(args) -> int:
    from fewclick.server import accounts

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    with _app_session(args) as session:
        user = accounts.add_user(session, args.name, args.role, password)
        session.commit()
        print(f"added {user.name} ({user.role}){'' if password else ', no password: log in with a token'}")
    return 0


def _users_remove(args) -> int:
    from fewclick.server import accounts

    with _app_session(args) as session:
        accounts.remove_user(session, accounts.find_user(session, args.name))
        session.commit()
    print(f"removed {args.name}: their tokens and browser sessions ended; their past work stays")
    return 0


def _expiry(days: float | None):
    """When a token made now for ``days`` days expires (None: never)."""
    from fewclick.server.db import now

    if days is None:
        return None
    if not 0 < days < 100 * 365:
        raise ValueError(f"--expires-days: expected a positive number of days under 100 years, got {days:g}")
    return now() + timedelta(days=days)


def _token_create(args) -> int:
    from fewclick.server import accounts

    expires = _expiry(args.expires_days)
    with _app_session(args) as session:
        user = accounts.find_user(session, args.name)
        secret = accounts.create_token(session, user, args.label, expires)
        session.commit()
    print(secret)
    return 0


def _token_revoke(args) -> int:
    from fewclick.server import accounts

    with _app_session(args) as session:
        count = accounts.revoke_tokens(session, accounts.find_user(session, args.name), args.label)
        session.commit()
    print(f"revoked {count} token(s) of {args.name}")
    return 0


def _token_list(args) -> int:
    from fewclick.server import accounts

    with _app_session(args) as session:
        for t in accounts.tokens(session, accounts.find_user(session, args.name)):
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            expires = f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never"
            print(f"{t.name}\tcreated {t.created_at:%Y-%m-%d %H:%M}\tlast used {used}\texpires {expires}")
    return 0
