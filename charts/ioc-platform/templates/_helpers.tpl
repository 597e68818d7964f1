{{/*
Names, labels, the image and the shared pod pieces of every template, in one place.
Component templates (operator, bridge, streams, migrations) call these; nothing else builds a label.
*/}}

{{/* The chart's name (nameOverride wins). */}}
{{- define "ioc-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The base name of every resource: release name, plus the chart name unless the release has it. */}}
{{- define "ioc-platform.fullname" -}}
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

{{/* A component's resource name: fullname-component (call with dict "ctx" $ "component" "x"). */}}
{{- define "ioc-platform.componentName" -}}
{{- printf "%s-%s" (include "ioc-platform.fullname" .ctx | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{- define "ioc-platform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (never add a version here). */}}
{{- define "ioc-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ioc-platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The standard app.kubernetes.io labels of every object. */}}
{{- define "ioc-platform.labels" -}}
helm.sh/chart: {{ include "ioc-platform.chart" . }}
{{ include "ioc-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ioc-platform
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one component's objects (call with dict "ctx" $ "component" "x"). */}}
{{- define "ioc-platform.componentLabels" -}}
{{ include "ioc-platform.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of one component's pods (call with dict "ctx" $ "component" "x"). */}}
{{- define "ioc-platform.componentSelectorLabels" -}}
{{ include "ioc-platform.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The platform image: repository@digest, else repository:tag (appVersion by default). */}}
{{- define "ioc-platform.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "ioc-platform.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "ioc-platform.componentName" (dict "ctx" . "component" "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaces the operator watches (watchNamespace and watchNamespaces) as a JSON list; [] for all. */}}
{{- define "ioc-platform.operator.watchedNamespaces" -}}
{{- concat (list .Values.operator.watchNamespace) .Values.operator.watchNamespaces | compact | uniq | toJson }}
{{- end }}

{{/* The Secret holding the operator's secret key: existingSecret (the GitOps path), or the one the chart
generates when asked to (generate=true, existingSecret empty); anything else fails with what to set. */}}
{{- define "ioc-platform.operator.secretKeySecret" -}}
{{- $key := .Values.operator.secretKey }}
{{- if and $key.generate $key.existingSecret }}
{{- fail (printf "operator.secretKey: existingSecret (%s) and generate=true are exclusive: keep the existing Secret (generate=false), or let the chart generate the key with --set operator.secretKey.existingSecret= (a new key rotates every password the operator issued)" $key.existingSecret) }}
{{- else if $key.generate }}
{{- include "ioc-platform.componentName" (dict "ctx" . "component" "operator-key") }}
{{- else if $key.existingSecret }}
{{- $key.existingSecret }}
{{- else }}
{{- fail "operator.secretKey: set existingSecret to a Secret holding the operator's key (the GitOps path), e.g. kubectl create secret generic ioc-operator-key --from-literal=secret-key=\"$(openssl rand -hex 32)\", or set generate=true to let the chart make one with Helm's lookup (not for GitOps tools)" }}
{{- end }}
{{- end }}

{{/* Kafka bootstrap servers: the in-cluster Strimzi cluster's when enabled (its TLS listener, 9093, unless
kafka.securityProtocol is PLAINTEXT), else kafka.bootstrap. */}}
{{- define "ioc-platform.kafkaBootstrap" -}}
{{- if .Values.strimzi.enabled }}
{{- $port := ternary 9092 9093 (eq .Values.kafka.securityProtocol "PLAINTEXT") }}
{{- printf "%s-kafka-bootstrap.%s.svc:%d" (include "ioc-platform.componentName" (dict "ctx" . "component" "kafka")) .Release.Namespace $port }}
{{- else }}
{{- .Values.kafka.bootstrap }}
{{- end }}
{{- end }}

{{/* Whether Kafka clients use TLS (SSL or SASL_SSL). */}}
{{- define "ioc-platform.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}

{{/* The Secret with the brokers' CA: Strimzi's cluster CA when strimzi.enabled, else kafka.caSecret. */}}
{{- define "ioc-platform.kafkaCaSecret" -}}
{{- if .Values.strimzi.enabled }}
{{- printf "%s-cluster-ca-cert" (include "ioc-platform.componentName" (dict "ctx" . "component" "kafka")) }}
{{- else }}
{{- required "kafka.caSecret is required when kafka.securityProtocol uses TLS" .Values.kafka.caSecret }}
{{- end }}
{{- end }}

{{/* The Secret with a principal's SCRAM password (key `password`): kafka.userSecrets.<user>, else the Secret
named after the principal, as Strimzi's KafkaUser writes it. Call with dict "ctx" . "user" <principal>. */}}
{{- define "ioc-platform.kafkaUserSecret" -}}
{{- if .ctx.Values.strimzi.enabled }}
{{- .user }}
{{- else }}
{{- get .ctx.Values.kafka.userSecrets .user | default .user }}
{{- end }}
{{- end }}

{{/* A component's Kafka endpoint as environment (ioc.settings.KafkaEndpoint): its own principal, over TLS.
Call with dict "ctx" . "prefix" "IOC_BRIDGE_" "user" "ioc-bridge". */}}
{{- define "ioc-platform.kafkaEnv" -}}
{{- $values := .ctx.Values }}
- name: {{ .prefix }}KAFKA__BOOTSTRAP
  value: {{ include "ioc-platform.kafkaBootstrap" .ctx | quote }}
- name: {{ .prefix }}KAFKA__SECURITY_PROTOCOL
  value: {{ $values.kafka.securityProtocol | quote }}
{{- if hasPrefix "SASL_" $values.kafka.securityProtocol }}
- name: {{ .prefix }}KAFKA__SASL_MECHANISM
  value: {{ $values.kafka.saslMechanism | quote }}
- name: {{ .prefix }}KAFKA__USERNAME
  value: {{ .user | quote }}
- name: {{ .prefix }}KAFKA__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "ioc-platform.kafkaUserSecret" (dict "ctx" .ctx "user" .user) }}
      key: password
{{- end }}
{{- if include "ioc-platform.kafkaTls" .ctx }}
- name: {{ .prefix }}KAFKA__CA_FILE
  value: /etc/ioc/kafka-ca/ca.crt
{{- end }}
{{- if gt (int $values.kafka.minInsyncReplicas) (int $values.kafka.replicationFactor) }}
{{- fail "kafka.minInsyncReplicas must not exceed kafka.replicationFactor: no acks=all write could succeed" }}
{{- end }}
{{- if and $values.strimzi.enabled (gt (int $values.kafka.replicationFactor) (int $values.strimzi.replicas)) }}
{{- fail "kafka.replicationFactor exceeds strimzi.replicas: topics could not be created" }}
{{- end }}
- name: {{ .prefix }}KAFKA__REPLICATION_FACTOR
  value: {{ $values.kafka.replicationFactor | quote }}
- name: {{ .prefix }}KAFKA__MIN_INSYNC_REPLICAS
  value: {{ $values.kafka.minInsyncReplicas | quote }}
{{- end }}

{{/* The brokers' CA, mounted where kafkaEnv's CA_FILE points (nothing without TLS). */}}
{{- define "ioc-platform.kafkaVolumes" -}}
{{- if include "ioc-platform.kafkaTls" . }}
- name: kafka-ca
  secret:
    secretName: {{ include "ioc-platform.kafkaCaSecret" . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{- define "ioc-platform.kafkaVolumeMounts" -}}
{{- if include "ioc-platform.kafkaTls" . }}
- name: kafka-ca
  mountPath: /etc/ioc/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* ClickHouse host: the Altinity installation's service when enabled, else clickhouse.host. */}}
{{- define "ioc-platform.clickhouseHost" -}}
{{- if .Values.clickhouseInstallation.enabled }}
{{- printf "clickhouse-%s.%s.svc" (include "ioc-platform.componentName" (dict "ctx" . "component" "ch")) .Release.Namespace }}
{{- else }}
{{- .Values.clickhouse.host }}
{{- end }}
{{- end }}

{{/*
The ClickHouse cluster the warehouse spans: the installation's `ioc` when it has more than one server (its
shards x replicas), else clickhouse.cluster; empty for one server. The components' ClickHouseEndpoint.cluster:
migrations then make replicated local tables and Distributed tables ON CLUSTER (docs/warehouse.md, "Cluster").
*/}}
{{- define "ioc-platform.clickhouseCluster" -}}
{{- $chi := .Values.clickhouseInstallation }}
{{- if $chi.enabled }}
{{- if gt (mul (int $chi.shards) (int $chi.replicas)) 1 }}
{{- if not $chi.zookeeper.nodes }}
{{- fail "clickhouseInstallation with more than one server (shards x replicas) needs clickhouseInstallation.zookeeper.nodes: replicated tables and ON CLUSTER migrations coordinate through ZooKeeper or ClickHouse Keeper" }}
{{- end }}
{{- print "ioc" }}
{{- end }}
{{- else }}
{{- .Values.clickhouse.cluster }}
{{- end }}
{{- end }}

{{/*
The ClickHouse endpoint as IOC_<PREFIX>CLICKHOUSE__* variables (call with dict "ctx" $ "prefix" "IOC_X_"
"auth" <an auth block>); credentials come from the Secret by reference, never as values.
*/}}
{{- define "ioc-platform.clickhouseEnv" -}}
{{- $v := .ctx.Values -}}
- name: {{ .prefix }}CLICKHOUSE__HOST
  value: {{ include "ioc-platform.clickhouseHost" .ctx | quote }}
- name: {{ .prefix }}CLICKHOUSE__PORT
  value: {{ $v.clickhouse.port | quote }}
- name: {{ .prefix }}CLICKHOUSE__HTTP_PORT
  value: {{ $v.clickhouse.httpPort | quote }}
- name: {{ .prefix }}CLICKHOUSE__DATABASE
  value: {{ $v.clickhouse.database | quote }}
{{- with include "ioc-platform.clickhouseCluster" .ctx }}
- name: {{ $.prefix }}CLICKHOUSE__CLUSTER
  value: {{ . | quote }}
{{- end }}
{{- with .auth }}
{{- if .existingSecret }}
- name: {{ $.prefix }}CLICKHOUSE__USER
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .userKey }}
- name: {{ $.prefix }}CLICKHOUSE__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .passwordKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* The first auth block naming an existing Secret: a component's own, else the global one. */}}
{{- define "ioc-platform.pickAuth" -}}
{{- if .own.existingSecret }}{{ toYaml .own }}{{ else }}{{ toYaml .global }}{{ end }}
{{- end }}

{{/* The Mosquitto endpoint as IOC_<PREFIX>MQTT__* variables (dict "ctx" $ "prefix" "IOC_X_" "auth" <block>). */}}
{{- define "ioc-platform.mqttEnv" -}}
{{- $v := .ctx.Values -}}
- name: {{ .prefix }}MQTT__HOST
  value: {{ $v.mqtt.host | quote }}
- name: {{ .prefix }}MQTT__PORT
  value: {{ $v.mqtt.port | quote }}
{{- with .auth }}
{{- if .existingSecret }}
- name: {{ $.prefix }}MQTT__USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .usernameKey }}
- name: {{ $.prefix }}MQTT__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .passwordKey }}
{{- end }}
{{- end }}
{{- if $v.mqtt.tls.enabled }}
- name: {{ .prefix }}MQTT__TLS_CA_FILE
  value: /etc/ioc/mqtt-ca/{{ $v.mqtt.tls.caKey }}
{{- end }}
{{- end }}

{{/* Environment every container gets. */}}
{{- define "ioc-platform.commonEnv" -}}
# The root filesystem is read-only: anything that writes under $HOME writes to the /tmp emptyDir.
- name: HOME
  value: /tmp
- name: PYTHONUNBUFFERED
  value: "1"
{{- end }}

{{/* Volumes every pod gets (scratch space for a read-only root), plus the MQTT CA when TLS is on. */}}
{{- define "ioc-platform.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if and .mqtt .Values.mqtt.tls.enabled }}
- name: mqtt-ca
  secret:
    secretName: {{ required "mqtt.tls.caSecret is required when mqtt.tls.enabled" .Values.mqtt.tls.caSecret }}
    items:
      - key: {{ .Values.mqtt.tls.caKey }}
        path: {{ .Values.mqtt.tls.caKey }}
{{- end }}
{{- end }}

{{- define "ioc-platform.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and .mqtt .Values.mqtt.tls.enabled }}
- name: mqtt-ca
  mountPath: /etc/ioc/mqtt-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every pod: pull secrets and security context. */}}
{{- define "ioc-platform.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Scheduling fields of one component's pods (call with the component's values); may be empty. */}}
{{- define "ioc-platform.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
