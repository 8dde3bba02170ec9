{{/*
Names and labels of the platform's parts: <release>-prometheus,
<release>-grafana, <release>-alertmanager. Their app.kubernetes.io/name is
the part's own name, never "aerostat": that label is how Prometheus finds
the aerostats to scrape (see prometheus.yml in prometheus-config.yaml).
*/}}

{{- define "platform.name" -}}
{{- $root := index . 0 -}}
{{- $part := index . 1 -}}
{{- printf "%s-%s" $root.Release.Name $part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.selectorLabels" -}}
{{- $root := index . 0 -}}
{{- $part := index . 1 -}}
app.kubernetes.io/name: {{ $part }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- end -}}

{{- define "platform.labels" -}}
{{- $root := index . 0 -}}
{{ include "platform.selectorLabels" . }}
app.kubernetes.io/part-of: aerostat-platform
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* In-cluster base URL of a part's Service. */}}
{{- define "platform.url" -}}
{{- $root := index . 0 -}}
{{- $part := index . 1 -}}
{{- $port := index . 2 -}}
{{- printf "http://%s.%s.svc:%v" (include "platform.name" (list $root $part)) $root.Release.Namespace $port -}}
{{- end -}}

{{/* The ConfigMap of one dashboard file: a DNS name from the file name. */}}
{{- define "platform.dashboardConfigMap" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
{{- $stem := base $path | trimSuffix ".json" | lower | replace "_" "-" | replace "." "-" -}}
{{- printf "%s-dashboard-%s" $root.Release.Name $stem | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.storageClassName" -}}
{{- if eq . "-" -}}
storageClassName: ""
{{- else if . -}}
storageClassName: {{ . | quote }}
{{- end -}}
{{- end -}}

{{/* The Secrets mounted into Prometheus at /etc/prometheus/secrets/<name>/:
prometheus.secrets, and those aerostatScrape names; each once. */}}
{{- define "platform.prometheusSecrets" -}}
{{- $names := .Values.prometheus.secrets | default list -}}
{{- with .Values.aerostatScrape -}}
{{- if and .tls.enabled .tls.caSecret -}}
{{- $names = append $names .tls.caSecret -}}
{{- end -}}
{{- if .basicAuth.enabled -}}
{{- $names = append $names .basicAuth.passwordSecret -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $names) -}}
{{- end -}}
