"""What every command shares: the program's name, and the error a command reports in one line."""

PROG = "openbank-sandbox"


class CommandError(Exception):
    """A failure to report in one line on stderr, exit code 1."""
