{{/*
Names, labels and derived values of the chart, and the checks values.schema.json cannot express
(rules between two values). Every check fails the render with a message that names the values.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "sfn-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: fullnameOverride, else the release name when it contains the chart's name, else
<release>-<chart>. The operator's Deployment, its ServiceAccount and its RBAC objects are named so.
*/}}
{{- define "sfn-operator.fullname" -}}
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

{{- define "sfn-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "sfn-operator.labels" -}}
helm.sh/chart: {{ include "sfn-operator.chart" . }}
{{ include "sfn-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sfn-operator
{{- end }}

{{/* The operator pods' selector. */}}
{{- define "sfn-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sfn-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "sfn-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sfn-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaces the pollers' ServiceAccount is created in (JSON): the watched ones and the listed ones. */}}
{{- define "sfn-operator.pollerNamespaces" -}}
{{- if .Values.pollers.serviceAccount.create }}
{{- toJson (concat .Values.watchNamespaces .Values.pollers.serviceAccount.namespaces | uniq) }}
{{- else }}
{{- toJson list }}
{{- end }}
{{- end }}

{{/*
The pollers' default ServiceAccount (SFN_POLLER_SERVICE_ACCOUNT), or nothing: the one the chart creates
when it creates it somewhere (with every namespace watched, only where listed), or the one the user
names and creates (create false).
*/}}
{{- define "sfn-operator.pollerServiceAccount" -}}
{{- if .Values.pollers.serviceAccount.create }}
{{- if include "sfn-operator.pollerNamespaces" . | fromJsonArray }}
{{- .Values.pollers.serviceAccount.name }}
{{- end }}
{{- else }}
{{- .Values.pollers.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "sfn-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The pollers' image: pollers.image, field by field over image. */}}
{{- define "sfn-operator.pollerImage" -}}
{{- $p := .Values.pollers.image }}
{{- if $p.digest }}
{{- printf "%s@%s" (default .Values.image.repository $p.repository) $p.digest }}
{{- else if or $p.repository $p.tag }}
{{- printf "%s:%s" (default .Values.image.repository $p.repository) (default (default .Chart.AppVersion .Values.image.tag) $p.tag) }}
{{- else }}
{{- include "sfn-operator.image" . }}
{{- end }}
{{- end }}

{{/* The operator's metrics Service: a Service name is a DNS label of at most 63 characters. */}}
{{- define "sfn-operator.metricsName" -}}
{{- printf "%s-metrics" (include "sfn-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* The bundled Redis's name (redis.enabled). */}}
{{- define "sfn-operator.redisName" -}}
{{- printf "%s-redis" (include "sfn-operator.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/* The Redis URL: redis.url, else the bundled Redis's Service. */}}
{{- define "sfn-operator.redisUrl" -}}
{{- if .Values.redis.url }}
{{- .Values.redis.url }}
{{- else if .Values.redis.enabled }}
{{- printf "redis://%s.%s.svc:6379" (include "sfn-operator.redisName" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/* `name:key` of the pollers' password Secret, or nothing. */}}
{{- define "sfn-operator.pollerRedisPasswordSecret" -}}
{{- $name := default .Values.redis.existingSecret.name .Values.pollers.redisPasswordSecret.name }}
{{- if $name }}
{{- printf "%s:%s" $name (default .Values.redis.existingSecret.key .Values.pollers.redisPasswordSecret.key) }}
{{- end }}
{{- end }}

{{/* `name:key` of the pollers' CA Secret, or nothing. */}}
{{- define "sfn-operator.pollerRedisCaSecret" -}}
{{- $name := default .Values.redis.tls.caSecret.name .Values.pollers.redisCaSecret.name }}
{{- if $name }}
{{- printf "%s:%s" $name (default .Values.redis.tls.caSecret.key .Values.pollers.redisCaSecret.key) }}
{{- end }}
{{- end }}

{{/* Where the operator's container finds the Redis CA (redis.tls.caSecret). */}}
{{- define "sfn-operator.redisCaDir" -}}
/etc/sfn-operator/redis-ca
{{- end }}

{{/*
The checks between values. Included by the Deployment, so that every render runs them.
*/}}
{{- define "sfn-operator.validate" -}}
{{- $v := .Values }}
{{- if and (gt (int $v.replicaCount) 1) (not $v.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: without leader election every replica would reconcile the same sources and fight over their Deployments and status; set leaderElection.enabled=true, or replicaCount=1" (int $v.replicaCount)) }}
{{- end }}
{{- /* Lease timings in whole seconds (the usual form): the operator refuses to start otherwise. */}}
{{- $le := $v.leaderElection }}
{{- if and (regexMatch "^[0-9]+s$" $le.leaseDuration) (regexMatch "^[0-9]+s$" $le.renewDeadline) (regexMatch "^[0-9]+s$" $le.retryPeriod) }}
{{- $lease := trimSuffix "s" $le.leaseDuration | int }}
{{- $renew := trimSuffix "s" $le.renewDeadline | int }}
{{- $retry := trimSuffix "s" $le.retryPeriod | int }}
{{- if or (ge $renew $lease) (le (mul $renew 10) (mul $retry 12)) }}
{{- fail (printf "leaderElection: renewDeadline (%s) must be less than leaseDuration (%s) and more than 1.2 x retryPeriod (%s), as client-go's leader election requires; the operator would refuse to start" $le.renewDeadline $le.leaseDuration $le.retryPeriod) }}
{{- end }}
{{- end }}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) }}
{{- fail "serviceAccount.create is false but serviceAccount.name is empty: name the ServiceAccount you created for the operator (the chart would otherwise bind its cluster-wide rules to the namespace's default ServiceAccount, and so to every pod that runs as it)" }}
{{- end }}
{{- if and (not $v.redis.url) (not $v.redis.enabled) }}
{{- fail "redis.url is required: the Redis of the pollers' semaphores, reachable from the operator and from every source's namespace (redis://host.namespace.svc:6379); or set redis.enabled=true for a bundled single-node Redis (for trying the chart out, not for production)" }}
{{- end }}
{{- if $v.redis.url }}
{{- if or (regexMatch "^[a-z+]+://[^/@]*:[^/@]*@" $v.redis.url) (regexMatch "[?&]password=" $v.redis.url) }}
{{- fail "redis.url must not contain a password: the pollers get the URL in plain text in their Deployments; put the password in a Secret and set redis.existingSecret.name (and copy the Secret into the sources' namespaces for the pollers)" }}
{{- end }}
{{- if and $v.redis.tls.enabled (not (regexMatch "^rediss(\\+cluster)?://" $v.redis.url)) }}
{{- fail (printf "redis.tls.enabled is true but redis.url %q is not a rediss:// or rediss+cluster:// URL: use rediss:// for TLS" $v.redis.url) }}
{{- end }}
{{- end }}
{{- if and $v.redis.tls.caSecret.name $v.redis.url (not (regexMatch "^rediss(\\+cluster)?://" $v.redis.url)) }}
{{- fail (printf "redis.tls.caSecret.name is set but redis.url %q is not a rediss:// or rediss+cluster:// URL: the CA is for TLS" $v.redis.url) }}
{{- end }}
{{- if $v.redis.tls.caSecret.name }}
{{- range $v.extraEnv }}
{{- if eq .name "NODE_EXTRA_CA_CERTS" }}
{{- fail "extraEnv sets NODE_EXTRA_CA_CERTS and redis.tls.caSecret.name sets it too (to the Redis CA): Node reads one extra CA file; put both CAs into one PEM in the Secret of redis.tls.caSecret" }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.redis.enabled }}
{{- if $v.redis.url }}
{{- fail "redis.enabled and redis.url are both set: redis.enabled runs a bundled Redis whose URL the chart sets; unset redis.url, or set redis.enabled=false to use the Redis at redis.url" }}
{{- end }}
{{- if or $v.redis.tls.enabled $v.redis.sentinel.enabled $v.redis.cluster }}
{{- fail "redis.enabled runs a single-node Redis without TLS, Sentinel or cluster mode: set redis.tls.enabled, redis.sentinel.enabled and redis.cluster to false, or use your own Redis (redis.url)" }}
{{- end }}
{{- end }}
{{- if $v.redis.sentinel.enabled }}
{{- if not $v.redis.sentinel.sentinels }}
{{- fail "redis.sentinel.enabled is true but redis.sentinel.sentinels is empty: list the sentinels as host:port, such as [redis-sentinel.redis.svc:26379]" }}
{{- end }}
{{- if or $v.redis.tls.enabled (regexMatch "^rediss" (default "" $v.redis.url)) }}
{{- fail "redis.sentinel.enabled cannot be used with TLS (redis.tls.enabled or a rediss:// redis.url): TLS through Sentinel is not supported; use a redis:// URL with Sentinel, or TLS without Sentinel" }}
{{- end }}
{{- if or $v.redis.cluster (regexMatch "^rediss?\\+cluster://" (default "" $v.redis.url)) }}
{{- fail "redis.sentinel.enabled cannot be used with Redis Cluster (redis.cluster or a +cluster redis.url): Sentinel serves a non-clustered Redis; choose one" }}
{{- end }}
{{- end }}
{{- if and $v.pollers.serviceAccount.create (not $v.pollers.serviceAccount.name) }}
{{- fail "pollers.serviceAccount.name is empty but pollers.serviceAccount.create is true: name the ServiceAccount to create (sfn-poller by default)" }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor scrapes the operator through its Service" }}
{{- end }}
{{- end }}
