"""The ``sld`` command line: ``main`` (in ``app.py``), one module per subcommand in
``commands/``, and ``output.py``, the one place that prints tables and JSON."""

from sld.discovery.cli.app import main

__all__ = ["main"]
