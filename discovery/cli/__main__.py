"""``python -m sld.discovery.cli``: the same as the ``sld`` command."""

import sys

from sld.discovery.cli.app import main

sys.exit(main())
