"""`python -m bot.cli`: the same as the `policybot` console script."""

import sys

from bot.cli import main

sys.exit(main())
