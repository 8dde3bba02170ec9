"""aerostat: a StatsD to Prometheus bridge that understands Apache Airflow.

The public surface is the command line (``aerostat serve``, ``map``, ``replay``,
``check-config``); the packages below it follow the data: wire, parse, mapper,
store, expose.
"""

__version__ = "0.1.0"
