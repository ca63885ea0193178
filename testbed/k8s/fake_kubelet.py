#!/usr/bin/env python3
"""Simulated nodes for the Kubernetes test bed: kubelets that run nothing.

A real kube-apiserver, controller manager and scheduler need nodes before a Deployment can
become available. Running real kubelets would need a container runtime, root and images
from a registry, none of which a test on loopback should depend on. This program plays the
part of the kubelets instead, through the API only, much as sigs.k8s.io/kwok does. It uses
Python's standard library only, so the bed needs nothing beyond python3.

What it does:
- It registers N Node objects that report themselves Ready, with generous capacity. It renews
  their Leases every 10 s and refreshes their conditions every 60 s, so that the node lifecycle
  controller keeps them Ready and never evicts their pods.
- It marks every Pod bound to one of those nodes Running and Ready. No container runs. Each pod
  gets an address in 10.244.<node>.0/24, which is data only: nothing listens there.
- When a Pod on one of those nodes is being deleted, it removes it with a grace period of 0, as
  a kubelet does once the containers have stopped. Without this, old ReplicaSets would never
  scale down and every rollout would hang.
- It simulates bad versions, so that a deployer can be tested against them. The behaviour is
  chosen by the pod annotation greenlight-testbed/behavior, or else by an image tag that starts
  with the behaviour's name (app:unready, app:crashloop-v2, app:imagepullbackoff,
  app:pending):
    unready           Running, its container running, never Ready (a failing readiness probe);
    crashloop         Running, its container waiting in CrashLoopBackOff, restartCount 3,
                      never Ready;
    imagepullbackoff  Pending, its container waiting in ImagePullBackOff;
    pending           left alone: scheduled but never started.
- It delays readiness when asked, for tests of slow starts: the annotation
  greenlight-testbed/ready-after-seconds: "N" on a pod, or --ready-delay N for every pod.

What it does not do: Jobs that finish, probes, metrics, logs, exec, attach or port-forward.
The nodes' addresses are 127.0.0.1 and their kubelet port is 1, so a request that would make
the apiserver dial a kubelet is refused at once on loopback instead of leaving the machine.

Usage: fake_kubelet.py --server https://127.0.0.1:PORT --token TOKEN --cafile ca.crt --nodes 3
It stops on SIGTERM or SIGINT and deletes nothing: the control plane goes away with it.
"""
import argparse
import datetime
import http.client
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse

STOP = threading.Event()
BEHAVIORS = ("ready", "unready", "crashloop", "imagepullbackoff", "pending")
BEHAVIOR_ANNOTATION = "greenlight-testbed/behavior"
READY_AFTER_ANNOTATION = "greenlight-testbed/ready-after-seconds"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    # Lease times are MicroTime, which the apiserver parses only with the fraction present.
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log(*a):
    print(time.strftime("%H:%M:%S"), "fake-kubelet:", *a, file=sys.stderr, flush=True)


class Api:
    """A small client of the apiserver: one keep-alive HTTPS connection per thread.

    Keeping the connection open matters when hundreds of pods change at once: a new TLS
    handshake per status update would cost more than the update itself."""

    def __init__(self, server, token, cafile):
        u = urllib.parse.urlparse(server)
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
        self.local = threading.local()

    def _conn(self, timeout=30):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def call(self, method, path, body=None, ctype="application/json"):
        """Sends one request and returns (status, decoded JSON body or None).

        A request that fails on the connection is tried once more on a new connection,
        because the apiserver may have closed an idle keep-alive connection."""
        for attempt in range(2):
            c = getattr(self.local, "c", None)
            if c is None:
                c = self.local.c = self._conn()
            try:
                h = dict(self.headers)
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    h["Content-Type"] = ctype
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (OSError, http.client.HTTPException):
                try:
                    c.close()
                finally:
                    self.local.c = None
                if attempt == 1:
                    raise
        return 0, None

    def watch(self, path, timeout_s=240):
        """Yields watch events (dicts) until the server ends the stream."""
        c = self._conn(timeout=timeout_s + 30)
        try:
            c.request("GET", path, headers=self.headers)
            r = c.getresponse()
            if r.status != 200:
                r.read()
                yield {"type": "ERROR", "object": {"code": r.status}}
                return
            while not STOP.is_set():
                line = r.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line)
        finally:
            c.close()


class FakeKubelets:
    def __init__(self, api, n, prefix, version, ready_delay):
        self.api = api
        self.nodes = ["%s-%d" % (prefix, i) for i in range(n)]
        self.index = {name: i for i, name in enumerate(self.nodes)}
        self.version = version
        self.ready_delay = ready_delay
        self.next_ip = {name: 2 for name in self.nodes}
        self.ip_of = {}  # pod uid -> its address, kept for the pod's life
        self.seen = {}  # pod uid -> when it was first seen bound (monotonic), for ready delays
        self.timers = set()  # pod uids with a readiness re-check pending

    # ---- Nodes ----------------------------------------------------------------------
    def node_conditions(self, t):
        def cond(typ, st, reason, msg):
            return {"type": typ, "status": st, "reason": reason, "message": msg,
                    "lastHeartbeatTime": t, "lastTransitionTime": t}
        return [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
            cond("Ready", "True", "KubeletReady", "simulated kubelet is ready"),
        ]

    def register(self):
        t = now()
        res = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        for name in self.nodes:
            i = self.index[name]
            node = {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                               "kubernetes.io/arch": "amd64",
                               "greenlight-testbed/simulated": "true"},
                    # A TTL of 0 tells clients not to cache what they read from the node.
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {"podCIDR": "10.244.%d.0/24" % i},
                "status": {
                    "capacity": res, "allocatable": res, "phase": "Running",
                    "conditions": self.node_conditions(t),
                    # Loopback and port 1: a request that makes the apiserver dial a kubelet
                    # (logs, exec, port-forward) is refused at once and never leaves the machine.
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                  {"type": "Hostname", "address": name}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}},
                    "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                                 "kernelVersion": "simulated", "osImage": "simulated",
                                 "containerRuntimeVersion": "fake://0", "kubeletVersion": self.version,
                                 "kubeProxyVersion": self.version, "operatingSystem": "linux",
                                 "architecture": "amd64"},
                },
            }
            # A node that already exists (a restart on the same etcd data) keeps its old
            # status, so the conditions are sent again through the status subresource.
            st, body = self.api.call("POST", "/api/v1/nodes", node)
            if st not in (201, 409):
                log("node create", name, st, body)
            self.heartbeat_node(name)
            self.renew_lease(name, create=True)
        log("registered nodes:", ", ".join(self.nodes))

    def heartbeat_node(self, name):
        patch = {"status": {"conditions": self.node_conditions(now())}}
        st, body = self.api.call("PATCH", "/api/v1/nodes/%s/status" % name, patch,
                                 "application/strategic-merge-patch+json")
        if st != 200:
            log("node status", name, st, body and body.get("message"))

    def renew_lease(self, name, create=False):
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        st, body = self.api.call("PATCH", path + "/" + name, {"spec": spec},
                                 "application/merge-patch+json")
        if st == 404:
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec}
            st, body = self.api.call("POST", path, lease)
        if st not in (200, 201):
            log("lease", name, st, body and body.get("message"))

    def heartbeats(self):
        """Renews the Leases every 10 s and the Ready condition every 60 s.

        The node lifecycle controller marks a node unreachable 40 s after its Lease was last
        renewed, and real kubelets refresh their status at most once a minute when nothing
        changes; these are the same rhythms."""
        last_status = time.monotonic()
        while not STOP.wait(10):
            try:
                for name in self.nodes:
                    self.renew_lease(name)
                if time.monotonic() - last_status > 60:
                    last_status = time.monotonic()
                    for name in self.nodes:
                        self.heartbeat_node(name)
            except Exception as e:  # a failed beat must not end the beating
                log("heartbeat error:", e)

    # ---- Pods -----------------------------------------------------------------------
    def handle_pod(self, pod):
        """Brings one pod's status to what its behaviour says, writing only when it differs.

        Each status write comes back as a watch event; comparing first keeps that echo from
        causing another write."""
        spec, md = pod.get("spec", {}), pod["metadata"]
        node = spec.get("nodeName")
        if node not in self.index:
            return
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        path = "/api/v1/namespaces/%s/pods/%s" % (ns, name)
        if md.get("deletionTimestamp"):
            # The uid precondition keeps this from deleting a new pod of the same name
            # (a StatefulSet's) created since the event was sent.
            opts = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                    "preconditions": {"uid": uid}}
            st, body = self.api.call("DELETE", path, opts)
            if st not in (200, 202, 404, 409):
                log("delete", ns, name, st, body and body.get("message"))
            self.ip_of.pop(uid, None)
            self.seen.pop(uid, None)
            return
        status = pod.get("status", {})
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        behavior, delay = self.behavior_of(pod)
        if behavior == "pending":
            return
        first_seen = self.seen.setdefault(uid, time.monotonic())
        if behavior == "ready" and delay > 0:
            left = first_seen + delay - time.monotonic()
            if left > 0:
                # Running but not yet Ready; a timer looks at the pod again when the delay ends.
                behavior = "starting"
                if uid not in self.timers:
                    self.timers.add(uid)
                    t = threading.Timer(left + 0.05, self.recheck, (ns, name, uid))
                    t.daemon = True
                    t.start()
        want_phase = "Pending" if behavior == "imagepullbackoff" else "Running"
        want_ready = behavior == "ready"
        conds = {c.get("type"): c.get("status") for c in status.get("conditions", []) or []}
        cs = (status.get("containerStatuses") or [{}])[0]
        state_key = next(iter(cs.get("state", {}) or {}), None)
        want_key = {"imagepullbackoff": "waiting", "crashloop": "waiting"}.get(behavior, "running")
        if (status.get("phase") == want_phase and (conds.get("Ready") == "True") == want_ready
                and state_key == want_key and cs.get("image") == spec["containers"][0].get("image")):
            return
        ip = self.ip_of.get(uid)
        if ip is None:
            i = self.index[node]
            k = self.next_ip[node]
            self.next_ip[node] = k + 1 if k < 250 else 2
            ip = self.ip_of[uid] = "10.244.%d.%d" % (i, k)
        t = now()
        started = status.get("startTime") or t

        def cond(typ, ok=True):
            c = {"type": typ, "status": "True" if ok else "False", "lastProbeTime": None,
                 "lastTransitionTime": t}
            if not ok:
                c["reason"] = "ContainersNotReady"
            return c

        def container_status(c):
            base = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                    "ready": want_ready, "restartCount": 0}
            if behavior == "imagepullbackoff":
                base["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                             "message": "simulated: image cannot be pulled"}}
                base["started"] = False
                return base
            base["containerID"] = "fake://%s/%s" % (uid, c["name"])
            if behavior == "crashloop":
                base["restartCount"] = 3
                base["started"] = False
                base["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                             "message": "simulated: back-off restarting failed container"}}
                base["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                                    "startedAt": t, "finishedAt": t}}
                return base
            base["started"] = True
            base["state"] = {"running": {"startedAt": started}}
            return base

        def init_container_status(c):
            # Init containers are shown as having completed, which is what lets a real pod start.
            return {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                    "containerID": "fake://%s/%s" % (uid, c["name"]), "ready": True, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                             "startedAt": started, "finishedAt": started}}}

        new_status = {
            "phase": want_phase,
            "conditions": [cond("Initialized"), cond("Ready", want_ready),
                           cond("ContainersReady", want_ready), cond("PodScheduled")],
            "hostIP": "127.0.0.1", "startTime": started,
            "containerStatuses": [container_status(c) for c in spec.get("containers", [])],
        }
        if want_phase == "Running":
            new_status["podIP"] = ip
            new_status["podIPs"] = [{"ip": ip}]
        if spec.get("initContainers"):
            new_status["initContainerStatuses"] = [init_container_status(c) for c in spec["initContainers"]]
        st, body = self.api.call("PATCH", path + "/status", {"status": new_status},
                                 "application/merge-patch+json")
        if st not in (200, 404, 409):
            log("status", ns, name, st, body and body.get("message"))

    def behavior_of(self, pod):
        """Returns the pod's behaviour (ready, unready, crashloop, imagepullbackoff or pending)
        and its readiness delay in seconds.

        The annotation wins over the image tag, so that a test can give any image a behaviour.
        Without it, any container's image tag that starts with a behaviour's name picks it;
        tags are matched rather than image names because a release changes the tag."""
        ann = pod["metadata"].get("annotations") or {}
        b = ann.get(BEHAVIOR_ANNOTATION, "").strip().lower()
        if b not in BEHAVIORS:
            b = "ready"
            for c in pod["spec"].get("containers", []):
                tag = c.get("image", "").rsplit("/", 1)[-1].partition(":")[2].lower()
                for word in BEHAVIORS:
                    if word != "ready" and tag.startswith(word):
                        b = word
        try:
            delay = float(ann.get(READY_AFTER_ANNOTATION, self.ready_delay))
        except ValueError:
            delay = self.ready_delay
        return b, delay

    def recheck(self, ns, name, uid):
        self.timers.discard(uid)
        try:
            st, pod = self.api.call("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
            if st == 200:
                self.handle_pod(pod)
        except Exception as e:
            log("recheck error:", repr(e))

    def pods_loop(self):
        """Lists the bound pods, then watches them from that list's resourceVersion.

        When the watch ends (the server closes it every few minutes) it resumes from the last
        version seen; when the server says that version is too old, it lists again. This is
        the list-and-watch a kubelet's informer does, without the library."""
        selector = "&fieldSelector=spec.nodeName%21%3D"  # pods bound to some node
        while not STOP.is_set():
            try:
                st, lst = self.api.call("GET", "/api/v1/pods?" + selector[1:])
                if st != 200:
                    log("list pods", st)
                    STOP.wait(1)
                    continue
                for p in lst.get("items", []):
                    self.handle_pod(p)
                rv = lst["metadata"]["resourceVersion"]
                while not STOP.is_set():
                    q = ("/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=240"
                         + selector + "&resourceVersion=" + rv)
                    relist = False
                    for ev in self.api.watch(q):
                        typ, obj = ev.get("type"), ev.get("object", {})
                        if typ == "ERROR":
                            relist = True
                            break
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if typ in ("ADDED", "MODIFIED"):
                            self.handle_pod(obj)
                        elif typ == "DELETED":
                            self.ip_of.pop(obj["metadata"].get("uid"), None)
                            self.seen.pop(obj["metadata"].get("uid"), None)
                    if relist:
                        break
            except Exception as e:  # the loop must outlive any one failed request
                log("pod loop error:", repr(e))
                STOP.wait(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--prefix", default="sim-node")
    ap.add_argument("--kubelet-version", default="v1.20.2-simulated")
    ap.add_argument("--ready-delay", type=float, default=0.0,
                    help="seconds a healthy pod stays Running but not Ready (default 0)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    api = Api(a.server, a.token, a.cafile)
    fk = FakeKubelets(api, a.nodes, a.prefix, a.kubelet_version, a.ready_delay)
    while not STOP.is_set():
        try:
            fk.register()
            break
        except Exception as e:
            log("waiting for the apiserver:", repr(e))
            STOP.wait(1)
    threading.Thread(target=fk.heartbeats, daemon=True).start()
    threading.Thread(target=fk.pods_loop, daemon=True).start()
    STOP.wait()
    log("stopping")


if __name__ == "__main__":
    main()
