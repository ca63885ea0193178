#!/usr/bin/env bash
# End-to-end check of the Kubernetes test bed, with kubectl as the client.
#
#   testbed/k8s/smoke.sh [CACHE]
#
# It starts two clusters at once (A and B, each with its own scratch directory and ports) and
# then, on A, walks through what a deployer does: a 10-replica Deployment, an image change
# followed by `kubectl rollout status`, a version that never becomes Ready (the rollout must
# fail on its progress deadline), `kubectl rollout undo`, a crash-looping version and one whose
# image cannot be pulled (both must show in the pods' statuses), and a Service whose endpoints
# list the pods. On B, which starts with the Gateway API HTTPRoute CRD, it writes an HTTPRoute
# with weighted backends and reads it back through both served versions. Each cluster must not
# see the other's objects. Finally it stops both with SIGTERM and checks that every component
# has exited. It prints the time each step took and ends with "SMOKE OK".
set -euo pipefail

CACHE=${1:-${GREENLIGHT_K8S_CACHE:-/var/cache/greenlight-k8s}}
CACHE=$(cd "$CACHE" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K=$CACHE/bin/kubectl
OUT=$(mktemp -d "${TMPDIR:-/tmp}/greenlight-k8s-smoke.XXXXXX")

ts() { date +%s.%N; }
since() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(ts)"; }
fail() {
  echo "FAIL: $*; the clusters' logs are in $OUT/{a,b}/logs" >&2
  exit 1
}

# Retries a command every 0.2 s until it succeeds or the timeout (seconds) passes.
eventually() {
  local timeout=$1
  shift
  local end=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) <= end )) || return 1
    sleep 0.2
  done
}

# ---- Two clusters at once ------------------------------------------------------------------
# Both start together, so each one's time includes sharing the machine with the other.
t=$(ts)
bash "$HERE/start.sh" "$CACHE" "$OUT/a" >"$OUT/a.out" 2>"$OUT/a.err" &
PID_A=$!
GREENLIGHT_K8S_GATEWAY_API=1 bash "$HERE/start.sh" "$CACHE" "$OUT/b" >"$OUT/b.out" 2>"$OUT/b.err" &
PID_B=$!
cleanup() {
  kill -TERM "$PID_A" "$PID_B" 2>/dev/null || true
  wait "$PID_A" "$PID_B" 2>/dev/null || true
}
trap cleanup EXIT
for c in a b; do
  pid_var=PID_${c^^}
  until grep -q '^K8S_READY$' "$OUT/$c.out" 2>/dev/null; do
    if ! kill -0 "${!pid_var}" 2>/dev/null; then
      cat "$OUT/$c.err" >&2
      fail "start.sh of cluster $c exited"
    fi
    sleep 0.2
  done
  echo "cluster $c printed K8S_READY after $(since "$t") s"
done
value() { grep "^$2=" "$OUT/$1.out" | cut -d= -f2-; }
[[ $(value a K8S_SERVER) != "$(value b K8S_SERVER)" ]] || fail "both clusters on one port"
KA=("$K" --kubeconfig "$(value a KUBECONFIG)")
KB=("$K" --kubeconfig "$(value b KUBECONFIG)")
"${KA[@]}" version --short
"${KA[@]}" get nodes

# ---- A deployer's walk on cluster A ---------------------------------------------------------
t=$(ts)
"${KA[@]}" create deployment web --image=nginx:1.25 --replicas=10 >/dev/null
# A short progress deadline, so that the never-ready version below fails in seconds.
"${KA[@]}" patch deployment web -p '{"spec":{"progressDeadlineSeconds":15}}' >/dev/null
"${KA[@]}" rollout status deployment/web --timeout=120s >/dev/null
echo "create 10 replicas -> rolled out: $(since "$t") s"

t=$(ts)
"${KA[@]}" set image deployment/web nginx=nginx:1.26 >/dev/null
"${KA[@]}" rollout status deployment/web --timeout=120s >/dev/null
echo "set image -> rolled out: $(since "$t") s"
# Exactly one ReplicaSet (the new one) has all 10 replicas ready; the old one is at 0.
[[ $("${KA[@]}" get rs --no-headers | awk '$2==10 && $4==10' | wc -l) == 1 ]] || fail "ReplicaSets after the image change"

t=$(ts)
"${KA[@]}" set image deployment/web nginx=nginx:unready-1.27 >/dev/null
if "${KA[@]}" rollout status deployment/web --timeout=90s >"$OUT/unready.out" 2>&1; then
  fail "a version that is never Ready rolled out"
fi
echo "never-ready version: rollout status failed after $(since "$t") s: $(tail -n1 "$OUT/unready.out")"
grep -q "exceeded its progress deadline" "$OUT/unready.out" || fail "rollout status did not fail on the progress deadline"

t=$(ts)
"${KA[@]}" rollout undo deployment/web >/dev/null
"${KA[@]}" rollout status deployment/web --timeout=120s >/dev/null
image=$("${KA[@]}" get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')
echo "rollout undo -> rolled out: $(since "$t") s; image now $image"
[[ $image == nginx:1.26 ]] || fail "undo went to $image"

# Counts the pods whose first container waits for the given reason.
waiting() {
  "${KA[@]}" get pods -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.waiting.reason}{"\n"}{end}' \
    | grep -c "^$1\$" || true
}
waiting_at_least() { (( $(waiting "$1") >= $2 )); }
for bad in crashloop:CrashLoopBackOff imagepullbackoff:ImagePullBackOff; do
  tag=${bad%%:*}
  reason=${bad#*:}
  t=$(ts)
  "${KA[@]}" set image deployment/web "nginx=nginx:$tag-1.28" >/dev/null
  # The default maxSurge (25% of 10, rounded up: 3) and maxUnavailable (rounded down: 2)
  # let 5 new pods start before the rollout stalls; all 5 must show the failure.
  eventually 30 waiting_at_least "$reason" 5 || fail "$(waiting "$reason") pods in $reason, not 5"
  echo "$tag version: $(waiting "$reason") pods in $reason after $(since "$t") s"
  t=$(ts)
  "${KA[@]}" rollout undo deployment/web >/dev/null
  "${KA[@]}" rollout status deployment/web --timeout=120s >/dev/null
  echo "rollout undo -> rolled out: $(since "$t") s"
done

t=$(ts)
"${KA[@]}" expose deployment web --port=80 >/dev/null
endpoints() { "${KA[@]}" get endpoints web -o jsonpath='{.subsets[0].addresses[*].ip}' | wc -w; }
endpoints_are() { (( $(endpoints) == $1 )); }
eventually 30 endpoints_are 10 || fail "the Service has $(endpoints) endpoints, not 10"
echo "Service endpoints list the 10 pods after $(since "$t") s"

# ---- Gateway API HTTPRoute on cluster B ----------------------------------------------------
t=$(ts)
"${KB[@]}" apply -f - >/dev/null <<'YAML'
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs:
    - name: gateway
  hostnames: ["web.example.test"]
  rules:
    - backendRefs:
        - {name: web-stable, port: 80, weight: 90}
        - {name: web-canary, port: 80, weight: 10}
YAML
"${KB[@]}" patch httproute.v1beta1.gateway.networking.k8s.io web --type=json \
  -p '[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":50},
       {"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":50}]' >/dev/null
weights=$("${KB[@]}" get httproutes.v1.gateway.networking.k8s.io web \
  -o jsonpath='{.spec.rules[0].backendRefs[*].weight}')
[[ $weights == "50 50" ]] || fail "HTTPRoute weights read back as '$weights'"
echo "HTTPRoute written as v1beta1, weights shifted, read back as v1: $(since "$t") s"

# ---- The clusters are separate ----------------------------------------------------------
if "${KB[@]}" get deployment web >/dev/null 2>&1; then
  fail "cluster B sees cluster A's Deployment"
fi
if "${KA[@]}" get httproutes >/dev/null 2>&1; then
  fail "cluster A knows HTTPRoutes, which only B installed"
fi
echo "clusters A and B do not see each other's objects"

# ---- Stop both, and check that nothing is left -------------------------------------------------
PIDS="$(value a K8S_PIDS) $(value b K8S_PIDS)"
t=$(ts)
kill -TERM "$PID_A" "$PID_B"
rc_a=0
rc_b=0
wait "$PID_A" || rc_a=$?
wait "$PID_B" || rc_b=$?
trap - EXIT
echo "SIGTERM -> both start.sh exited (rc $rc_a, $rc_b) after $(since "$t") s"
for p in $PIDS; do
  if kill -0 "$p" 2>/dev/null; then
    fail "pid $p is still alive"
  fi
done
[[ $rc_a == 0 && $rc_b == 0 ]] || fail "start.sh exit statuses $rc_a, $rc_b"
# start.sh leaves scratch directories it was given, so the smoke test removes its own.
rm -rf "$OUT"
echo "SMOKE OK"
