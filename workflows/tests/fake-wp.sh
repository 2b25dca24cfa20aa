#!/bin/sh
# A fake `wp` that keeps state in $FAKE_WP_STATE, for testing the setup script's idempotency.
# It understands exactly the commands store-setup.sh uses and appends every change it makes
# to $FAKE_WP_STATE/changes.
set -eu
state="${FAKE_WP_STATE:?}"
mkdir -p "$state/products"
change() { echo "$*" >> "$state/changes"; }
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
  "plugin install") touch "$state/plugin-installed"; change "plugin install $3" ;;
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
