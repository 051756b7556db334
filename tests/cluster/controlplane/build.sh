#!/usr/bin/env bash
# Build the control plane used by the cluster test tier, once, into a cache directory:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (module ./kube, k8s.io/kubernetes)
#   etcd                                                      (module ./etcd, go.etcd.io/etcd/server/v3)
#   kwok, metrics-server                                      (go install of their release tags)
#   metrics-adapter                                           (module ./adapter: custom and
#                                                              external metrics, on
#                                                              sigs.k8s.io/custom-metrics-apiserver)
# With the argument `node`, also what the real-node tier runs on this machine, into node-bin/:
#   kubelet, kube-proxy                                       (module ./kube, same build as above)
#   coredns, crictl                                           (go install of their release tags)
#   kube-router-netpol                                        (module ./netpol: kube-router's
#                                                              NetworkPolicy controller alone)
#
# The cache directory is ${KUBESWARM_CACHE_DIR:-$HOME/.cache/kubeswarm}:
#   controlplane/<key>/bin/   the binaries; <key> names every version and a hash of the modules
#   controlplane/<key>/node-bin/  the node binaries (only with `node`); kube-router-netpol has
#                             its own key (kube-router-netpol.key next to it), so a change to
#                             ./netpol rebuilds only it and the cluster tier never depends on it;
#                             metrics-adapter, in bin/, has its own key the same way
#                             (metrics-adapter.key), so ./adapter never rebuilds the control plane
#   go/mod, go/build          GOMODCACHE and GOCACHE, reused across keys and runs
# When the binaries for the key exist this script does nothing but say so. It needs the Go
# toolchain and the Go module proxy, nothing else. The last line printed is the bin directory.
set -euo pipefail

KWOK_VERSION=v0.7.0
METRICS_SERVER_VERSION=v0.8.0
COREDNS_VERSION=v1.14.7
# v1.35.0 is not served by every module proxy; v1.34 speaks the same CRI v1 API.
CRICTL_VERSION=v1.34.0

mode="${1:-controlplane}"
[[ "$mode" == controlplane || "$mode" == node ]] || {
    echo "usage: $0 [node]" >&2
    exit 2
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${KUBESWARM_CACHE_DIR:-$HOME/.cache/kubeswarm}"
start_s=$SECONDS

say() { printf '[controlplane build %4ss] %s\n' "$((SECONDS - start_s))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "the Go toolchain (go) is not on PATH; install Go >= 1.25"

module_version() { # module_version GOMOD MODULE -> the version required in GOMOD
    awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1"
}
KUBE_VERSION="$(module_version "$here/kube/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
[[ -n "$KUBE_VERSION" ]] || die "cannot read the k8s.io/kubernetes version from kube/go.mod"
[[ -n "$ETCD_VERSION" ]] || die "cannot read the go.etcd.io/etcd/server/v3 version from etcd/go.mod"
KUBE_ROUTER_VERSION="$(module_version "$here/netpol/go.mod" github.com/cloudnativelabs/kube-router/v2)"
[[ -n "$KUBE_ROUTER_VERSION" ]] || die "cannot read the kube-router version from netpol/go.mod"
CMA_VERSION="$(module_version "$here/adapter/go.mod" sigs.k8s.io/custom-metrics-apiserver)"
[[ -n "$CMA_VERSION" ]] || die "cannot read the custom-metrics-apiserver version from adapter/go.mod"
[[ "$KUBE_VERSION" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected kubernetes version $KUBE_VERSION"
kube_major="${BASH_REMATCH[1]}"
kube_minor="${BASH_REMATCH[2]}"

go_version="$(go env GOVERSION)"
# The key changes with any input of the build: versions, the module files, this script, Go.
inputs_hash="$(
    cd "$here" && {
        printf '%s\n' "$go_version" "$KWOK_VERSION" "$METRICS_SERVER_VERSION"
        printf '%s\n' "$COREDNS_VERSION" "$CRICTL_VERSION"
        cat build.sh kube/go.mod kube/go.sum kube/*/main.go etcd/go.mod etcd/go.sum etcd/main.go
    } | sha256sum | cut -c1-12
)"
key="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_ms-${METRICS_SERVER_VERSION}_${inputs_hash}"
key_dir="$cache_root/controlplane/$key"
bin_dir="$key_dir/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok metrics-server)
node_bin_dir="$key_dir/node-bin"
node_binaries=(kubelet kube-proxy coredns crictl)
netpol_key="kube-router-${KUBE_ROUTER_VERSION}_$(
    cd "$here" && {
        printf '%s\n' "$go_version"
        cat netpol/go.mod netpol/go.sum netpol/main.go
    } | sha256sum | cut -c1-12
)"

adapter_key="custom-metrics-apiserver-${CMA_VERSION}_$(
    cd "$here" && {
        printf '%s\n' "$go_version"
        cat adapter/go.mod adapter/go.sum adapter/main.go
    } | sha256sum | cut -c1-12
)"

have_adapter() {
    [[ -x "$bin_dir/metrics-adapter" ]] &&
        [[ "$(cat "$bin_dir/metrics-adapter.key" 2>/dev/null)" == "$adapter_key" ]]
}

have_netpol() {
    [[ -x "$node_bin_dir/kube-router-netpol" ]] &&
        [[ "$(cat "$node_bin_dir/kube-router-netpol.key" 2>/dev/null)" == "$netpol_key" ]]
}

have_all() {
    local b
    for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
    [[ "$mode" == controlplane ]] && { have_adapter; return; }
    for b in "${node_binaries[@]}"; do [[ -x "$node_bin_dir/$b" ]] || return 1; done
    have_netpol
}

result() { # the last line printed: where the caller finds the binaries
    if [[ "$mode" == node ]]; then echo "$node_bin_dir"; else echo "$bin_dir"; fi
}

if have_all; then
    say "binaries for $key ($mode) are already built; nothing to do"
    result
    exit 0
fi

mkdir -p "$key_dir" "$cache_root/go/mod" "$cache_root/go/build"
# One builder at a time per key (a second caller waits, then finds the binaries).
exec 9>"$key_dir/.lock"
say "waiting for the build lock $key_dir/.lock"
flock 9
if have_all; then
    say "binaries for $key ($mode) were built by another process meanwhile"
    result
    exit 0
fi

export GOMODCACHE="$cache_root/go/mod"
export GOCACHE="$cache_root/go/build"
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
export GOWORK=off

say "building into $key_dir with $go_version (GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE)"

step() { # step NAME COMMAND... : run a build step with its timing
    local name="$1" t0=$SECONDS
    shift
    say "building $name ..."
    if ! "$@"; then
        die "building $name failed (command: $*); see the output above"
    fi
    say "built $name in $((SECONDS - t0))s"
}

version_pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $version_pkg.gitVersion=$KUBE_VERSION -X $version_pkg.gitMajor=$kube_major"
kube_ldflags+=" -X $version_pkg.gitMinor=$kube_minor -X $version_pkg.gitTreeState=clean"
kube_ldflags+=" -X $version_pkg.buildDate=1970-01-01T00:00:00Z"

build_controlplane() {
    local tmp_bin="$key_dir/bin.partial" b
    rm -rf "$tmp_bin"
    mkdir -p "$tmp_bin"
    # Downloads first, so a build failure and a download failure read differently.
    step "module downloads (kube)" bash -c "cd '$here/kube' && go mod download"
    step "module downloads (etcd)" bash -c "cd '$here/etcd' && go mod download"
    # The three kube mains in one invocation: the packages they share compile once. Named, not
    # ./..., because the node's mains live in the same module and the cluster tier needs none.
    step "kube-apiserver, kube-controller-manager, kube-scheduler ($KUBE_VERSION)" \
        bash -c "cd '$here/kube' && go build -p 2 -trimpath -ldflags '$kube_ldflags' -o '$tmp_bin/' \
            ./kube-apiserver ./kube-controller-manager ./kube-scheduler"
    step "etcd ($ETCD_VERSION)" \
        bash -c "cd '$here/etcd' && go build -p 2 -trimpath -ldflags '-s -w' -o '$tmp_bin/etcd' ."
    step "kwok ($KWOK_VERSION)" \
        env GOBIN="$tmp_bin" go install -p 2 -trimpath -ldflags '-s -w' \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    step "metrics-server ($METRICS_SERVER_VERSION)" \
        env GOBIN="$tmp_bin" go install -p 2 -trimpath -ldflags '-s -w' \
        "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"

    for b in "${binaries[@]}"; do
        [[ -x "$tmp_bin/$b" ]] || die "the build finished but $tmp_bin/$b is missing"
    done
    rm -rf "$bin_dir"
    mv "$tmp_bin" "$bin_dir"
}

build_node() {
    local tmp_bin="$key_dir/node-bin.partial" b
    rm -rf "$tmp_bin"
    mkdir -p "$tmp_bin"
    # Same module, flags and GOCACHE as the control plane: the packages kubelet and kube-proxy
    # share with it (client-go, apiserver libraries, ...) are not compiled again.
    step "kubelet, kube-proxy ($KUBE_VERSION)" \
        bash -c "cd '$here/kube' && go build -p 2 -trimpath -ldflags '$kube_ldflags' -o '$tmp_bin/' \
            ./kubelet ./kube-proxy"
    step "coredns ($COREDNS_VERSION)" \
        env GOBIN="$tmp_bin" go install -p 2 -trimpath -ldflags '-s -w' \
        "github.com/coredns/coredns@$COREDNS_VERSION"
    step "crictl ($CRICTL_VERSION)" \
        env GOBIN="$tmp_bin" go install -p 2 -trimpath -ldflags '-s -w' \
        "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
    for b in "${node_binaries[@]}"; do
        [[ -x "$tmp_bin/$b" ]] || die "the build finished but $tmp_bin/$b is missing"
    done
    rm -rf "$node_bin_dir"
    mv "$tmp_bin" "$node_bin_dir"
}

build_netpol() {
    local tmp="$node_bin_dir/kube-router-netpol.partial"
    # Its go.mod requires the modules it shares with ./kube at ./kube's versions: client-go and
    # apimachinery come from the GOCACHE entries of the builds above; kube-router compiles.
    step "module downloads (netpol)" bash -c "cd '$here/netpol' && go mod download"
    step "kube-router-netpol (kube-router $KUBE_ROUTER_VERSION)" \
        bash -c "cd '$here/netpol' && go build -p 2 -trimpath -ldflags '-s -w' -o '$tmp' ."
    mv "$tmp" "$node_bin_dir/kube-router-netpol"
    echo "$netpol_key" >"$node_bin_dir/kube-router-netpol.key"
}

build_adapter() {
    local tmp="$bin_dir/metrics-adapter.partial"
    # Its own k8s.io library versions (those custom-metrics-apiserver was released with): the
    # apiserver libraries compile once more, into GOCACHE, on the first build only.
    step "module downloads (adapter)" bash -c "cd '$here/adapter' && go mod download"
    step "metrics-adapter (custom-metrics-apiserver $CMA_VERSION)" \
        bash -c "cd '$here/adapter' && go build -p 2 -trimpath -ldflags '-s -w' -o '$tmp' ."
    mv "$tmp" "$bin_dir/metrics-adapter"
    echo "$adapter_key" >"$bin_dir/metrics-adapter.key"
}

have_controlplane() {
    local b
    for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
}

have_node() {
    local b
    for b in "${node_binaries[@]}"; do [[ -x "$node_bin_dir/$b" ]] || return 1; done
}

have_controlplane || build_controlplane
# The real-node tier does not start the adapter: only the cluster tier's build waits for it.
[[ "$mode" == node ]] || have_adapter || build_adapter
if [[ "$mode" == node ]]; then
    have_node || build_node
    have_netpol || build_netpol
fi
say "done: $(du -sh "$key_dir" | cut -f1) of binaries; total $((SECONDS - start_s))s"
result
