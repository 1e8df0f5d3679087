{{/* Names, labels and the pieces every clawdbot pod shares. */}}

{{- define "clawdbot.fullname" -}}
{{- printf "%s" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "clawdbot.labels" -}}
app.kubernetes.io/name: clawdbot
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "clawdbot.selector" -}}
app.kubernetes.io/name: clawdbot
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "clawdbot.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod-level hardening: never root. */}}
{{- define "clawdbot.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{- define "clawdbot.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: { drop: ["ALL"] }
{{- end -}}

{{/* The config directory and the secrets its ${VAR} references read. */}}
{{- define "clawdbot.env" -}}
env:
  - name: CLAWDBOT_CONFIG
    value: /etc/clawdbot
  - name: POSTGRES_DSN
    valueFrom:
      secretKeyRef: { name: {{ .Values.postgres.dsnSecret.name }}, key: {{ .Values.postgres.dsnSecret.key }} }
  {{- with .Values.masterKey }}{{ if .secretName }}
  - name: CLAWDBOT_MASTER_KEY
    valueFrom:
      secretKeyRef: { name: {{ .secretName }}, key: {{ .currentKey }} }
  - name: CLAWDBOT_MASTER_KEYS_PREVIOUS
    valueFrom:
      secretKeyRef: { name: {{ .secretName }}, key: {{ .previousKey }}, optional: true }
  {{- end }}{{ end }}
  {{- range .Values.secretEnv }}
  - name: {{ .name }}
    valueFrom:
      secretKeyRef: { name: {{ .secretName }}, key: {{ .key }} }
  {{- end }}
{{- end -}}

{{- define "clawdbot.configVolume" -}}
volumes:
  - name: config
    configMap:
      name: {{ include "clawdbot.fullname" . }}-config
{{- end -}}

{{- define "clawdbot.configMount" -}}
volumeMounts:
  - name: config
    mountPath: /etc/clawdbot
    readOnly: true
{{- end -}}

{{/* Liveness on the metrics endpoint every role serves. */}}
{{- define "clawdbot.metricsLiveness" -}}
livenessProbe:
  httpGet: { path: /metrics, port: metrics }
  periodSeconds: 10
  failureThreshold: 3
{{- end -}}
