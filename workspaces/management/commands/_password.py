"""How account commands read a password: from stdin when asked, else a hidden prompt on a
terminal, else none. A password is never an argument and never printed."""

import getpass
import sys

from django.core.management.base import CommandError


def read_password(*, from_stdin: bool, stdin=None) -> str | None:
    stdin = stdin or sys.stdin
    if from_stdin:
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin was given but standard input was empty.")
        return password
    if stdin.isatty():
        password = getpass.getpass("Password (leave empty for none): ")
        if not password:
            return None
        if getpass.getpass("Password again: ") != password:
            raise CommandError("The two passwords differ; nothing was changed.")
        return password
    return None
