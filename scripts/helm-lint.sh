#!/usr/bin/env bash
# Lint and schema-check the Helm chart in helm/configsvc, offline.
#
#   scripts/helm-lint.sh
#
# Tools are installed once into .tools/ (skipped when already there):
#   .tools/bin/helm             go install helm.sh/helm/v3/cmd/helm (Go module proxy)
#   .tools/kubernetes-validate  venv with kubernetes-validate from PyPI; the
#                               package ships the Kubernetes JSON schemas, so
#                               rendered manifests are validated without any
#                               download (kubeconform would fetch its schemas
#                               from the internet).
#
# Steps:
#   1. helm lint --strict, with the default values and with etcd TLS enabled
#   2. helm template for each values set
#   3. kubernetes-validate --strict on the rendered manifests, against the
#      oldest and newest Kubernetes versions whose schemas the package ships
#   4. helm template must refuse a few invalid values sets
#
# Env overrides: HELM_VERSION, KUBERNETES_VALIDATE_VERSION, K8S_VERSIONS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Kubernetes minor that helm v3.22 is built against (its k8s.io/client-go is
# v0.37); the official release binaries bake it in with the same -ldflags.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
# Validate against the oldest and the newest schema set kubernetes-validate ships.
K8S_VERSIONS="${K8S_VERSIONS:-1.25.0 1.37.0}"

CHART=helm/configsvc
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
KV_VENV="$TOOLS/kubernetes-validate"
HELM="$BIN/helm"
KV="$KV_VENV/bin/kubernetes-validate"

log() { printf '==> %s\n' "$*" >&2; }

install_helm() {
  if [[ -x "$HELM" ]] && [[ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
    return
  fi
  command -v go >/dev/null || { echo "go is required to install helm" >&2; exit 1; }
  log "installing helm $HELM_VERSION into $BIN (go install)"
  mkdir -p "$BIN"
  local start=$SECONDS
  GOBIN="$BIN" CGO_ENABLED=0 go install \
    -ldflags "-s -w \
      -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
      -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$HELM_K8S_MAJOR \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "helm installed in $((SECONDS - start))s"
}

install_kubernetes_validate() {
  if [[ -x "$KV" ]] && [[ "$("$KV" --version 2>/dev/null)" == *"$KUBERNETES_VALIDATE_VERSION"* ]]; then
    return
  fi
  log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $KV_VENV (pip)"
  local start=$SECONDS
  rm -rf "$KV_VENV"
  python3 -m venv "$KV_VENV"
  "$KV_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  log "kubernetes-validate installed in $((SECONDS - start))s"
}

install_helm
install_kubernetes_validate

# Values sets to lint and render: name|helm flags.
VALUE_SETS=(
  "default|"
  "etcd-tls|--set etcd.tls.enabled=true --set etcd.tls.ca.secretName=etcd-ca --set etcd.tls.client.secretName=etcd-client --set etcd.endpoints={etcd-0.etcd:2379,etcd-1.etcd:2379,etcd-2.etcd:2379}"
  "pdb-min-available|--set podDisruptionBudget.minAvailable=2 --set config.logFormat=text"
  "grpc-probes|--set probes.liveness.kind=grpc --set probes.startup.kind=grpc --set probes.readiness.service=configsvc.v1.ConfigService"
)

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

for entry in "${VALUE_SETS[@]}"; do
  name="${entry%%|*}"
  read -r -a flags <<<"${entry#*|}"

  log "helm lint --strict $CHART ($name)"
  "$HELM" lint --strict "$CHART" "${flags[@]}"

  log "helm template $CHART ($name)"
  "$HELM" template configsvc "$CHART" --namespace configsvc "${flags[@]}" >"$OUT/$name.yaml"

  for k8s in $K8S_VERSIONS; do
    log "kubernetes-validate --strict -k $k8s ($name)"
    "$KV" --strict --quiet -k "$k8s" "$OUT/$name.yaml"
  done
done

# Values the chart must refuse: name|expected error text|helm flags.
BAD_SETS=(
  "tls-without-secrets|etcd.tls.ca.secretName|--set etcd.tls.enabled=true"
  "no-etcd-endpoints|/etcd/endpoints|--set-json etcd.endpoints=[]"
  "bad-log-format|/config/logFormat|--set config.logFormat=xml"
  "shutdown-too-long|terminationGracePeriodSeconds|--set terminationGracePeriodSeconds=12"
)
for entry in "${BAD_SETS[@]}"; do
  IFS='|' read -r name want rest <<<"$entry"
  read -r -a flags <<<"$rest"
  log "helm template rejects $name"
  if "$HELM" template configsvc "$CHART" "${flags[@]}" >/dev/null 2>"$OUT/err"; then
    echo "expected helm template to fail for $name" >&2
    exit 1
  fi
  if ! grep -qF -- "$want" "$OUT/err"; then
    echo "helm template failed for $name, but without '$want':" >&2
    cat "$OUT/err" >&2
    exit 1
  fi
done

log "chart OK"
