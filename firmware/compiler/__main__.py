"""``python -m firmware.compiler``: see :mod:`firmware.compiler.cli`."""

import sys

from .cli import main

sys.exit(main())
