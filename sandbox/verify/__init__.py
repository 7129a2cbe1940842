"""Contract checks for CI: `verify` (fuzz a server against a contract), `contracts lint` and
`contracts diff`. fuzz, receiver, lint and diff are what each command does (lint_* and diff_*
hold their rules and comparisons); `sandbox.cli` only parses flags."""
