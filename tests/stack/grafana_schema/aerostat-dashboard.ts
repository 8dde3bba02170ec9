// The type aerostat's dashboards must satisfy: Grafana's own Dashboard type
// from @grafana/schema, narrowed so that each panel's options and field
// config are checked against its panel plugin's published schema too (the
// plain Dashboard type lets a panel's options be any record).
// tests/stack/test_grafana_schema.py writes one generated/<dashboard>.ts per
// rendered dashboard that checks it with `satisfies AerostatDashboard`.
//
// The schema types string settings as TypeScript enums, to which no JSON
// string is assignable: Json<T> turns each string enum into the union of
// its values ("absolute" | "percentage"), which is what the JSON holds.
// Numeric enums accept their numbers as they are.

import type {
  Dashboard,
  DataQuery,
  FieldConfig,
  FieldConfigSource,
  Panel,
  RowPanel,
  TableFieldOptions,
  TableOptions,
} from "@grafana/schema";
import type * as Stat from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";
import type * as TimeSeries from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";

// @grafana/schema publishes no query type for Prometheus (it lives with the
// data source plugin): these are the fields of its query model aerostat sets.
export interface PrometheusQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  format?: "time_series" | "table" | "heatmap";
}

type PluginPanel<Type extends string, Options, Custom> = Omit<
  Panel,
  "type" | "options" | "fieldConfig" | "targets"
> & {
  type: Type;
  options: Options;
  fieldConfig: Omit<FieldConfigSource, "defaults"> & {
    defaults: Omit<FieldConfig, "custom"> & { custom?: Custom };
  };
  targets: PrometheusQuery[];
};

export type AerostatPanel =
  | PluginPanel<"timeseries", TimeSeries.Options, TimeSeries.FieldConfig>
  // the stat panel declares no custom field config
  | PluginPanel<"stat", Stat.Options, Record<string, never>>
  | PluginPanel<"table", TableOptions, TableFieldOptions>
  | (RowPanel & { type: "row" });

export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer Item>
      ? Array<Json<Item>>
      : T extends object
        ? { [Key in keyof T]: Json<T[Key]> }
        : T;

export type AerostatDashboard = Json<
  Omit<Dashboard, "panels"> & {
    uid: string;
    title: string;
    description: string;
    panels: AerostatPanel[];
  }
>;

export type GrafanaDashboard = Json<Dashboard>;
