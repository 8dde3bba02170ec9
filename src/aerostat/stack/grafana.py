"""Building blocks for the dashboards, on Grafana's own SDK
(grafana-foundation-sdk): the variables every dashboard shares, PromQL
helpers that always filter by the deployment variable, panels with the
defaults aerostat wants, and the layout into rows."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

with warnings.catch_warnings():
    # the SDK warns on import that schema v1 dashboards are deprecated: v1 is
    # what Grafana provisions from files on every release (v2 needs Grafana
    # 12's new dashboard API) and what @grafana/schema's Dashboard describes
    warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as dashboard_builders
    from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog import variants as cogvariants
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as model
    from grafana_foundation_sdk.models import prometheus as prometheus_model
    from grafana_foundation_sdk.models import table as table_model

from aerostat.stack.configs import DATASOURCE_NAME, DATASOURCE_UID
from aerostat.stack.options import StackOptions

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
IN_DEPLOYMENT = 'deployment=~"$deployment"'
TAG = "aerostat"


def select(metric: str, *matchers: str) -> str:
    """A selector that keeps to the chosen deployments."""
    return f"{metric}{{{', '.join((IN_DEPLOYMENT, *matchers))}}}"


def rate(metric: str, *matchers: str, window: str = "$__rate_interval") -> str:
    return f"rate({select(metric, *matchers)}[{window}])"


def increase(metric: str, *matchers: str, window: str = "1h") -> str:
    return f"increase({select(metric, *matchers)}[{window}])"


def quantile(q: float, histogram: str, by: str, *matchers: str) -> str:
    """The q-quantile of a histogram per ``by``: buckets are summed first,
    quantiles never are (a sum of quantiles is no quantile of anything)."""
    return (f"histogram_quantile({q}, sum by (le, {by}) "
            f"({rate(histogram + '_bucket', *matchers)}))")


@dataclass(frozen=True)
class Target:
    """One query of a panel; ``legend`` names its series (Grafana's
    ``{{label}}`` templates)."""

    expr: str
    legend: str = ""


def _targets(queries: Sequence[Target], *,
             instant: bool = False) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for index, query in enumerate(queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index))
        if query.legend:
            target = target.legend_format(query.legend)
        if instant:
            target = target.instant().format(prometheus_model.PromQueryFormat.TABLE)
        else:
            target = target.range()
        targets.append(target)
    return targets


def _steps(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (dashboard_builders.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=value, color=color) for value, color in steps]))


def at_least_one() -> dashboard_builders.ThresholdsConfig:
    """Red at zero: for counts of live processes."""
    return _steps((None, "red"), (1, "green"))


def above(warn: float, bad: float) -> dashboard_builders.ThresholdsConfig:
    return _steps((None, "green"), (warn, "orange"), (bad, "red"))


def bad_from(value: float) -> dashboard_builders.ThresholdsConfig:
    return _steps((None, "green"), (value, "red"))


def timeseries_panel(
    title: str, description: str, queries: Sequence[Target], *, unit: str = "short",
    width: int = 12, height: int = 8, stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
        .targets(_targets(queries)).unit(unit).min(0).span(width).height(height)
        .line_width(1).fill_opacity(10).span_nulls(False)
        .legend(common_builders.VizLegendOptions().show_legend(True)
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM))
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.DESCENDING))
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig()
                               .mode(common.StackingMode.NORMAL)).fill_opacity(40)
    return panel


def stat_panel(
    title: str, description: str, queries: Sequence[Target], *, unit: str = "short",
    thresholds: dashboard_builders.ThresholdsConfig | None = None, width: int = 4,
    height: int = 5,
    mappings: Sequence[model.ValueMap] = (),
) -> stat.Panel:
    panel = (
        stat.Panel().title(title).description(description).datasource(DATASOURCE)
        .targets(_targets(queries)).unit(unit).span(width).height(height)
        .thresholds(thresholds or _steps((None, "green")))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(common.BigValueColorMode.VALUE).graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
    )
    if mappings:
        panel = panel.mappings(list(mappings))
    return panel


def table_panel(
    title: str, description: str, columns: Sequence[tuple[str, Target]], *,
    unit: str = "short", width: int = 24, height: int = 8, sort_by: str = "",
) -> table.Panel:
    """One instant query per column, joined on their labels; ``columns``
    pairs each column's header with its query."""
    queries = [query for _, query in columns]
    renames = {
        (f"Value #{chr(ord('A') + index)}" if len(columns) > 1 else "Value"): header
        for index, (header, _) in enumerate(columns)
    }
    panel = (
        table.Panel().title(title).description(description).datasource(DATASOURCE)
        .targets(_targets(queries, instant=True)).unit(unit).span(width).height(height)
        .cell_options(common.TableAutoCellOptions())
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(model.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {"Time": True}, "renameByName": renames,
        }))
    )
    if sort_by:
        panel = panel.sort_by([common_builders.TableSortByFieldState()
                               .display_name(sort_by).desc(True)])
    return panel


def up_down_mapping() -> model.ValueMap:
    return model.ValueMap(options={
        "0": model.ValueMappingResult(text="down", color="red", index=0),
        "1": model.ValueMappingResult(text="up", color="green", index=1),
    })


Panel = timeseries.Panel | stat.Panel | table.Panel


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True)
class Variable:
    """A drill-down variable: ``label`` values of ``metric`` within the
    deployments chosen (and the variables before it)."""

    name: str
    label: str
    metric: str
    matchers: tuple[str, ...] = ()


def _query_variable(name: str, label: str, query: str,
                    current: model.VariableOption) -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable(name).label(label).datasource(DATASOURCE)
        .query(query).multi(True).include_all(True)
        # `.*` rather than the list of values: series without the label match
        # too (one deployment whose StatsD prefix names none), and the query
        # stays short with hundreds of DAGs
        .all_value(".*")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .current(current)
    )


ALL = model.VariableOption(selected=True, text=["All"], value=["$__all"])


def _variables(options: StackOptions,
               drill_down: Sequence[Variable]) -> list[dashboard_builders.QueryVariable
                                                       | dashboard_builders.DatasourceVariable]:
    deployments = list(options.deployments)
    first_shown = (model.VariableOption(selected=True, text=deployments, value=deployments)
                   if deployments else ALL)
    variables: list[dashboard_builders.QueryVariable | dashboard_builders.DatasourceVariable] = [
        dashboard_builders.DatasourceVariable("datasource").label("Data source")
        .type("prometheus")
        .current(model.VariableOption(selected=True, text=DATASOURCE_NAME, value=DATASOURCE_UID)),
        _query_variable("deployment", "Deployment",
                        "label_values(airflow_scheduler_heartbeat_total, deployment)",
                        first_shown),
    ]
    for variable in drill_down:
        query = f"label_values({select(variable.metric, *variable.matchers)}, {variable.name})"
        variables.append(_query_variable(variable.name, variable.label, query, ALL))
    return variables


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: Sequence[Row]
    drill_down: Sequence[Variable] = ()


def render_dashboard(spec: DashboardSpec, options: StackOptions) -> str:
    """The dashboard as Grafana's JSON model, panels numbered in order."""
    builder = (
        dashboard_builders.Dashboard(spec.title).uid(spec.uid).description(spec.description)
        .tags(["airflow", TAG]).editable().time("now-6h", "now").refresh("1m")
        .timezone("browser").tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(dashboard_builders.DashboardLink("Airflow dashboards")
              .type(model.DashboardLinkType.DASHBOARDS).tags([TAG]).as_dropdown(True)
              .include_vars(True).keep_time(True))
        .variables(list(_variables(options, spec.drill_down)))
    )
    for row in spec.rows:
        builder = builder.with_row(dashboard_builders.Row(row.title))
        for panel in row.panels:
            builder = builder.with_panel(panel)
    built = builder.build()
    for number, built_panel in enumerate(built.panels or [], start=1):
        built_panel.id_val = number
        if (isinstance(built_panel, model.Panel)
                and isinstance(built_panel.options, table_model.Options)):
            # the SDK still writes the table-wide footer that Grafana 12 moved
            # into each field's config; Grafana's schema no longer has it
            built_panel.options.footer = None
    for variable in built.templating.list_val or []:
        if variable.type_val != model.VariableType.INTERVAL:
            # the SDK gives every variable an interval variable's defaults
            # (auto, auto_min, auto_count); Grafana's schema has them nowhere
            variable.auto = variable.auto_min = variable.auto_count = None
    return JSONEncoder(sort_keys=True, indent=2).encode(built) + "\n"
