"""Commands that check contracts and servers: verify, contracts lint, contracts diff, load."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sandbox.cli.base import PROG, CommandError
from sandbox.verify.documents import DocumentError


def cmd_verify(args: argparse.Namespace) -> int:
    if args.receiver:
        from sandbox.verify import receiver

        if not args.signing_secret:
            raise DocumentError("--receiver needs --signing-secret (the secret the sandbox "
                                "answered PUT /payments/v1/callback with)")
        return receiver.command(args.receiver, args.signing_secret,
                                junit_xml=args.junit_xml, timeout=args.timeout)
    from sandbox.verify import fuzz

    if not args.contract or not args.base_url:
        raise DocumentError("verify needs --contract and --base-url "
                            "(or --receiver URL --signing-secret SECRET)")
    return fuzz.command(args.contract, args.base_url, headers=args.header or [],
                        junit_xml=args.junit_xml, max_examples=args.max_examples,
                        seed=args.seed, timeout=args.timeout, phases=args.phases,
                        workers=args.workers, unsafe=args.unsafe,
                        expect_refusals=args.expect_refusals)


def cmd_contracts_lint(args: argparse.Namespace) -> int:
    from sandbox.verify import lint

    return lint.command(args.paths, fmt=args.format)


def cmd_contracts_diff(args: argparse.Namespace) -> int:
    from sandbox.verify import diff

    return diff.command(args.old, args.new, fmt=args.format)


def cmd_load(args: argparse.Namespace) -> int:
    from sandbox.load.run import PLAN, LoadError, UsageError, command

    report, started = Path(args.report), time.monotonic()
    try:
        return command(args.profile, calls=args.calls, duration_s=args.duration,
                       host=args.host, users=args.users, workers=args.workers,
                       remote_workers=args.remote_workers,
                       report=args.report, server_workers=args.server_workers, db=args.db,
                       seed=args.seed, partners_file=args.partners,
                       operator_key=args.operator_key, quiet=args.quiet)
    except UsageError as exc:
        print(f"{PROG} load: error: {exc}", file=sys.stderr)
        return 2
    except LoadError as exc:
        raise CommandError(str(exc)) from exc
    except KeyboardInterrupt:
        (report / PLAN).unlink(missing_ok=True)
        return _interrupted(report, report / PLAN, args.profile, time.monotonic() - started)
    finally:
        (report / PLAN).unlink(missing_ok=True)  # it holds live tokens, however the run ended


def _interrupted(report: Path, plan: Path, profile: str, elapsed: float) -> int:
    """Ctrl-C on load: said plainly, and what Locust wrote so far marked partial."""
    if report.is_dir():
        summary = {"profile": profile, "interrupted": True, "complete": False,
                   "after_s": round(elapsed, 1), "note": "Interrupted (Ctrl-C): Locust's files "
                   "here cover part of the run; nothing was reconciled."}
        (report / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"{PROG} load: interrupted after {elapsed:.0f} s; removed {plan} (it "
          f"held live tokens); the report in {report} is partial (summary.json says "
          '"interrupted": true).', file=sys.stderr, flush=True)
    return 130
