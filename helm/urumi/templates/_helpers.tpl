{{/* The release's name prefix, at most 63 characters. */}}
{{- define "urumi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; call with (list $ "component"). */}}
{{- define "urumi.labels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
{{ include "urumi.selectorLabels" . }}
{{- end -}}

{{/* The labels pods are selected by; call with (list $ "component"). */}}
{{- define "urumi.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ $.Chart.Name }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "urumi.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Restricted Pod Security, pod level: the image's user 10001, never root. */}}
{{- define "urumi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Restricted Pod Security, container level: the processes write nothing to disk. */}}
{{- define "urumi.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The environment every process shares: the database URL from the Secret, logging, traces. */}}
{{- define "urumi.commonEnv" -}}
- name: URUMI__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret names the Secret holding the Postgres URL" .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
- name: URUMI__LOG__FORMAT
  value: {{ .Values.log.format | quote }}
- name: URUMI__LOG__FILTER
  value: {{ .Values.log.filter | quote }}
{{- with .Values.traces }}
{{- if .enabled }}
- name: URUMI__TRACES__ENABLED
  value: "true"
- name: URUMI__TRACES__ENDPOINT
  value: {{ required "traces.endpoint is the collector's OTLP/HTTP traces URL" .endpoint | quote }}
- name: URUMI__TRACES__SAMPLE_RATIO
  value: {{ .sampleRatio | quote }}
{{- with .filter }}
- name: URUMI__TRACES__FILTER
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The [stores] table both processes read (URUMI_CONFIG): only the keys that are set. */}}
{{- define "urumi.storesToml" -}}
{{- $v := .Values.stores -}}
{{- $s := dict "platform_namespace" ($v.platform_namespace | default .Release.Namespace) -}}
{{- range $k := list "base_domain" "ingress_class" "ingress_namespace" "storage_class" "tls_issuer" "default_plan" "default_channel" -}}
{{- if index $v $k }}{{ $_ := set $s $k (index $v $k | toString) }}{{ end -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.internet_egress) }}{{ $_ := set $s "internet_egress" $v.internet_egress }}{{ end -}}
{{- /* The suspended page's Service (templates/suspended.yaml); "" turns suspended pages off. */ -}}
{{- $_ := set $s "suspended_service" (ternary (printf "%s-suspended" (include "urumi.fullname" .)) "" (.Values.suspendedPage.enabled | default false)) -}}
{{- if $v.cluster_cidrs }}{{ $_ := set $s "cluster_cidrs" $v.cluster_cidrs }}{{ end -}}
{{- with $v.images -}}
{{- $images := dict -}}
{{- range $k := list "mariadb" "wordpress" "wp_cli" -}}
{{- $_ := set $images $k (required (printf "stores.images.%s: set all three images or none" $k) (index $v.images $k)) -}}
{{- end -}}
{{- if $v.images.curl }}{{ $_ := set $images "curl" $v.images.curl }}{{ end -}}
{{- $_ := set $s "images" $images -}}
{{- end -}}
{{- with $v.backups -}}
{{- $b := dict "storage" (.storage | default "pvc") -}}
{{- if eq $b.storage "s3" -}}
{{- $s3 := dict -}}
{{- range $k := list "endpoint" "bucket" -}}
{{- $_ := set $s3 $k (required (printf "stores.backups.s3.%s is required when stores.backups.storage is s3" $k) (index $v.backups.s3 $k)) -}}
{{- end -}}
{{- range $k := list "region" "prefix" -}}
{{- if index $v.backups.s3 $k }}{{ $_ := set $s3 $k (index $v.backups.s3 $k) }}{{ end -}}
{{- end -}}
{{- $_ := required "stores.backups.s3.credentialsSecret is required when stores.backups.storage is s3" $v.backups.s3.credentialsSecret -}}
{{- /* The keys come from the credentials Secret, through the worker's environment. */ -}}
{{- $_ := set $s3 "access_key_id" "" -}}
{{- $_ := set $s3 "secret_access_key" "" -}}
{{- $_ := set $b "s3" $s3 -}}
{{- else if ne $b.storage "pvc" -}}
{{- fail (printf "stores.backups.storage must be pvc or s3, not %q" $b.storage) -}}
{{- end -}}
{{- $_ := set $s "backups" $b -}}
{{- end -}}
{{- with $v.plans -}}
{{- $plans := dict -}}
{{- range $name, $plan := $v.plans -}}
{{- $p := dict -}}
{{- range $k := list "pods" "requests_cpu" "requests_memory" "limits_cpu" "limits_memory" "pvcs" "requests_storage" "db_storage" "wp_storage" -}}
{{- $_ := set $p $k (required (printf "stores.plans.%s.%s is required" $name $k) (index $plan $k) | toString) -}}
{{- end -}}
{{- with $plan.backups -}}
{{- $bp := dict -}}
{{- if .retention }}{{ $_ := set $bp "retention" (int .retention) }}{{ end -}}
{{- if .schedule }}{{ $_ := set $bp "schedule" .schedule }}{{ end -}}
{{- if .volume }}{{ $_ := set $bp "volume" (.volume | toString) }}{{ end -}}
{{- $_ := set $p "backups" $bp -}}
{{- end -}}
{{- $_ := set $plans $name $p -}}
{{- end -}}
{{- $_ := set $s "plans" $plans -}}
{{- end -}}
{{- with $v.channels -}}
{{- $channels := dict -}}
{{- range $name, $c := $v.channels -}}
{{- $ch := dict -}}
{{- range $k := list "version" "wordpress" "mariadb" "wp_cli" "woocommerce" -}}
{{- $_ := set $ch $k (required (printf "stores.channels.%s.%s is required" $name $k) (index $c $k) | toString) -}}
{{- end -}}
{{- $_ := set $channels $name $ch -}}
{{- end -}}
{{- $_ := set $s "channels" $channels -}}
{{- end -}}
{{- $defaultChannel := $v.default_channel | default "stable" -}}
{{- if not (has $defaultChannel (keys ($v.channels | default (dict "stable" true)))) -}}
{{- fail (printf "stores.default_channel %q is not one of the channels" $defaultChannel) -}}
{{- end -}}
{{- $default := $v.default_plan | default "starter" -}}
{{- if not (has $default (keys ($v.plans | default (dict "starter" true)))) -}}
{{- fail (printf "stores.default_plan %q is not one of the plans" $default) -}}
{{- end -}}
{{- toToml (dict "stores" $s) -}}
{{- end -}}

{{/* The database CA mount (database.caSecret), for sslrootcert=/etc/urumi-db-ca/ca.crt. */}}
{{- define "urumi.dbCaMount" -}}
{{- if .Values.database.caSecret }}
- name: db-ca
  mountPath: /etc/urumi-db-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "urumi.dbCaVolume" -}}
{{- if .Values.database.caSecret }}
- name: db-ca
  secret:
    secretName: {{ .Values.database.caSecret }}
    items:
      - key: {{ .Values.database.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}
