"""The monitoring stack around aerostat, as code: Prometheus's configuration,
recording and alerting rules with their promtool tests, an example
Alertmanager configuration, and Grafana's provisioning and dashboards.

The core never imports this package; ``aerostat stack render`` (cli.py),
``aerostat up``, docker-compose and the Helm chart use the same files::

    files = render_stack(StackOptions(deployments=("prod",)))
    write_stack("out", files)
    for origin, expr in all_queries(files): ...
"""

from aerostat.stack.options import StackOptions
from aerostat.stack.queries import Query, all_queries
from aerostat.stack.render import render_stack, write_stack

__all__ = ["Query", "StackOptions", "all_queries", "render_stack", "write_stack"]
