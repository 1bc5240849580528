#!/usr/bin/env bash
# Offscreen MuJoCo rendering on a machine without a GPU needs EGL and Mesa's software
# rasteriser (shared/docs/ENVIRONMENT.md). Install them when missing and we are root;
# otherwise say exactly which Debian packages to install.
set -euo pipefail
PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1"

have_libs() {
    ldconfig -p | grep -q 'libEGL.so.1' &&
    ldconfig -p | grep -q 'libEGL_mesa.so.0' &&
    ldconfig -p | grep -q 'libGL.so.1' &&
    ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1
}

if have_libs; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "Installing EGL/Mesa libraries for offscreen rendering: $PKGS"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS
    have_libs && exit 0
fi
echo "ERROR: offscreen rendering needs the EGL/Mesa libraries ($PKGS)." >&2
echo "Install them as root, e.g.: sudo apt-get install -y $PKGS" >&2
exit 1
