"""`python -m sandbox.cli`: the openbank-sandbox command, as the tests and load runs start it."""

import sys

from sandbox.cli import main

sys.exit(main())
