"""The Grafana dashboards, one module and one function each. Every panel says what it shows
and what to do when it looks wrong; every query keeps to the deployments
chosen in the ``deployment`` variable (aerostat's own metrics, which carry
no deployment, are the one exception).

The math follows what the metrics are: counters only through rate() or
increase(), histograms through histogram_quantile() over buckets summed per
``le``, gauges that aerostat already combined over processes as they are.
"""

from aerostat.stack.dashboards.dag_processing import dag_processing
from aerostat.stack.dashboards.dags_and_tasks import dags_and_tasks
from aerostat.stack.dashboards.overview import overview
from aerostat.stack.dashboards.pools_and_executor import pools_and_executor
from aerostat.stack.dashboards.scheduler import scheduler
from aerostat.stack.dashboards.triggerer import triggerer

DASHBOARDS = {
    "airflow-overview": overview,
    "airflow-scheduler": scheduler,
    "airflow-pools-executor": pools_and_executor,
    "airflow-dag-processing": dag_processing,
    "airflow-dags-tasks": dags_and_tasks,
    "airflow-triggerer": triggerer,
}
