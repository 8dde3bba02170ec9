"""The triggerer: triggers running, failing, blocking."""

from __future__ import annotations

from aerostat.stack.dashboards.common import (
    DEPLOYMENT,
    PER_SECOND,
    RATIO,
    TRIGGERER,
    _alive_stat,
    _heartbeats,
    _processes,
)
from aerostat.stack.grafana import (
    DashboardSpec,
    Row,
    Target,
    increase,
    rate,
    select,
    timeseries_panel,
)


def triggerer() -> DashboardSpec:
    return DashboardSpec(
        "aerostat-airflow-triggerer", "Airflow / Triggerer",
        "Triggerer processes, their capacity, and the triggers they run for deferred tasks.",
        [
            Row("Liveness", [_alive_stat(TRIGGERER, width=6), _processes(TRIGGERER),
                             _heartbeats(TRIGGERER)]),
            Row("Capacity", [
                timeseries_panel(
                    "Triggers running per triggerer",
                    "Triggers each triggerer runs now. Uneven for long: triggers are only "
                    "assigned when a triggerer starts or has capacity; a restart rebalances.",
                    [Target(f"sum by (deployment, hostname) "
                           f"({select('airflow_triggers_running')})",
                           "{{deployment}} {{hostname}}")],
                    width=8,
                ),
                timeseries_panel(
                    "Capacity left per triggerer",
                    "Triggers each triggerer could still take. All at zero for 10 minutes "
                    "raises AirflowTriggererFull: add triggerers or raise [triggerer] "
                    "capacity.",
                    [Target(f"sum by (deployment, hostname) "
                           f"({select('airflow_triggerer_capacity_left')})",
                           "{{deployment}} {{hostname}}")],
                    width=8,
                ),
                timeseries_panel(
                    "Capacity used",
                    "Running triggers as a share of all triggerers' capacity. Near 100 %: "
                    "deferred tasks will soon wait for a triggerer.",
                    [Target(f"sum by (deployment) ({select('airflow_triggers_running')})\n/ "
                           f"(sum by (deployment) ({select('airflow_triggers_running')})"
                           f" + sum by (deployment) ({select('airflow_triggerer_capacity_left')})"
                           " > 0)", DEPLOYMENT)],
                    unit=RATIO, width=8,
                ),
            ]),
            Row("Triggers", [
                timeseries_panel(
                    "Triggers finished",
                    "Triggers that fired (succeeded) and failed, a second. Failures: the "
                    "deferred tasks fail with them; the triggerer log has the exception.",
                    [Target(f"sum by (deployment) ({rate('airflow_triggers_succeeded_total')})",
                           "{{deployment}} succeeded"),
                     Target(f"sum by (deployment) ({rate('airflow_triggers_failed_total')})",
                           "{{deployment}} failed")],
                    unit=PER_SECOND, width=8,
                ),
                timeseries_panel(
                    "Main thread blocked (past hour)",
                    "Times a trigger blocked the triggerer's event loop in the past hour. Not "
                    "zero: a trigger does blocking work (sleep, synchronous I/O) and delays "
                    "every other trigger on that triggerer; fix the trigger's code.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_triggers_blocked_main_thread_total')})",
                           DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "Deferred task instances",
                    "Task instances waiting in the deferred state, and the pool slots they "
                    "hold. Growing while triggers run and succeed: more tasks defer than "
                    "finish, expected for long sensors.",
                    [Target(f"sum by (deployment) ({select('airflow_ti_deferred')})",
                           "{{deployment}} deferred tasks"),
                     Target(f"sum by (deployment) ({select('airflow_pool_deferred_slots')})",
                           "{{deployment}} deferred pool slots")],
                    width=8,
                ),
            ]),
        ],
    )
