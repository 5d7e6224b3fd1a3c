{{/* The release's full name, cut to the 63 characters a DNS label allows. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (meta or agent): never change them in an upgrade, selectors are immutable. */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sluice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "sluice.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.metaHeadless" -}}
{{ include "sluice.fullname" . }}-meta-headless
{{- end -}}

{{- define "sluice.metaReplicas" -}}
{{- if eq .Values.meta.store "embedded" -}}1{{- else -}}{{ .Values.meta.replicas }}{{- end -}}
{{- end -}}

{{/*
Every meta replica by its stable name (the headless Service publishes
standbys too): the agent tries them in turn and stays on the one that
leads. A ClusterIP Service would pin the agent's gRPC connection to one
pod, which may be a standby after a takeover.
*/}}
{{- define "sluice.metaAddrs" -}}
{{- $full := include "sluice.fullname" . -}}
{{- $headless := include "sluice.metaHeadless" . -}}
{{- $addrs := list -}}
{{- range $i := until (int (include "sluice.metaReplicas" .)) -}}
{{- $addrs = append $addrs (printf "%s-meta-%d.%s.%s.svc:9093" $full $i $headless $.Release.Namespace) -}}
{{- end -}}
{{- join "," $addrs -}}
{{- end -}}

{{/* The chart's value checks: each error names the value to set. */}}
{{- define "sluice.validate" -}}
{{- if not .Values.bucket -}}
{{- fail "bucket is required: --set bucket=s3://BUCKET/PREFIX?region=REGION (credentials come from the ServiceAccount's cloud identity, serviceAccount.annotations)" -}}
{{- end -}}
{{- if not (has .Values.meta.store (list "embedded" "postgres")) -}}
{{- fail (printf "meta.store: %q is neither embedded nor postgres" .Values.meta.store) -}}
{{- end -}}
{{- if and (eq .Values.meta.store "postgres") (not .Values.meta.postgres.existingSecret) -}}
{{- fail "meta.store postgres needs meta.postgres.existingSecret: a Secret holding the postgres:// URL under meta.postgres.secretKey" -}}
{{- end -}}
{{- if and (eq .Values.meta.store "postgres") (lt (int .Values.meta.replicas) 2) -}}
{{- fail "meta.replicas: run at least 2 with meta.store postgres (one leads, one stands by)" -}}
{{- end -}}
{{- if not .Values.agent.key.existingSecret -}}
{{- fail "agent.key.existingSecret is required: the Secret holding the agent key (sluice meta keys create)" -}}
{{- end -}}
{{- end -}}
