"""One exception root; cli.py maps each class to its documented exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4
EXIT_LANDING = 5
EXIT_INTERRUPTED = 130


class HerdError(Exception):
    """Base of every error herd reports to a user.

    The message is one line: what, where, what to do.
    """

    exit_code = EXIT_USAGE


class BadInput(HerdError):
    """Malformed file, bad flag value, unknown status: exit 2."""

    exit_code = EXIT_USAGE


class NotFound(HerdError):
    """Unknown id, missing store: exit 3."""

    exit_code = EXIT_NOT_FOUND


class Refused(HerdError):
    """The request is well-formed but the state forbids it: exit 4.

    A dependency cycle, a lost claim, a close with open blockers.
    """

    exit_code = EXIT_REFUSED


class LandingFailed(HerdError):
    """Tests fail on the base or the push was refused after retries: exit 5."""

    exit_code = EXIT_LANDING


class Interrupted(HerdError):
    """Ctrl-C or a failpoint; state is saved and `herd resume` continues: exit 130."""

    exit_code = EXIT_INTERRUPTED
