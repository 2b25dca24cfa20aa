#!/bin/sh
# Urumi store upgrade: puts WooCommerce at exactly $WOOCOMMERCE_VERSION and runs the
# database updates of WordPress and WooCommerce. WordPress core itself comes from the image
# the store's Deployment runs (its `core` init container copies the image's core into the
# volume); this script only updates its database, after checking, when WORDPRESS_VERSION is
# set, that the core it finds is that version.
# Runs in the official wordpress:cli image. Env: WP_PATH (default /var/www/html),
# WOOCOMMERCE_VERSION, WORDPRESS_VERSION (optional). Safe to re-run: WooCommerce is installed only when its version
# differs, and both database updates do nothing when the database is current.
# The last line of output is
#   URUMI-UPGRADE {"wordpress":"<core version>","woocommerce":"<plugin version>"}
set -eu

WP_PATH="${WP_PATH:-/var/www/html}"
: "${WOOCOMMERCE_VERSION:?WOOCOMMERCE_VERSION is required}"
case "$WOOCOMMERCE_VERSION" in
  '' | *[!0-9A-Za-z.+-]*)
    echo "store-upgrade: WOOCOMMERCE_VERSION '$WOOCOMMERCE_VERSION' is not a version" >&2
    exit 1
    ;;
esac

wpc() {
  wp --path="$WP_PATH" "$@"
}

if [ -n "${WORDPRESS_VERSION:-}" ]; then
  core=$(wpc core version)
  if [ "$core" != "$WORDPRESS_VERSION" ]; then
    echo "store-upgrade: WordPress core is $core, expected $WORDPRESS_VERSION (did the web tier roll out the new image?)" >&2
    exit 1
  fi
fi

current=$(wpc plugin get woocommerce --field=version 2>/dev/null || true)
if [ "$current" != "$WOOCOMMERCE_VERSION" ]; then
  echo "installing WooCommerce $WOOCOMMERCE_VERSION (installed: ${current:-none})"
  wpc plugin install woocommerce --version="$WOOCOMMERCE_VERSION" --force --activate
elif ! wpc plugin is-active woocommerce >/dev/null 2>&1; then
  echo "activating WooCommerce"
  wpc plugin activate woocommerce
else
  echo "WooCommerce is already at $WOOCOMMERCE_VERSION"
fi

echo "updating the WordPress database"
wpc core update-db
echo "updating the WooCommerce database"
wpc wc update

wordpress=$(wpc core version)
woocommerce=$(wpc plugin get woocommerce --field=version)
if [ "$woocommerce" != "$WOOCOMMERCE_VERSION" ]; then
  echo "store-upgrade: WooCommerce reports $woocommerce after installing $WOOCOMMERCE_VERSION" >&2
  exit 1
fi
echo "URUMI-UPGRADE {\"wordpress\":\"$wordpress\",\"woocommerce\":\"$woocommerce\"}"
