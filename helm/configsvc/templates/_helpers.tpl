{{/*
Chart name, truncated to 63 characters (DNS-1123 label limit).
*/}}
{{- define "configsvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. If the release name already contains the chart name
it is used as is.
*/}}
{{- define "configsvc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "configsvc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "configsvc.labels" -}}
helm.sh/chart: {{ include "configsvc.chart" . }}
{{ include "configsvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: configsvc
{{- end }}

{{/*
Selector labels (immutable on a Deployment: keep them minimal).
*/}}
{{- define "configsvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "configsvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount to use.
*/}}
{{- define "configsvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "configsvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference.
*/}}
{{- define "configsvc.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
CONFIGSVC_ETCD_ENDPOINTS: the endpoint list joined with ",". Fails on an empty list.
*/}}
{{- define "configsvc.etcdEndpoints" -}}
{{- if not .Values.etcd.endpoints }}
{{- fail "etcd.endpoints must list at least one host:port" }}
{{- end }}
{{- join "," .Values.etcd.endpoints }}
{{- end }}

{{/*
Checks on values that the templates rely on.
*/}}
{{- define "configsvc.validate" -}}
{{- $tls := .Values.etcd.tls }}
{{- if and $tls.enabled (not $tls.ca.secretName) (not $tls.client.secretName) }}
{{- fail "etcd.tls.enabled is true: set etcd.tls.ca.secretName and/or etcd.tls.client.secretName" }}
{{- end }}
{{- $shutdown := addf (float64 .Values.config.gracePeriod) (float64 .Values.preStopSleepSeconds) }}
{{- if ge $shutdown (float64 .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "config.gracePeriod + preStopSleepSeconds (%v) must be below terminationGracePeriodSeconds (%v)" $shutdown .Values.terminationGracePeriodSeconds) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget: set maxUnavailable or minAvailable" }}
{{- end }}
{{- end }}

{{/*
One container probe. Args: dict with name, probe (values.probes.<name>), port.
*/}}
{{- define "configsvc.probe" -}}
{{- $p := .probe }}
{{- if eq $p.kind "grpc" }}
grpc:
  port: {{ .port }}
  service: {{ $p.service | default "" | quote }}
{{- else if eq $p.kind "tcpSocket" }}
tcpSocket:
  port: grpc
{{- else }}
{{- fail (printf "probes.%s.kind must be grpc or tcpSocket, not %q" .name $p.kind) }}
{{- end }}
periodSeconds: {{ $p.periodSeconds }}
timeoutSeconds: {{ $p.timeoutSeconds }}
failureThreshold: {{ $p.failureThreshold }}
{{- end }}
