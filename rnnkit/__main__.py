"""`python -m rnnkit` runs the command line."""

import sys

from rnnkit.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
