"""Contract checks for CI: `verify` (fuzz a server against a contract), `contracts lint` and
`contracts diff`. Each module here is what one command does; `sandbox.cli` only parses flags."""
