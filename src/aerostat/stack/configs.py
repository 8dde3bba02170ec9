"""The configuration files around the rules and dashboards: Prometheus's,
an example Alertmanager's, and Grafana's provisioning of the data source
and the dashboards."""

from __future__ import annotations

from aerostat.stack.options import StackOptions
from aerostat.stack.rules import COMPONENTS
from aerostat.stack.yamltext import dump_yaml

DATASOURCE_UID = "aerostat-prometheus"
DATASOURCE_NAME = "Prometheus (aerostat)"
# the rules select aerostat's own metrics by this job
JOB = "aerostat"

_RENDERED = "Rendered by `aerostat stack render`: change its options rather than this file."


def prometheus_config(options: StackOptions) -> str:
    config: dict[str, object] = {
        "global": {
            "scrape_interval": options.scrape_interval,
            "evaluation_interval": options.scrape_interval,
        },
        # relative to this file's directory
        "rule_files": ["rules/*.yml"],
        "scrape_configs": [{
            "job_name": JOB,
            "static_configs": [{"targets": list(options.aerostat_targets)}],
        }],
    }
    alerting = {"alerting": {"alertmanagers": [{"static_configs": [
        {"targets": [options.alertmanager or "127.0.0.1:9093"]}]}]}}
    text = dump_yaml(config, header=(
        f"Prometheus for aerostat. {_RENDERED}\n"
        "The rules' unit tests: promtool test rules tests/*.test.yml"
    ))
    if options.alertmanager:
        return text + dump_yaml(alerting)
    commented = "".join(f"# {line}\n" for line in dump_yaml(alerting).splitlines())
    return (text + "\n# To send alerts, run an Alertmanager (an example configuration is in "
            "../alertmanager/) and\n# render with --alertmanager HOST:PORT, which adds:\n"
            + commented)


def alertmanager_example() -> str:
    down_alerts = "|".join(f"{component.alert}Down" for component in COMPONENTS)
    config = {
        "route": {
            "receiver": "airflow-team",
            # one notification per problem and deployment, not per process
            "group_by": ["alertname", "deployment"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [{"matchers": ['severity="critical"'], "receiver": "airflow-team",
                        "repeat_interval": "1h"}],
        },
        "receivers": [{
            "name": "airflow-team",
            "webhook_configs": [{"url": "http://127.0.0.1:5001/alerts"}],
        }],
        "inhibit_rules": [
            {
                # without aerostat every Airflow alert is a consequence
                "source_matchers": ['alertname="AerostatDown"'],
                "target_matchers": ['alertname=~"Airflow.+"'],
            },
            {
                # a silent deployment explains its components' silence
                "source_matchers": ['alertname="AirflowDeploymentSilent"'],
                "target_matchers": [f'alertname=~"{down_alerts}|Airflow.+ProcessDown"'],
                "equal": ["deployment"],
            },
            *(
                {
                    "source_matchers": [f'alertname="{component.alert}Down"'],
                    "target_matchers": [f'alertname="{component.alert}ProcessDown"'],
                    "equal": ["deployment"],
                }
                for component in COMPONENTS
            ),
        ],
    }
    return dump_yaml(config, header=(
        "An example Alertmanager configuration for aerostat's alerts: replace the\n"
        "receiver with your own (email, Slack, PagerDuty, ...). Alertmanager 0.22 or newer."
    ))


def grafana_datasource(options: StackOptions) -> str:
    config = {
        "apiVersion": 1,
        "datasources": [{
            "name": DATASOURCE_NAME,
            # the dashboards' datasource variable defaults to this uid
            "uid": DATASOURCE_UID,
            "type": "prometheus",
            "access": "proxy",
            "url": options.prometheus_url,
            # a second default would make Grafana refuse the file
            "isDefault": False,
            "editable": False,
            # Grafana derives $__rate_interval from the scrape interval
            "jsonData": {"timeInterval": options.scrape_interval},
        }],
    }
    return dump_yaml(config, header=f"Grafana data source for aerostat. {_RENDERED}")


def grafana_dashboard_provider(options: StackOptions) -> str:
    config = {
        "apiVersion": 1,
        "providers": [{
            "name": "aerostat",
            "folder": "Airflow",
            "folderUid": "aerostat-airflow",
            "type": "file",
            "disableDeletion": False,
            # the files are the source: edits in the UI would be lost on the next render
            "allowUiUpdates": False,
            "updateIntervalSeconds": 60,
            "options": {"path": options.grafana_dashboards_dir},
        }],
    }
    return dump_yaml(config, header=(
        f"Grafana dashboards of aerostat. {_RENDERED}\n"
        "options.path is where Grafana sees the grafana/dashboards directory\n"
        "(--grafana-dashboards-dir)."
    ))
