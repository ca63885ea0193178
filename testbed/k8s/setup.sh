#!/usr/bin/env bash
# Builds the Kubernetes test bed's binaries into a cache directory, from Debian's package
# registry only.
#
#   testbed/k8s/setup.sh [CACHE]
#
# CACHE defaults to $GREENLIGHT_K8S_CACHE, else /var/cache/greenlight-k8s. It lives outside
# the work tree on purpose: the build takes minutes of CPU and about 2 GiB, and a fixed path
# lets every clone and every CI run on the same machine reuse it. Afterwards CACHE/bin holds:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler
#       Kubernetes v1.20.2, compiled here from Debian bookworm's source package "kubernetes"
#       (the whole upstream tree, with vendor/) by Debian's Go 1.19.
#   etcd     Debian's etcd-server 3.4, copied.
#   kubectl  Debian's kubernetes-client 1.20.2, unpacked rather than installed, because a
#            machine may already have a /usr/bin/kubectl that belongs to another package.
#
# The script is idempotent: once the stamp file exists and every binary is in place, a second
# run prints one line and exits. It installs Debian packages with apt-get (through sudo when
# not run as root) and adds one apt sources file for source packages (deb-src) of the mirrors
# the machine already uses. Nothing is fetched from anywhere else.
#
# Environment:
#   GREENLIGHT_K8S_CACHE  default cache directory when none is given as an argument.
#   GREENLIGHT_K8S_JOBS   parallelism of `go build -p` (default: the number of cores). On a
#                         machine shared with other builds, use 1 and run the script under
#                         `nice -n 19`; niceness is inherited by every compile.
#   GREENLIGHT_K8S_CLEAN  when 1, deletes the source tree and the Go build cache after a
#                         successful build (about 1.7 GiB); a later rebuild starts from zero.
set -euo pipefail

CACHE=${1:-${GREENLIGHT_K8S_CACHE:-/var/cache/greenlight-k8s}}
JOBS=${GREENLIGHT_K8S_JOBS:-$(nproc)}

# The source package version that was tested, and the upstream release it really carries
# (Debian kept the 1.20.5 version number after going back to upstream 1.20.2).
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_VERSION=v1.20.2
K8S_DIR=kubernetes-1.20.2
BINS=(kube-apiserver kube-controller-manager kube-scheduler)

log() { echo "setup.sh [$(date +%T)] $*" >&2; }

SUDO=()
if [[ $(id -u) != 0 ]]; then
  SUDO=(sudo)
fi

# The cache directory may sit under /var/cache, which only root can write. Create it through
# sudo in that case and hand it to the current user, so that the build itself runs unprivileged.
if ! mkdir -p "$CACHE" 2>/dev/null; then
  "${SUDO[@]}" mkdir -p "$CACHE"
  "${SUDO[@]}" chown "$(id -u):$(id -g)" "$CACHE"
fi
CACHE=$(cd "$CACHE" && pwd)
STAMP=$CACHE/.greenlight-k8s-$K8S_DEB_VERSION-r1

# A complete cache is the stamp plus every binary; anything less is finished on this run.
complete() {
  [[ -f $STAMP ]] || return 1
  local b
  for b in "${BINS[@]}" etcd kubectl; do
    [[ -x $CACHE/bin/$b ]] || return 1
  done
}
if complete; then
  log "cached: $CACHE/bin is complete ($(cat "$STAMP"))"
  exit 0
fi
T_START=$(date +%s)
mkdir -p "$CACHE/bin" "$CACHE/debsrc" "$CACHE/debs" "$CACHE/logs" "$CACHE/tmp"

# The build needs about 2.5 GiB in CACHE at its peak (the Go build cache, the unpacked tree and
# the compiler's temporary files, which are kept in CACHE too), and Go fails in the middle with
# a flood of "no space left on device" when it runs out. Saying so up front is kinder.
free_kib=$(df -Pk "$CACHE" | awk 'NR == 2 { print $4 }')
if (( free_kib < 3 * 1024 * 1024 )); then
  log "only $(( free_kib / 1024 )) MiB free under $CACHE; the build needs about 3 GiB"
  exit 1
fi

# ---- 1. Debian packages ----------------------------------------------------------------
# golang-1.19-go is the only Go in bookworm and is new enough for Kubernetes 1.20.
# golang-github-modern-go-reflect2-dev provides reflect2 1.0.2 as source (see step 3).
# The lock timeout makes apt wait for another apt run on the same machine instead of failing.
export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600)
need_pkgs=()
for p in golang-1.19-go etcd-server golang-github-modern-go-reflect2-dev openssl curl ca-certificates python3; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    need_pkgs+=("$p")
  fi
done

# `apt-get source` needs deb-src entries. When the machine has none, add them for the very
# mirrors and suites it already uses, so no new origin is introduced.
SRC_LIST=/etc/apt/sources.list.d/greenlight-k8s-debsrc.sources
updated=0
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding deb-src entries for the machine's own Debian mirrors ($SRC_LIST)"
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      | "${SUDO[@]}" tee "$SRC_LIST" >/dev/null
  else
    grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | sed 's/^deb /deb-src /' \
      | "${SUDO[@]}" tee "${SRC_LIST%.sources}.list" >/dev/null
  fi
  "${APT[@]}" update -qq
  updated=1
fi
if (( ${#need_pkgs[@]} )); then
  if (( !updated )); then
    "${APT[@]}" update -qq
    updated=1
  fi
  log "apt-get install ${need_pkgs[*]}"
  "${APT[@]}" install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
GO=/usr/lib/go-1.19/bin/go
if [[ ! -x $GO ]]; then
  log "$GO is missing after installing golang-1.19-go"
  exit 1
fi

# ---- 2. The Kubernetes source package (34 MB) and the kubectl package ---------------------
# The version is pinned to the one tested. Debian replaces a package on its mirror when it
# publishes a security update (+deb12uN), so when the pin is no longer served the current
# bookworm version is taken instead; the check on the tarball's name below makes sure it still
# carries upstream 1.20.2.
ORIG=$CACHE/debsrc/kubernetes_${K8S_DEB_VERSION%%-*}.orig.tar.gz
apt_source() {
  # apt warns that, as root, it downloads unsandboxed; that warning is expected here.
  (cd "$CACHE/debsrc" && "${APT[@]}" source -qq --download-only "$1" 2>&1 | grep -v unsandboxed >&2) || true
}
if [[ ! -s $ORIG ]]; then
  log "apt-get source --download-only kubernetes=$K8S_DEB_VERSION"
  apt_source "kubernetes=$K8S_DEB_VERSION"
  if [[ ! -s $ORIG ]]; then
    if (( !updated )); then
      "${APT[@]}" update -qq
      updated=1
    fi
    log "the pinned source is not served any more; taking bookworm's current kubernetes source"
    apt_source kubernetes
  fi
  if [[ ! -s $ORIG ]]; then
    log "no $ORIG: Debian's kubernetes source package no longer carries upstream 1.20.2"
    exit 1
  fi
fi
if [[ ! -x $CACHE/bin/kubectl ]]; then
  log "apt-get download kubernetes-client (unpacked into the cache, not installed)"
  rm -f "$CACHE"/debs/kubernetes-client_*.deb
  (cd "$CACHE/debs" && { apt-get download -qq "kubernetes-client=$K8S_DEB_VERSION" 2>/dev/null \
                         || apt-get download -qq kubernetes-client; })
  rm -rf "$CACHE/kubectl-root"
  dpkg-deb -x "$CACHE"/debs/kubernetes-client_*.deb "$CACHE/kubectl-root"
  ln -sfn ../kubectl-root/usr/bin/kubectl "$CACHE/bin/kubectl"
fi
# A copy rather than a link, so that removing etcd-server later does not break the cache.
install -m 0755 /usr/bin/etcd "$CACHE/bin/etcd"

# ---- 3. Unpack, and replace the vendored reflect2 -----------------------------------------
# Kubernetes 1.20 vendors github.com/modern-go/reflect2 1.0.1, which corrupts memory when built
# with Go 1.18 or later (json-iterator's map iteration relies on runtime internals that changed).
# Debian's 1.0.2 fixes it with the same API, so its sources replace the vendored ones.
SRC=$CACHE/src/$K8S_DIR
if [[ ! -f $SRC/.greenlight-prepared ]]; then
  log "unpacking $(basename "$ORIG")"
  rm -rf "$SRC"
  mkdir -p "$CACHE/src"
  tar xzf "$ORIG" -C "$CACHE/src"
  R2=$SRC/vendor/github.com/modern-go/reflect2
  rm -f "$R2"/*.go "$R2"/*.s
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go \
     /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R2"/
  rm -f "$R2"/*_test.go
  touch "$SRC/.greenlight-prepared"
fi
# Kubernetes 1.20 builds in GOPATH mode (its hack/lib/init.sh sets GO111MODULE=off), so the
# tree must appear as $GOPATH/src/k8s.io/kubernetes.
GOPATH_K8S=$CACHE/gopath
mkdir -p "$GOPATH_K8S/src/k8s.io"
ln -sfn "$SRC" "$GOPATH_K8S/src/k8s.io/kubernetes"

# ---- 4. Compile -------------------------------------------------------------------------
# Everything is static (CGO off) and offline (GOPROXY=off; GOPATH mode reads only vendor/).
# GOMAXPROCS follows the job count, because the compiler also runs its own back end in
# parallel; -p alone would still use every core inside one compile.
# GOTMPDIR keeps the compiler's temporary files in CACHE, on the disk that was checked above,
# rather than in /tmp, which may be a small tmpfs.
export GOPATH=$GOPATH_K8S GOCACHE=$CACHE/gocache GOTMPDIR=$CACHE/tmp GO111MODULE=off GOFLAGS='' \
  CGO_ENABLED=0 GOPROXY=off GOTOOLCHAIN=local GOMAXPROCS=${GOMAXPROCS:-$JOBS}
# The version the binaries report is set the way upstream's release build sets it, so that
# `kubectl version` and the apiserver's /version say v1.20.2 rather than v0.0.0.
LD="-s -w"
for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version \
         k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  LD="$LD -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=clean"
  LD="$LD -X $p.gitCommit=debian-$K8S_DEB_VERSION -X $p.buildDate=1970-01-01T00:00:00Z"
done
cd "$GOPATH_K8S/src/k8s.io/kubernetes"

# The upstream tarball lacks the one generated file that `make` writes before any build,
# pkg/generated/openapi/zz_generated.openapi.go. It is generated here with the openapi-gen
# from vendor/, from the same inputs as upstream's Makefile.generated_files: every package
# outside vendor/ (staging/ counted as vendor/) that carries a +k8s:openapi-gen= tag.
OPENAPI_OUT=pkg/generated/openapi/zz_generated.openapi.go
if [[ ! -s $OPENAPI_OUT ]]; then
  log "generating $OPENAPI_OUT with openapi-gen from vendor/"
  mkdir -p "$CACHE/tools"
  "$GO" build -p "$JOBS" -o "$CACHE/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  mapfile -t dirs < <(find -H . \( -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) \) \
                        -type f -name '*.go' \
                      | sed 's|^./staging/src|vendor|; s|/[^/]*$||; s|^./||' | LC_ALL=C sort -u)
  mapfile -t tagged < <(find "${dirs[@]}" -maxdepth 1 -type f -name '*.go' -print0 \
                        | xargs -0 grep --color=never -l '^// *+k8s:' \
                        | grep -v -E '^vendor/k8s.io/(code-generator|sample-apiserver)/')
  input=$(grep --color=never -l '+k8s:openapi-gen=' "${tagged[@]}" | xargs -n1 dirname | LC_ALL=C sort -u \
          | sed 's|^|k8s.io/kubernetes/|' | paste -sd,)
  "$CACHE/tools/openapi-gen" --logtostderr=false -i "$input" \
    -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$CACHE/logs/openapi-violations.report"
  if [[ ! -s $OPENAPI_OUT ]]; then
    log "openapi-gen produced nothing"
    exit 1
  fi
  # openapi-gen reports every API rule the types break. Upstream keeps the expected list in
  # the tree and its build fails when the report differs; a difference here would mean the
  # inputs above are not the ones upstream used, and the served OpenAPI would differ.
  if ! diff <(LC_ALL=C sort api/api-rules/violation_exceptions.list) \
            <(LC_ALL=C sort "$CACHE/logs/openapi-violations.report") >&2; then
    rm -f "$OPENAPI_OUT"
    log "openapi-gen's API rule report differs from api/api-rules/violation_exceptions.list"
    exit 1
  fi
fi

# The apiserver comes first and takes most of the time; the other two reuse its compiled
# packages from the Go build cache. A marker per binary lets an interrupted run resume.
for b in "${BINS[@]}"; do
  if [[ -x $CACHE/bin/$b && -f $CACHE/bin/.$b.built ]]; then
    continue
  fi
  log "go build $b (-p $JOBS)"
  t0=$(date +%s)
  "$GO" build -p "$JOBS" -trimpath -ldflags "$LD" -o "$CACHE/bin/$b.tmp" "./cmd/$b"
  mv "$CACHE/bin/$b.tmp" "$CACHE/bin/$b"
  touch "$CACHE/bin/.$b.built"
  log "built $b in $(( $(date +%s) - t0 )) s"
done
cd "$CACHE"
rm -rf "$CACHE/tmp"

for b in "${BINS[@]}"; do
  "$CACHE/bin/$b" --version
done
"$CACHE/bin/etcd" --version | sed -n 1p
"$CACHE/bin/kubectl" version --client --short 2>/dev/null || "$CACHE/bin/kubectl" version --client
if [[ ${GREENLIGHT_K8S_CLEAN:-0} == 1 ]]; then
  log "GREENLIGHT_K8S_CLEAN=1: removing the source tree and the Go build cache"
  rm -rf "$CACHE/src" "$CACHE/gopath" "$CACHE/gocache"
fi
echo "$K8S_VERSION from Debian src:kubernetes $K8S_DEB_VERSION, built $(date -u +%FT%TZ)" >"$STAMP"
log "done in $(( $(date +%s) - T_START )) s; cache: $(du -sh "$CACHE" | cut -f1)"
