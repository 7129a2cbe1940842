"""openbank-sandbox: the command line. Every flag has a SANDBOX_* environment twin.

Exit codes: 0 success, 1 the command failed, 2 usage error.
"""

from __future__ import annotations

import sys

from sandbox.cli.admin import cmd_operator_create, cmd_partner_create, cmd_serve, cmd_token
from sandbox.cli.base import PROG, CommandError
from sandbox.cli.checks import cmd_contracts_diff, cmd_contracts_lint, cmd_load, cmd_verify
from sandbox.cli.parser import build_parser
from sandbox.settings import SettingsError
from sandbox.verify.documents import DocumentError

# What `sandbox.cli` offered as one module, importable from here as before.
__all__ = ["PROG", "CommandError", "build_parser", "cmd_contracts_diff", "cmd_contracts_lint",
           "cmd_load", "cmd_operator_create", "cmd_partner_create", "cmd_serve", "cmd_token",
           "cmd_verify", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except DocumentError as exc:  # a document or URL a contract check cannot use
        command = " ".join(filter(None, (args.command, getattr(args, "contracts_command", None))))
        print(f"{PROG} {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
