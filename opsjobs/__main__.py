"""``python -m opsjobs`` is the ``opsjobs`` command."""

import sys

from opsjobs.cli import main

sys.exit(main())
