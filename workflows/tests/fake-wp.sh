#!/bin/sh
# A fake `wp` that keeps state in $FAKE_WP_STATE, for testing the setup and upgrade scripts'
# idempotency. It understands exactly the commands store-setup.sh and store-upgrade.sh use
# and appends every change it makes to $FAKE_WP_STATE/changes. Versions: core-version (the
# files' WordPress, default 6.8.1), db-version (the database's WordPress), plugin-version
# (WooCommerce's files, default 9.8.5 when installed without --version), wc-db-version.
set -eu
state="${FAKE_WP_STATE:?}"
mkdir -p "$state/products"
change() { echo "$*" >> "$state/changes"; }
get() { cat "$state/$1" 2>/dev/null || true; }
core_version() { v=$(get core-version); echo "${v:-6.8.1}"; }
args=""
for a in "$@"; do
  case "$a" in
    --path=*|--user=*) ;;
    *) args="$args $a" ;;
  esac
done
# shellcheck disable=SC2086
set -- $args
case "$1 $2" in
  "core is-installed") [ -f "$state/installed" ] ;;
  "core install") touch "$state/installed"; change "core install" ;;
  "plugin is-installed") [ -f "$state/plugin-installed" ] ;;
  "plugin install")
    version="" activate=no
    for a in "$@"; do
      case "$a" in
        --version=*) version="${a#--version=}" ;;
        --activate) activate=yes ;;
      esac
    done
    touch "$state/plugin-installed"
    if [ -n "$version" ]; then
      printf '%s' "$version" > "$state/plugin-version"
      change "plugin install $3 --version=$version"
    else
      printf '9.8.5' > "$state/plugin-version"
      change "plugin install $3"
    fi
    if [ "$activate" = yes ]; then touch "$state/plugin-active"; fi ;;
  "plugin get")
    [ "$3 $4" = "woocommerce --field=version" ] || { echo "fake wp: unknown: $*" >&2; exit 2; }
    [ -f "$state/plugin-installed" ] || { echo "Error: The '$3' plugin could not be found." >&2; exit 1; }
    get plugin-version; echo ;;
  "core version") core_version ;;
  "core update-db")
    if [ "$(get db-version)" != "$(core_version)" ]; then
      core_version > "$state/db-version"; change "core update-db"
    fi ;;
  "wc update")
    [ -f "$state/plugin-active" ] || { echo "Error: 'wc' is not a registered wp command." >&2; exit 1; }
    if [ "$(get wc-db-version)" != "$(get plugin-version)" ]; then
      get plugin-version > "$state/wc-db-version"; change "wc update"
    fi ;;
  "plugin is-active") [ -f "$state/plugin-active" ] ;;
  "plugin activate") touch "$state/plugin-active"; change "plugin activate $3" ;;
  "option get") cat "$state/option-$3" 2>/dev/null || exit 1 ;;
  "option update") printf '%s' "$4" > "$state/option-$3"; change "option update $3 $4" ;;
  "wc tool") [ -f "$state/pages" ] || { touch "$state/pages"; change "install pages"; } ;;
  "wc payment_gateway")
    case "$3" in
      get) if [ -f "$state/cod" ]; then echo true; else echo false; fi ;;
      update) touch "$state/cod"; change "enable cod" ;;
    esac ;;
  "wc shipping_zone_method")
    case "$3" in
      list) if [ -f "$state/flat_rate" ]; then echo flat_rate; fi ;;
      create) touch "$state/flat_rate"; change "add flat_rate" ;;
    esac ;;
  "wc product")
    case "$3" in
      list) sku="${4#--sku=}"; if [ -f "$state/products/$sku" ]; then cat "$state/products/$sku"; fi ;;
      create)
        for a in "$@"; do case "$a" in --sku=*) sku="${a#--sku=}" ;; esac; done
        n=$(find "$state/products" -type f | wc -l)
        echo "$((n + 1))" > "$state/products/$sku"; change "create product $sku" ;;
    esac ;;
  *) echo "fake wp: unknown command: $*" >&2; exit 2 ;;
esac
