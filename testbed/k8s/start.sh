#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback, with simulated nodes, for tests.
#
#   testbed/k8s/start.sh [CACHE [SCRATCH]]
#
# CACHE is what setup.sh filled (default: $GREENLIGHT_K8S_CACHE, else /var/cache/greenlight-k8s).
# SCRATCH (default: a new directory from mktemp) receives the certificates, etcd's data, the
# logs, a kubeconfig and a sourceable env file. Every listener is on 127.0.0.1 on a port the
# kernel picked as free, so several clusters can run at once, each with its own SCRATCH.
#
# Once the cluster is usable (every simulated node Ready and the default ServiceAccount
# created, which is when a Deployment can get pods) it prints, one per line:
#
#   KUBECONFIG=<file>   K8S_SERVER=https://127.0.0.1:<port>   K8S_TOKEN=<bearer token>
#   K8S_CA=<CA file>    K8S_ENV=<file exporting the four above>    K8S_SCRATCH=<dir>
#   K8S_PIDS=<pids of the components>
#   K8S_READY
#
# and keeps running. SIGTERM or SIGINT stops every process it started, newest first, and it
# exits 0. If a component dies on its own, the rest are stopped and it exits 1. It must not be
# stopped with SIGKILL: the components would be left running.
#
# Environment:
#   GREENLIGHT_K8S_NODES          simulated nodes (default 3)
#   GREENLIGHT_K8S_READY_TIMEOUT  seconds to wait for the cluster to become usable (default 120)
#   GREENLIGHT_K8S_READY_DELAY    seconds a healthy pod stays Running but not Ready (default 0)
#   GREENLIGHT_K8S_GATEWAY_API=1  installs the HTTPRoute CRD in crds/ before K8S_READY
#   GREENLIGHT_K8S_KEEP_SCRATCH=1 keeps a SCRATCH made here when stopping (for its logs)
#   GREENLIGHT_K8S_PARENT_PID     stops the cluster, as SIGTERM would, once this process is gone
#                                 (a test run that was killed leaves nothing running)
#
# Bad versions are simulated by image tag (app:crashloop, app:unready-2, ...); see
# fake_kubelet.py.
#
# The bed is for tests on loopback only. Its token is a cluster admin's, its certificates are
# throwaway, and the server binaries get no security support.
set -euo pipefail

CACHE=${1:-${GREENLIGHT_K8S_CACHE:-/var/cache/greenlight-k8s}}
CACHE=$(cd "$CACHE" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$CACHE/bin
MADE_SCRATCH=0
if [[ -n ${2:-} ]]; then
  SCRATCH=$2
  mkdir -p "$SCRATCH"
else
  SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/greenlight-k8s.XXXXXX")
  MADE_SCRATCH=1
fi
SCRATCH=$(cd "$SCRATCH" && pwd)
NODES=${GREENLIGHT_K8S_NODES:-3}
READY_TIMEOUT=${GREENLIGHT_K8S_READY_TIMEOUT:-120}
for b in kube-apiserver kube-controller-manager kube-scheduler etcd kubectl; do
  if [[ ! -x $BIN/$b ]]; then
    echo "start.sh: $BIN/$b is missing: run testbed/k8s/setup.sh $CACHE first" >&2
    exit 1
  fi
done

# The times this script reports count from here, so they include making the certificates.
T0=$(date +%s.%N)
elapsed() {
  python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$T0" "$(date +%s.%N)"
}
mkdir -p "$SCRATCH/pki" "$SCRATCH/logs" "$SCRATCH/etcd"
# etcd refuses a data directory that others can read.
chmod 700 "$SCRATCH/etcd"
PIDS=()
NAMES=()

# Stops the components one at a time, newest first, so that etcd, which everything else
# depends on, goes last and nothing logs a storm of connection errors on the way down. Each
# gets 10 s to exit on SIGTERM before SIGKILL, which is sent to that one PID only.
stop_all() {
  trap - TERM INT EXIT
  local i n
  for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    n=0
    while kill -0 "${PIDS[$i]}" 2>/dev/null && (( n < 200 )); do
      sleep 0.05
      n=$(( n + 1 ))
    done
    kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  if [[ $MADE_SCRATCH == 1 && ${GREENLIGHT_K8S_KEEP_SCRATCH:-0} != 1 ]]; then
    rm -rf "$SCRATCH"
  fi
}
on_signal() {
  echo "start.sh: stopping" >&2
  stop_all
  exit 0
}
trap on_signal TERM INT
trap stop_all EXIT

# Starts one component in the background with its output in its own log file.
spawn() {
  local name=$1
  shift
  "$@" >"$SCRATCH/logs/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

# Asks the kernel for N free loopback ports at once (all sockets are held until every port is
# chosen, so the N are distinct). Another process could take one before the component binds
# it; that is rare, and the component then fails fast with a clear log line.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r ETCD_PORT ETCD_PEER_PORT API_PORT < <(free_ports 3)

# ---- Certificates, keys and the token --------------------------------------------------
# A fresh CA per cluster, so that a client of one cluster cannot talk to another by mistake.
# The token is a static one in the system:masters group; the controller manager and the
# scheduler use it too, which spares client certificates for each of them.
PKI=$SCRATCH/pki
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=greenlight-testbed-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
cat >"$PKI/apiserver.ext" <<'EXT'
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
EXT
openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
  -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
TOKEN=$(openssl rand -hex 24)
printf '%s,admin,admin,system:masters\n' "$TOKEN" >"$PKI/tokens.csv"
chmod 600 "$PKI"/*.key "$PKI/tokens.csv"

SERVER=https://127.0.0.1:$API_PORT
KUBECONFIG_PATH=$SCRATCH/kubeconfig
CA_B64=$(base64 -w0 <"$PKI/ca.crt")
cat >"$KUBECONFIG_PATH" <<KC
apiVersion: v1
kind: Config
clusters:
- name: greenlight-testbed
  cluster:
    server: $SERVER
    certificate-authority-data: $CA_B64
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: greenlight-testbed
  context: {cluster: greenlight-testbed, user: admin, namespace: default}
current-context: greenlight-testbed
KC
chmod 600 "$KUBECONFIG_PATH"


# Polls a command until it succeeds. While waiting it also checks that every component is
# still alive, so that a component that failed (a taken port, a bad flag) is reported at once
# with its log instead of after the whole timeout.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local end=$(( $(date +%s) + timeout )) i
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) > end )); then
      echo "start.sh: timed out waiting for $what; logs in $SCRATCH/logs" >&2
      tail -n 20 "$SCRATCH"/logs/*.log >&2 || true
      exit 1
    fi
    for i in "${!PIDS[@]}"; do
      if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        echo "start.sh: ${NAMES[$i]} exited; its log ends:" >&2
        tail -n 30 "$SCRATCH/logs/${NAMES[$i]}.log" >&2
        exit 1
      fi
    done
    sleep 0.2
  done
}

# ---- etcd ------------------------------------------------------------------------------
spawn etcd "$BIN/etcd" --name greenlight-testbed --data-dir "$SCRATCH/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "greenlight-testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
  --quota-backend-bytes=2147483648 --logger=zap --log-level=warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
echo "start.sh: etcd up after $(elapsed) s" >&2

# ---- kube-apiserver --------------------------------------------------------------------
# --endpoint-reconciler-type=none keeps the apiserver from publishing its own loopback
# address as the endpoints of the "kubernetes" Service, which Endpoints validation rejects.
# The insecure port is off; everything goes through TLS and the token, as in a real cluster.
spawn kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true \
  --cert-dir="$PKI/generated" --profiling=false --logtostderr=true --v=1
wait_for kube-apiserver 90 curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $TOKEN" "$SERVER/readyz"
echo "start.sh: kube-apiserver ready after $(elapsed) s" >&2

# ---- Controllers, scheduler and simulated nodes ------------------------------------------
# Neither the controller manager nor the scheduler opens a port (--port=0, --secure-port=0),
# which is what lets two clusters run side by side. Leader election is off because each runs
# alone. The raised client rates let a rollout of hundreds of pods go as fast as the
# apiserver allows instead of being throttled at the clients' defaults.
spawn kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_PATH" --leader-elect=false \
  --port=0 --secure-port=0 \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=false \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range=10.96.0.0/16 --allocate-node-cidrs=false \
  --concurrent-deployment-syncs=10 --concurrent-replicaset-syncs=10 \
  --kube-api-qps=500 --kube-api-burst=1000 \
  --profiling=false --logtostderr=true --v=1
spawn kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_PATH" --authentication-kubeconfig="$KUBECONFIG_PATH" \
  --authorization-kubeconfig="$KUBECONFIG_PATH" --leader-elect=false \
  --kube-api-qps=500 --kube-api-burst=1000 \
  --port=0 --secure-port=0 --profiling=false --logtostderr=true --v=1
spawn fake-kubelet python3 "$HERE/fake_kubelet.py" --server "$SERVER" --token "$TOKEN" \
  --cafile "$PKI/ca.crt" --nodes "$NODES" --ready-delay "${GREENLIGHT_K8S_READY_DELAY:-0}"

api() {
  curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $TOKEN" "$SERVER$1"
}
nodes_ready() {
  api /api/v1/nodes | python3 -c '
import json, sys
want = int(sys.argv[1])
items = json.load(sys.stdin)["items"]
ready = [i for i in items
         if any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))]
sys.exit(0 if len(ready) >= want else 1)' "$NODES"
}
wait_for "the simulated nodes" "$READY_TIMEOUT" nodes_ready
# Pods cannot be created in a namespace before its default ServiceAccount exists (the
# ServiceAccount admission plugin refuses them), so a Deployment created earlier would stall.
wait_for "the default service account" "$READY_TIMEOUT" api /api/v1/namespaces/default/serviceaccounts/default

# ---- Optional CRDs ---------------------------------------------------------------------
# Waiting for Established means a test can create HTTPRoutes as soon as it sees K8S_READY.
if [[ ${GREENLIGHT_K8S_GATEWAY_API:-0} == 1 ]]; then
  KUBECONFIG=$KUBECONFIG_PATH "$BIN/kubectl" apply -f "$HERE/crds/gateway-httproute.yaml" >&2
  KUBECONFIG=$KUBECONFIG_PATH "$BIN/kubectl" wait --for condition=established --timeout=60s \
    crd/httproutes.gateway.networking.k8s.io >&2
fi
echo "start.sh: control plane usable after $(elapsed) s" >&2

cat >"$SCRATCH/env" <<ENV
export KUBECONFIG=$KUBECONFIG_PATH
export K8S_SERVER=$SERVER
export K8S_TOKEN=$TOKEN
export K8S_CA=$PKI/ca.crt
ENV
echo "KUBECONFIG=$KUBECONFIG_PATH"
echo "K8S_SERVER=$SERVER"
echo "K8S_TOKEN=$TOKEN"
echo "K8S_CA=$PKI/ca.crt"
echo "K8S_ENV=$SCRATCH/env"
echo "K8S_SCRATCH=$SCRATCH"
echo "K8S_PIDS=${PIDS[*]}"
echo "K8S_READY"

# Stays up until signalled, or until a component dies (then the EXIT trap stops the rest and
# the exit status is 1). The sleep runs in the background and is waited for, because bash
# runs a trap only between commands: this way a SIGTERM is handled at once, not after the
# sleep.
PARENT=${GREENLIGHT_K8S_PARENT_PID:-}
while true; do
  if [[ -n $PARENT ]] && ! kill -0 "$PARENT" 2>/dev/null; then
    echo "start.sh: process $PARENT is gone; stopping" >&2
    stop_all
    exit 0
  fi
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      echo "start.sh: ${NAMES[$i]} exited; its log ends:" >&2
      tail -n 30 "$SCRATCH/logs/${NAMES[$i]}.log" >&2 || true
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
