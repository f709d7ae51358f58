#!/usr/bin/env bash
# Install the system packages the plugin and its tests need on Debian 12 (bookworm):
# QGIS 3.40 LTR from bookworm-backports, Debian's scientific Python stack, pytest, Xvfb.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

PACKAGES=(qgis qgis-plugin-grass- python3-qgis qgis-providers
          python3-numpy python3-scipy python3-skimage python3-xarray python3-rasterio python3-gdal
          python3-matplotlib python3-dask python3-distributed
          python3-pytest python3-venv python3-pip xvfb xauth)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

have_all() {
    command -v qgis_process >/dev/null 2>&1 || return 1
    command -v xvfb-run >/dev/null 2>&1 || return 1
    /usr/bin/python3 - <<'PY' 2>/dev/null || return 1
import qgis.core, numpy, scipy, skimage, xarray, rasterio, pytest, venv, matplotlib, dask.array, distributed
from osgeo import gdal, ogr
from qgis.core import Qgis
assert Qgis.QGIS_VERSION_INT >= 34000, Qgis.QGIS_VERSION
PY
}

if have_all; then
    echo "install-deps: QGIS and the Python stack are already installed"
    exit 0
fi

if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Reuse the Debian mirror this machine is already configured with.
    uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
    if [ -z "$uri" ]; then
        uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    fi
    if [ -z "$uri" ]; then
        echo "install-deps: cannot find the Debian mirror in /etc/apt/sources.list(.d)" >&2
        exit 1
    fi
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
        | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${PACKAGES[@]}"
