"""`python -m waguard.report` (the same as `waguard report`)."""

import sys

from waguard.report import main

raise SystemExit(main(sys.argv[1:]))
