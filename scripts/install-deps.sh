#!/usr/bin/env bash
# Install the system packages the plugin and its tests need on Debian 12 (bookworm) or 13 (trixie):
# QGIS, Debian's scientific Python stack, pytest, Xvfb. Which QGIS:
#   Debian 13: 3.44 LTR from trixie-backports; QGIS_SOURCE=main takes trixie's own 3.40 LTR.
#   Debian 12: 3.40 LTR from bookworm-backports (bookworm's own QGIS, 3.22, is too old).
# The backports suite is added with the Debian mirror apt already uses (nothing else is changed;
# the source is removed again when the installation fails). Idempotent: does nothing when
# everything is already there. Every failure ends with one message saying what to do.
set -Eeuo pipefail

PACKAGES=(qgis qgis-plugin-grass- python3-qgis qgis-providers
          python3-numpy python3-scipy python3-skimage python3-xarray python3-rasterio python3-gdal
          python3-matplotlib python3-dask python3-distributed
          python3-pytest python3-venv python3-pip xvfb xauth)

say() { echo "install-deps: $*" >&2; }
die() { say "$*"; exit 1; }
# Anything failing that is not handled below still says where and what (set -e alone is silent).
trap 'rc=$?; say "failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run 'make deps' as root or install sudo"
    SUDO="sudo"
fi

[ -r /etc/os-release ] || die "no /etc/os-release: this script supports Debian 12 and 13 only"
# shellcheck disable=SC1091
ID=$(. /etc/os-release && echo "${ID:-}")
CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
PRETTY=$(. /etc/os-release && echo "${PRETTY_NAME:-unknown}")
[ "$ID" = debian ] || die "this is $PRETTY; supported are Debian 12 (bookworm) and 13 (trixie). Install QGIS >= 3.40 with numpy, scipy, pytest and xvfb yourself"

QGIS_SOURCE_SET=${QGIS_SOURCE:+yes}
case "$CODENAME" in
    bookworm)
        QGIS_SOURCE=${QGIS_SOURCE:-backports}
        [ "$QGIS_SOURCE" = backports ] || die "QGIS_SOURCE=$QGIS_SOURCE: Debian 12's own QGIS (3.22) is too old; use QGIS_SOURCE=backports (3.40)"
        WANT=3.40 ;;
    trixie)
        QGIS_SOURCE=${QGIS_SOURCE:-backports}
        case "$QGIS_SOURCE" in
            backports) WANT=3.44 ;;
            main) WANT=3.40 ;;
            *) die "QGIS_SOURCE=$QGIS_SOURCE: use main (trixie's QGIS 3.40) or backports (QGIS 3.44)" ;;
        esac ;;
    *) die "this is $PRETTY (codename '${CODENAME:-none}'); supported are Debian 12 (bookworm) and 13 (trixie)" ;;
esac
if [ "$QGIS_SOURCE" = backports ]; then SUITE="$CODENAME-backports"; else SUITE="$CODENAME"; fi

# Prints what is missing (nothing when all is there). With QGIS_SOURCE given, the installed QGIS
# must be that series; otherwise any installed QGIS >= 3.40 is kept.
missing() {
    local want=""
    [ -n "$QGIS_SOURCE_SET" ] && want=$WANT
    command -v qgis_process >/dev/null 2>&1 || echo "qgis_process"
    command -v xvfb-run >/dev/null 2>&1 || echo "xvfb-run"
    [ -x /usr/bin/python3 ] || { echo "/usr/bin/python3"; return; }
    /usr/bin/python3 - "$want" <<'PY' 2>&1 || true
import importlib, sys
gone = []
for name in ("qgis.core", "numpy", "scipy", "skimage", "xarray", "rasterio", "pytest", "venv",
             "matplotlib", "dask.array", "distributed", "osgeo.gdal", "osgeo.ogr"):
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 -- any import failure means: not usable
        gone.append(f"python module {name} ({exc.__class__.__name__}: {exc})")
if "qgis.core" not in " ".join(gone):
    from qgis.core import Qgis
    version = Qgis.QGIS_VERSION.split("-")[0]
    series = ".".join(version.split(".")[:2])
    if Qgis.QGIS_VERSION_INT < 34000:
        gone.append(f"QGIS >= 3.40 (installed: {version})")
    elif sys.argv[1] and series != sys.argv[1]:
        gone.append(f"QGIS {sys.argv[1]} (installed: {version})")
print("\n".join(gone))
PY
}

installed_qgis() {
    dpkg-query -W -f='${db:Status-Abbrev} ${Version}' python3-qgis 2>/dev/null | awk '$1 == "ii" { print $2 }' || true
}

gaps=$(missing)
if [ -z "$gaps" ]; then
    say "QGIS $(installed_qgis) and the Python stack are already installed"
    exit 0
fi
say "missing: $(echo "$gaps" | paste -sd ';' | sed 's/;/; /g')"

have=$(installed_qgis)
# Not asked for a source: an installed QGIS 3.40 on Debian 13 stays (only what is missing is added).
if [ -z "$QGIS_SOURCE_SET" ] && [ "$CODENAME" = trixie ] && [[ "$have" == 3.40.* ]]; then
    QGIS_SOURCE=main WANT=3.40 SUITE=$CODENAME
fi
# A newer QGIS than the one asked for is not downgraded here (apt would leave a mix of versions).
if [ -n "$have" ] && dpkg --compare-versions "$have" ge "$(echo "$WANT" | awk -F. '{print $1"."$2+1}')"; then
    die "QGIS $have is installed but QGIS_SOURCE=$QGIS_SOURCE asks for $WANT: remove it first (apt-get remove 'libqgis*' python3-qgis qgis-providers qgis), then run this again"
fi

# Suites named in apt's sources (deb822 *.sources and one-line *.list), comments and disabled
# stanzas left out; each line "URI SUITE".
apt_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'function flush() { if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[ \t]*no/) {
                 n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
                 for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (u[i] != "" && s[j] != "") print u[i], s[j] }
               types = uris = suites = enabled = "" }
             /^[ \t]*#/ { next }
             /^[ \t]*$/ { flush(); next }
             tolower($1) == "types:"   { sub(/^[^:]*:/, ""); types = $0 }
             tolower($1) == "uris:"    { sub(/^[^:]*:/, ""); uris = $0 }
             tolower($1) == "suites:"  { sub(/^[^:]*:/, ""); suites = $0 }
             tolower($1) == "enabled:" { sub(/^[^:]*:/, ""); enabled = $0 }
             END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i+1) }' "$f"
    done
}

ADDED=""
cleanup_source() {
    if [ -n "$ADDED" ] && [ -e "$ADDED" ]; then
        $SUDO rm -f "$ADDED"
        say "removed $ADDED again (nothing else in /etc/apt was changed)"
        $SUDO apt-get update -qq >/dev/null 2>&1 || true
    fi
}
fail() { say "$*"; cleanup_source; exit 1; }
trap 'rc=$?; say "failed (exit $rc) at line $LINENO: $BASH_COMMAND"; cleanup_source; exit $rc' ERR

sources=$(apt_sources)
if ! echo "$sources" | awk -v s="$SUITE" '$2 == s { found = 1 } END { exit !found }'; then
    # The mirror that serves this release's own suite, so backports come from the same archive.
    mirror=$(echo "$sources" | awk -v s="$CODENAME" '$2 == s { print $1; exit }')
    [ -n "$mirror" ] || die "no apt source for '$CODENAME' in /etc/apt/sources.list or /etc/apt/sources.list.d/ (looked for a deb line or a deb822 stanza with Suites: $CODENAME): add your Debian mirror for $CODENAME, then run this again"
    ADDED=/etc/apt/sources.list.d/$SUITE.sources
    keyring=""
    for k in /usr/share/keyrings/debian-archive-keyring.pgp /usr/share/keyrings/debian-archive-keyring.gpg; do
        if [ -r "$k" ]; then keyring=$k; break; fi
    done
    say "adding $SUITE from $mirror ($ADDED)"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$mirror" "$SUITE"
        if [ -n "$keyring" ]; then printf 'Signed-By: %s\n' "$keyring"; fi
    } | $SUDO tee "$ADDED" >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
# apt-get update only warns (exit 0) when a list cannot be fetched: look for this release's lists.
log=$(mktemp)
$SUDO apt-get update -qq 2>&1 | tee "$log" >&2 || { rm -f "$log"; fail "apt-get update failed (see apt's message above): check the network and the mirrors in /etc/apt, then run this again"; }
unfetched=$(grep -E "Failed to fetch .*/dists/($CODENAME|$SUITE)/" "$log" || true)
rm -f "$log"
[ -z "$unfetched" ] || fail "apt-get update could not fetch the package lists of $CODENAME or $SUITE (see apt's message above): check the network and the Debian mirror in /etc/apt, then run this again"

# Is the wanted QGIS there, and every other package? apt-cache answers from the lists just fetched.
qgis_versions=$(apt-cache madison python3-qgis | awk -F'|' -v s=" $SUITE/" 'index($3, s) { gsub(/ /, "", $2); print $2 }')
echo "$qgis_versions" | grep -Eq "^([0-9]+:)?${WANT//./\\.}\." \
    || fail "QGIS $WANT is not in $SUITE (apt-cache madison python3-qgis there: ${qgis_versions:-nothing}); check the $SUITE source, or pick the other with QGIS_SOURCE=main|backports (Debian 13)"
absent=()
for p in "${PACKAGES[@]}"; do
    case "$p" in *-) continue ;; esac
    [ -n "$(apt-cache madison "$p" 2>/dev/null)" ] || absent+=("$p")
done
[ ${#absent[@]} -eq 0 ] || fail "not available from apt's sources: ${absent[*]} (is the '$CODENAME' main suite configured?)"

$SUDO apt-get install -y -q --no-install-recommends -t "$SUITE" "${PACKAGES[@]}" \
    || fail "apt-get install from $SUITE failed (see apt's message above)"

gaps=$(missing)
[ -z "$gaps" ] || fail "installed, but still missing: $(echo "$gaps" | paste -sd ';')"
say "installed QGIS $(installed_qgis) from $SUITE"
