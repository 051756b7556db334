#!/usr/bin/env bash
# Build kubeswarm's own image for the real-node tier: the Locust image of build.sh plus kubeswarm
# installed from this checkout as a wheel into the same venv. One image serves a detached run's
# three roles: controller (`kubeswarm`), Locust master and worker (entrypoint `locust`, kept).
# No registry: skopeo turns the Locust image's docker-archive into an OCI layout, umoci unpacks
# it, pip installs into the root file system in a chroot, umoci repacks the change as one layer.
# Two layers, cached apart under ${KUBESWARM_CACHE_DIR:-$HOME/.cache/kubeswarm}/realnode-images/:
#   kubeswarm-deps-<key>/   kubeswarm's dependencies (key: the Locust image, pyproject's list)
#   kubeswarm-<key>/        kubeswarm itself (key: + the hash of the sources that go in the wheel)
# so a change of kubeswarm's code rebuilds only the small top layer.
# Usage: build-kubeswarm.sh LOCUST_IMAGE_DIR (the directory build.sh printed). Needs root.
# The last line printed is the image's tar; the file kubeswarm.ref next to it holds its name.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
locust_dir="${1:?usage: build-kubeswarm.sh LOCUST_IMAGE_DIR}"
cache_root="${KUBESWARM_CACHE_DIR:-$HOME/.cache/kubeswarm}"
python="${KUBESWARM_PYTHON:-$repo/.venv/bin/python}"
start_s=$SECONDS
say() { printf '[kubeswarm image %4ss] %s\n' "$((SECONDS - start_s))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[[ -s "$locust_dir/locust.tar" ]] || die "no locust.tar in $locust_dir (run build.sh first)"
sources_hash="$(cd "$repo" && find harness analysis k8s-jobs locustfiles -type f \
    -not -path '*/__pycache__/*' -not -name '*.pyc' | LC_ALL=C sort |
    xargs sha256sum | cat - pyproject.toml README.md "$here/build-kubeswarm.sh" | sha256sum |
    cut -c1-12)"
# Only the dependency list keys this layer: the rest of pyproject.toml (tool settings) changes
# more often and changes nothing in it.
deps_hash="$( (basename "$locust_dir"; sed -n '/^dependencies = \[/,/^\]/p' "$repo/pyproject.toml") |
    sha256sum | cut -c1-12)"
deps_dir="$cache_root/realnode-images/kubeswarm-deps-$deps_hash"
out="$cache_root/realnode-images/kubeswarm-$deps_hash-$sources_hash"
ref="localhost/kubeswarm:$sources_hash"
if [[ -s "$out/kubeswarm.tar" ]]; then
    say "$ref is already built; nothing to do"
    echo "$out/kubeswarm.tar"
    exit 0
fi
[[ $EUID -eq 0 ]] || die "building the image needs root (umoci unpack, chroot)"
for tool in umoci skopeo; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (tests/realnode/install-packages.sh)"
done
mkdir -p "$out" "$deps_dir"
exec 9>"$cache_root/realnode-images/.kubeswarm.lock"
flock 9

work="$(mktemp -d "$out/work.XXXXXX")"
cleanup() {
    local m
    for m in $(awk -v r="$work/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$m" || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

say "building the kubeswarm wheel from $repo ..."
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" "$repo" >"$work/wheel.log" 2>&1 ||
    die "pip wheel failed; last lines:\n$(tail -20 "$work/wheel.log")"
wheel="$(ls "$work/wheel"/kubeswarm-*.whl)"

# pip_in ROOTFS ARGS...: pip of the image's venv in a chroot, with this machine's resolver and
# CA bundle for the duration (TLS to the package index may go through an intercepting proxy).
pip_in() {
    local rootfs="$1"
    shift
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
    cp "${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}" \
        "$rootfs/tmp/build-ca.pem"
    cp "$wheel" "$rootfs/tmp/"
    mount -t proc proc "$rootfs/proc"
    local rc=0
    chroot "$rootfs" /usr/bin/env -i PATH="/opt/venv/bin:/usr/bin:/bin" HOME=/root \
        PIP_CERT=/tmp/build-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
        ${PIP_INDEX_URL:+PIP_INDEX_URL="$PIP_INDEX_URL"} \
        /opt/venv/bin/pip install --quiet "$@" >"$work/pip.log" 2>&1 || rc=$?
    umount "$rootfs/proc"
    rm -f "$rootfs/tmp/build-ca.pem" "$rootfs/tmp/$(basename "$wheel")"
    : >"$rootfs/etc/resolv.conf"
    ((rc == 0)) || die "pip install failed; last lines:\n$(tail -20 "$work/pip.log")"
    # uid 1000 cannot write into the venv: compile now, not at every start.
    chroot "$rootfs" /opt/venv/bin/python -m compileall -q -j 0 /opt/venv >/dev/null || true
}

if [[ ! -d "$deps_dir/oci" ]]; then
    say "dependencies layer: unpacking the Locust image ..."
    skopeo copy --quiet "docker-archive:$locust_dir/locust.tar" "oci:$work/deps-oci:img"
    umoci unpack --image "$work/deps-oci:img" "$work/deps-bundle" >/dev/null
    say "pip install kubeswarm's dependencies ..."
    pip_in "$work/deps-bundle/rootfs" "/tmp/$(basename "$wheel")"
    chroot "$work/deps-bundle/rootfs" /opt/venv/bin/pip uninstall --quiet --yes kubeswarm
    umoci repack --image "$work/deps-oci:img" "$work/deps-bundle"
    rm -rf "$deps_dir/oci.partial"
    mv "$work/deps-oci" "$deps_dir/oci.partial"
    mv "$deps_dir/oci.partial" "$deps_dir/oci"
    rm -rf "$work/deps-bundle"
    say "dependencies layer cached in $deps_dir"
fi

say "kubeswarm layer ..."
cp -a "$deps_dir/oci" "$work/oci"
umoci unpack --image "$work/oci:img" "$work/bundle" >/dev/null
pip_in "$work/bundle/rootfs" --no-deps "/tmp/$(basename "$wheel")"
chroot "$work/bundle/rootfs" /opt/venv/bin/kubeswarm --version >&2
umoci repack --image "$work/oci:img" "$work/bundle"
skopeo copy --quiet "oci:$work/oci:img" "docker-archive:$out/kubeswarm.tar.partial:$ref"
mv "$out/kubeswarm.tar.partial" "$out/kubeswarm.tar"
echo "$ref" >"$out/kubeswarm.ref"
# Each build of changed sources is a new 700 MB tar: keep only this one and its layer's cache.
for old in "$cache_root"/realnode-images/kubeswarm-*; do
    [[ "$old" == "$out" || "$old" == "$deps_dir" ]] || rm -rf "$old"
done
say "built $ref ($(du -h "$out/kubeswarm.tar" | cut -f1)); total $((SECONDS - start_s))s"
echo "$out/kubeswarm.tar"
