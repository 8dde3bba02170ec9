"""What the platform Prometheus makes of rendered Services, without a cluster.

``endpointslice_targets`` builds the targets Prometheus's Kubernetes
discovery (role: endpointslice) would announce for a Service and the pods it
selects, with the ``__meta_kubernetes_*`` labels Prometheus documents;
``relabel`` applies a scrape job's relabel_configs to them the way
Prometheus does for the actions the chart uses (keep, drop, replace)."""

from __future__ import annotations

import re
from typing import Any

Labels = dict[str, str]


def meta_name(label: str) -> str:
    """Prometheus's sanitising of a Kubernetes label into a label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def endpointslice_targets(
    service: dict[str, Any], pod_labels: dict[str, str], pod_name: str, pod_ip: str
) -> list[Labels]:
    """One target per port of the Service, for one ready pod behind it."""
    metadata = service["metadata"]
    common: Labels = {
        "__meta_kubernetes_namespace": metadata["namespace"],
        "__meta_kubernetes_service_name": metadata["name"],
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_ip": pod_ip,
    }
    for key, value in metadata.get("labels", {}).items():
        common[f"__meta_kubernetes_service_label_{meta_name(key)}"] = str(value)
        common[f"__meta_kubernetes_service_labelpresent_{meta_name(key)}"] = "true"
    for key, value in pod_labels.items():
        common[f"__meta_kubernetes_pod_label_{meta_name(key)}"] = str(value)
    return [
        {
            **common,
            "__address__": f"{pod_ip}:{port['port']}",
            "__meta_kubernetes_endpointslice_port_name": port.get("name", ""),
            "__meta_kubernetes_endpointslice_port_protocol": port.get("protocol", "TCP"),
            "__meta_kubernetes_endpointslice_port": str(port["port"]),
        }
        for port in service["spec"]["ports"]
    ]


def _expand(replacement: str, match: re.Match[str]) -> str:
    # Go's Regexp.Expand for the forms relabel configs use: $1 and ${1}
    return re.sub(
        r"\$\{(\d+)\}|\$(\d+)",
        lambda ref: match.group(int(ref.group(1) or ref.group(2))) or "",
        replacement,
    )


def relabel(target: Labels, configs: list[dict[str, Any]]) -> Labels | None:
    """The target's labels after the relabel_configs, or None when dropped."""
    labels = dict(target)
    for config in configs:
        action = config.get("action", "replace")
        joined = config.get("separator", ";").join(
            labels.get(name, "") for name in config.get("source_labels", [])
        )
        # Prometheus anchors every relabel regex at both ends
        match = re.fullmatch(config.get("regex", "(.*)"), joined)
        if (action == "keep" and match is None) or (action == "drop" and match is not None):
            return None
        if action == "replace":
            if match is None:
                continue
            value = _expand(config.get("replacement", "$1"), match)
            if value:
                labels[config["target_label"]] = value
            else:
                labels.pop(config["target_label"], None)
        elif action not in ("keep", "drop"):
            raise NotImplementedError(f"relabel action {action!r}")
    return labels


def scraped_labels(target: Labels, job: str) -> Labels:
    """The labels every series of a relabelled target gets."""
    labels = {name: value for name, value in target.items() if not name.startswith("__")}
    labels.setdefault("job", job)
    labels.setdefault("instance", target["__address__"])
    return labels
