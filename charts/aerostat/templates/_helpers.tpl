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

{{/* TLS, basic auth or headers asked for: aerostat gets a --web.config.file. */}}
{{- define "aerostat.web.enabled" -}}
{{- with .Values.web -}}
{{- if or .tls.enabled .basicAuth.enabled .headers -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* The web configuration file as the chart renders it (a ConfigMap): TLS
and headers. With basic auth, an init container adds basic_auth_users with
the bcrypt hash of the Secret's password (aerostat.web.hashScript). */}}
{{- define "aerostat.web.config" -}}
# exporter-toolkit's web configuration, rendered by chart aerostat
{{- with .Values.web }}
{{- if .tls.enabled }}
tls_server_config:
  cert_file: /run/secrets/aerostat-tls/tls.crt
  key_file: /run/secrets/aerostat-tls/tls.key
  min_version: {{ .tls.minVersion | default "TLS12" }}
{{- end }}
{{- with .headers }}
http_server_config:
  headers:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Where aerostat reads its web configuration: the init container's output
with basic auth, else the ConfigMap. */}}
{{- define "aerostat.web.path" -}}
{{- if .Values.web.basicAuth.enabled -}}
/run/aerostat-web/web.yml
{{- else -}}
/etc/aerostat-web/web.yml
{{- end -}}
{{- end -}}

{{/* python -c: USER BASE PASSWORD_FILE OUT. The rendered file plus
basic_auth_users with a bcrypt hash (cost 10) of the mounted password, made
in the pod so that the chart never sees the password. Surrounding blanks are
dropped from the password, as Prometheus's password_file drops them. */}}
{{- define "aerostat.web.hashScript" -}}
import json, sys, bcrypt
user, base, password_file, out = sys.argv[1:]
with open(password_file, encoding="utf-8") as file:
    password = file.read().strip()
if not password:
    sys.exit(f"{password_file}: the basic-auth password is empty")
hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()
with open(base, encoding="utf-8") as file:
    text = file.read()
with open(out, "w", encoding="utf-8") as file:
    file.write(text + "\nbasic_auth_users:\n  " + json.dumps(user) + ": " + json.dumps(hashed) + "\n")
{{- end -}}

{{/* python -c: URL USER PASSWORD_FILE. A probe with the credentials (the
kubelet's httpGet cannot read a Secret); the certificate is not checked, as
the kubelet does not check it either. Exit 1 on anything but 2xx. */}}
{{- define "aerostat.web.probeScript" -}}
import base64, ssl, sys, urllib.request
url, user, password_file = sys.argv[1:]
with open(password_file, encoding="utf-8") as file:
    password = file.read().strip()
token = base64.b64encode(f"{user}:{password}".encode()).decode()
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=context))
opener.open(urllib.request.Request(url, headers={"Authorization": "Basic " + token}), timeout=4)
{{- end -}}
