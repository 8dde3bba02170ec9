{{/*
Names and labels. The platform chart's Prometheus finds every aerostat in the
cluster by two labels on its Service, so both are fixed here and are not
overridable: app.kubernetes.io/name=aerostat, and aerostat/airflow-deployment
carrying the Airflow deployment's name.
*/}}

{{/* The Service and everything else: the release name, with "-aerostat"
unless the release name already says so. 63 characters: a DNS label. */}}
{{- define "aerostat.fullname" -}}
{{- if contains "aerostat" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-aerostat" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aerostat.deployment" -}}
{{- default .Release.Name .Values.deployment -}}
{{- end -}}

{{- define "aerostat.selectorLabels" -}}
app.kubernetes.io/name: aerostat
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aerostat.labels" -}}
{{ include "aerostat.selectorLabels" . }}
aerostat/airflow-deployment: {{ include "aerostat.deployment" . | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The user's mapping as file text: a string as written, a map as YAML. */}}
{{- define "aerostat.mappingText" -}}
{{- if kindIs "string" .Values.mapping -}}
{{- .Values.mapping -}}
{{- else -}}
{{- toYaml .Values.mapping -}}
{{- end -}}
{{- end -}}
