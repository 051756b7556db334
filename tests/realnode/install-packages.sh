#!/usr/bin/env bash
# Install the Debian packages the real-node tier runs (container runtime, CNI plugins, image
# tooling, packet filter and ipsets), but only those missing. Needs root and apt; prints what it
# does.
# Exit status 3 means "cannot install here" (not root, or no apt): the tier then skips with
# the reason printed, rather than failing for a reason that is not the code under test.
set -euo pipefail

packages=(runc containerd containernetworking-plugins debootstrap umoci skopeo iptables conntrack ipset)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "[realnode packages] all present: ${packages[*]}"
    exit 0
fi
if [[ $EUID -ne 0 ]]; then
    echo "[realnode packages] missing ${missing[*]} and not root: install them as root" >&2
    exit 3
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "[realnode packages] missing ${missing[*]} and no apt-get on this machine" >&2
    exit 3
fi
echo "[realnode packages] installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine holds the lock for a while: wait for it rather than fail.
apt_opts=(-o DPkg::Lock::Timeout=600)
apt-get "${apt_opts[@]}" update -qq
# --no-install-recommends: containerd recommends nothing needed here, skopeo pulls a registry
# configuration we never use.
apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged containerd as a system service on install: the tier runs its own,
# with its own root, state and socket, so the packaged one must not hold the default paths.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
    systemctl disable --now containerd >/dev/null 2>&1 || true
fi
echo "[realnode packages] installed"
