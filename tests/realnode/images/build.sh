#!/usr/bin/env bash
# Build the container images the real-node tier runs, without any registry, once, into
# ${KUBESWARM_CACHE_DIR:-$HOME/.cache/kubeswarm}/realnode-images/<key>/ as docker-archive tars:
#   pause.tar    localhost/kubeswarm-pause:1          the pod sandbox (static C, pause.c)
#   python.tar   localhost/kubeswarm-python:3.11      Debian bookworm python3 (the example target)
#   locust.tar   localhost/kubeswarm-locust:2.47.0    the python image + a venv with locust, user
#                                                     locust (uid 1000), entrypoint `locust`: the
#                                                     shipped Job manifests run it unchanged
# Root file systems come from debootstrap (Debian mirror), locust from the Python package index;
# images are assembled with umoci (OCI layout) and converted with skopeo, nothing is pulled.
# <key> names the versions and a hash of this directory. Needs root (debootstrap, chroot).
# The last line printed is the image directory.
set -euo pipefail

LOCUST_VERSION=2.47.0
SUITE=bookworm
PYTHON_TAG=3.11 # bookworm's python3
MIRROR="${KUBESWARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${KUBESWARM_CACHE_DIR:-$HOME/.cache/kubeswarm}"
start_s=$SECONDS
say() { printf '[realnode images %4ss] %s\n' "$((SECONDS - start_s))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

inputs_hash="$(cd "$here" && cat build.sh pause.c | sha256sum | cut -c1-12)"
key="locust-${LOCUST_VERSION}_${SUITE}_${inputs_hash}"
out="$cache_root/realnode-images/$key"
images=(pause python locust)

have_all() {
    local i
    for i in "${images[@]}"; do [[ -s "$out/$i.tar" ]] || return 1; done
}
if have_all; then
    say "images for $key are already built; nothing to do"
    echo "$out"
    exit 0
fi
[[ $EUID -eq 0 ]] || die "building the images needs root (debootstrap, chroot)"
for tool in debootstrap umoci skopeo gcc; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (tests/realnode/install-packages.sh)"
done
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if have_all; then
    say "images for $key were built by another process meanwhile"
    echo "$out"
    exit 0
fi

work="$(mktemp -d "$out/work.XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
    local m
    # Whatever is still mounted inside the chroot, deepest first, then the work directory.
    for m in $(awk -v r="$rootfs/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$m" || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

image() { # image ROOTFS REF OUT_TAR USER WORKDIR PATH ENTRYPOINT... : one layer, no registry
    local dir="$1" ref="$2" tar="$3" user="$4" workdir="$5" path="$6" layout="$work/oci"
    shift 6
    rm -rf "$layout"
    umoci init --layout "$layout"
    umoci new --image "$layout:img"
    tar --numeric-owner --xattrs -C "$dir" -cf "$work/layer.tar" .
    umoci raw add-layer --image "$layout:img" "$work/layer.tar"
    local args=(--os linux --architecture amd64 --config.user "$user" --config.workingdir "$workdir"
        --config.env "PATH=$path" --config.env "LANG=C.UTF-8" --config.env "PYTHONUNBUFFERED=1")
    local e
    for e in "$@"; do args+=(--config.entrypoint "$e"); done
    umoci config --image "$layout:img" "${args[@]}"
    rm -f "$tar.partial"
    skopeo copy --quiet "oci:$layout:img" "docker-archive:$tar.partial:$ref"
    rm -f "$work/layer.tar"
    mv "$tar.partial" "$tar"
    say "built $ref ($(du -h "$tar" | cut -f1))"
}

# pause ------------------------------------------------------------------------------------
mkdir -p "$work/pause"
gcc -static -Os -s -o "$work/pause/pause" "$here/pause.c"
image "$work/pause" localhost/kubeswarm-pause:1 "$out/pause.tar" 65535 / /usr/bin:/bin /pause

# python (the example target runs `python -u /app/server.py` as uid 65534) --------------------
say "debootstrap $SUITE (minbase + python3) from $MIRROR ..."
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; last lines:\n$(tail -20 "$work/debootstrap.log")"
say "debootstrap done"
slim() {
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*
    # No resolver of this machine inside an image: the kubelet writes the pod's resolv.conf.
    : >"$rootfs/etc/resolv.conf"
}
slim
std_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
image "$rootfs" "localhost/kubeswarm-python:$PYTHON_TAG" "$out/python.tar" 65534 / "$std_path" python3

# locust -------------------------------------------------------------------------------------
# As upstream's image: user locust (uid 1000) with home /home/locust as working directory,
# Locust on PATH, entrypoint `locust`.
chroot "$rootfs" /usr/sbin/useradd --uid 1000 --create-home --shell /bin/sh locust
chroot "$rootfs" /usr/bin/python3 -m venv /opt/venv
# pip runs in the chroot with a clean environment (none of this machine's pip settings), the
# resolver of this machine for the duration of the install, and the CA bundle this machine
# trusts (TLS to the package index may go through an intercepting proxy).
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
ca_bundle="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"
cp "$ca_bundle" "$rootfs/tmp/build-ca.pem"
mount -t proc proc "$rootfs/proc"
say "pip install locust==$LOCUST_VERSION ..."
chroot "$rootfs" /usr/bin/env -i PATH="/opt/venv/bin:$std_path" HOME=/root \
    PIP_CERT=/tmp/build-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    ${PIP_INDEX_URL:+PIP_INDEX_URL="$PIP_INDEX_URL"} \
    /opt/venv/bin/pip install --quiet "locust==$LOCUST_VERSION" >"$work/pip.log" 2>&1 ||
    die "pip install failed; last lines:\n$(tail -20 "$work/pip.log")"
umount "$rootfs/proc"
rm -f "$rootfs/tmp/build-ca.pem"
slim
# Byte-code compiled at build time: uid 1000 cannot write into the venv, so anything left
# uncompiled would be compiled again by every Locust process at every start.
chroot "$rootfs" /opt/venv/bin/python -m compileall -q -j 0 /opt/venv >/dev/null
chroot "$rootfs" /opt/venv/bin/locust --version >&2
image "$rootfs" "localhost/kubeswarm-locust:$LOCUST_VERSION" "$out/locust.tar" 1000 /home/locust \
    "/opt/venv/bin:$std_path" locust
say "done: $(du -sh "$out" | cut -f1); total $((SECONDS - start_s))s"
echo "$out"
