#!/usr/bin/env bash
# Checks qfarm's Kubernetes manifests offline; no cluster is needed.
#
#   deploy/validate.sh
#
# 1. YAML: every file under deploy/k8s parses, with no duplicate keys
#    (and passes yamllint, when the Debian package yamllint is installed).
# 2. Render: `kubectl kustomize` renders the base, every overlay and
#    secrets-example (a standalone `kustomize build` is used when there is
#    no kubectl).
# 3. Schema: every rendered document validates against the Kubernetes
#    schema (npm package kubernetes-models, via deploy/validate/validate.mjs).
# 4. Fixtures: every manifest in deploy/validate/fixtures/ is rejected, for
#    the reasons it names; a validator that accepts everything fails here.
#
# Without kubectl (and kustomize) step 2 is SKIPPED and step 3 checks the
# plain resource files of base/ and secrets-example/ as they are, without
# the overlays' patches. Without node and npm, steps 1 (but yamllint), 3
# and 4 are SKIPPED. The npm packages are installed with `npm ci` from
# package-lock.json into deploy/validate/node_modules on first use (needs
# the npm registry; a few seconds) and reused while the lock file is
# unchanged.
#
# Exit status: 0 everything checked and passed; 1 a check failed (or npm ci
# did); 77 what could be checked passed but a step was SKIPPED (ctest shows
# the test as skipped). QFARM_VALIDATE_STRICT=1 turns every SKIP into a
# failure. KUBECTL names the kubectl to use.
set -euo pipefail

DEPLOY="$(cd "$(dirname "$0")" && pwd)"
K8S="$DEPLOY/k8s"
VALIDATE="$DEPLOY/validate"
KUBECTL="${KUBECTL:-kubectl}"
STRICT="${QFARM_VALIDATE_STRICT:-0}"
START="$(date +%s%N)"

failed=0
skipped=0
step() { echo "== $*"; }
fail() { echo "FAIL: $*"; failed=1; }
skip() {
  echo "SKIP: $*"
  skipped=1
  if [ "$STRICT" = 1 ]; then fail "(QFARM_VALIDATE_STRICT=1) $*"; fi
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/qfarm-validate.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# The kustomizations to render, relative to deploy/k8s.
TARGETS=(base secrets-example)
for overlay in "$K8S"/overlays/*/; do
  TARGETS+=("overlays/$(basename "$overlay")")
done

# --- node packages -----------------------------------------------------------
have_node=0
if command -v node >/dev/null && command -v npm >/dev/null; then
  have_node=1
  # One install at a time: several build dirs may run this test at once
  # against the same source tree.
  exec 9<"$VALIDATE"
  flock 9
  stamp="$VALIDATE/node_modules/.qfarm-installed-lock"
  if ! cmp -s "$VALIDATE/package-lock.json" "$stamp" 2>/dev/null; then
    step "npm ci (deploy/validate/node_modules)"
    if ! (cd "$VALIDATE" && npm ci --no-audit --no-fund --loglevel=error); then
      echo "FAIL: npm ci failed in $VALIDATE (is the npm registry reachable?)"
      exit 1
    fi
    cp "$VALIDATE/package-lock.json" "$stamp"
  fi
  flock -u 9
else
  skip "node or npm not found: no YAML, schema or fixture checks"
fi

# --- 1. YAML -----------------------------------------------------------------
mapfile -t yaml_files < <(find "$K8S" -name '*.yaml' -o -name '*.yml' | sort)
if [ "$have_node" = 1 ]; then
  step "YAML of ${#yaml_files[@]} files under deploy/k8s"
  node "$VALIDATE/validate.mjs" --syntax-only "${yaml_files[@]}" \
    > "$TMP/syntax.log" || { cat "$TMP/syntax.log"; fail "YAML errors"; }
fi
if command -v yamllint >/dev/null; then
  step "yamllint"
  yamllint -s -d '{extends: default, rules: {
      line-length: {max: 100}, document-start: disable,
      comments: {min-spaces-from-content: 2},
      comments-indentation: disable,
      truthy: {check-keys: false},
      indentation: {spaces: 2, indent-sequences: whatever}}}' \
    "${yaml_files[@]}" || fail "yamllint"
else
  echo "(yamllint not installed: skipped, optional; apt-get install yamllint)"
fi

# --- 2. render ---------------------------------------------------------------
render=()
if command -v "$KUBECTL" >/dev/null; then
  render=("$KUBECTL" kustomize)
elif command -v kustomize >/dev/null; then
  render=(kustomize build)
fi
to_validate=()
if [ ${#render[@]} -gt 0 ]; then
  step "render with ${render[*]}: ${TARGETS[*]}"
  for target in "${TARGETS[@]}"; do
    out="$TMP/rendered/$target.yaml"
    mkdir -p "$(dirname "$out")"
    if "${render[@]}" "$K8S/$target" > "$out" 2> "$TMP/render.err"; then
      to_validate+=("rendered/$target.yaml")
    else
      cat "$TMP/render.err"
      fail "$target does not render"
    fi
  done
else
  skip "neither $KUBECTL nor kustomize found: overlays not rendered;" \
    "checking the plain resource files of base/ and secrets-example/ instead"
  for f in "$K8S"/base/*.yaml "$K8S"/secrets-example/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    to_validate+=("$f")
  done
fi

# --- 3. schema ---------------------------------------------------------------
if [ "$have_node" = 1 ] && [ ${#to_validate[@]} -gt 0 ]; then
  step "schema (kubernetes-models)"
  (cd "$TMP" && node "$VALIDATE/validate.mjs" "${to_validate[@]}") \
    || fail "schema errors"
fi

# --- 4. fixtures -------------------------------------------------------------
if [ "$have_node" = 1 ]; then
  step "broken fixtures are rejected"
  (cd "$VALIDATE" && node validate.mjs --expect-invalid fixtures/*.yaml) \
    || fail "a broken fixture was not rejected as expected"
fi

elapsed="$(( ($(date +%s%N) - START) / 1000000 ))"
if [ "$failed" = 1 ]; then
  echo "validate.sh: FAILED (${elapsed} ms)"
  exit 1
fi
if [ "$skipped" = 1 ]; then
  echo "validate.sh: passed what could be checked; some steps SKIPPED (${elapsed} ms)"
  exit 77
fi
echo "validate.sh: all manifests valid (${elapsed} ms)"
