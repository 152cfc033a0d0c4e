"""``python -m opsjobs`` is the ``opsjobs`` command."""

import sys

from .cli import main

sys.exit(main())
