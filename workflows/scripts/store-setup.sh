#!/bin/sh
# Urumi store setup: turns a fresh WordPress into an order-ready WooCommerce shop.
# Runs in the official wordpress:cli image as 33:33 with HOME=/tmp. Safe to re-run: every
# step checks before it changes anything, and products are keyed by SKU.
set -eu

WP_PATH="${WP_PATH:-/var/www/html}"
: "${STORE_URL:?STORE_URL is required}"
: "${STORE_TITLE:?STORE_TITLE is required}"
: "${STORE_ADMIN_USER:?STORE_ADMIN_USER is required}"
: "${STORE_ADMIN_EMAIL:?STORE_ADMIN_EMAIL is required}"
: "${STORE_ADMIN_PASSWORD:?STORE_ADMIN_PASSWORD is required}"

wpc() {
  wp --path="$WP_PATH" "$@"
}

wc_as_admin() {
  wpc wc "$@" --user="$STORE_ADMIN_USER"
}

# The Apache container copies WordPress into the shared volume on its first start.
tries=0
until [ -f "$WP_PATH/wp-includes/version.php" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then
    echo "WordPress files did not appear in $WP_PATH" >&2
    exit 1
  fi
  sleep 2
done

if ! wpc core is-installed >/dev/null 2>&1; then
  echo "installing WordPress"
  wpc core install --url="$STORE_URL" --title="$STORE_TITLE" --admin_user="$STORE_ADMIN_USER" \
    --admin_password="$STORE_ADMIN_PASSWORD" --admin_email="$STORE_ADMIN_EMAIL" --skip-email
fi

if ! wpc plugin is-installed woocommerce >/dev/null 2>&1; then
  echo "installing WooCommerce"
  wpc plugin install woocommerce
fi
if ! wpc plugin is-active woocommerce >/dev/null 2>&1; then
  echo "activating WooCommerce"
  wpc plugin activate woocommerce
fi

# WooCommerce >= 9.1 starts new shops in coming-soon mode.
if [ "$(wpc option get woocommerce_coming_soon 2>/dev/null || true)" != "no" ]; then
  wpc option update woocommerce_coming_soon no
fi

# Shop, cart, checkout and my-account pages (the tool skips pages that exist).
wc_as_admin tool run install_pages >/dev/null

# Cash on Delivery, also for virtual products.
if [ "$(wc_as_admin payment_gateway get cod --field=enabled)" != "true" ]; then
  echo "enabling Cash on Delivery"
  wc_as_admin payment_gateway update cod --enabled=true --settings='{"enable_for_virtual":"yes"}' >/dev/null
fi

# A flat-rate shipping method in the "rest of the world" zone (0), once.
if ! wc_as_admin shipping_zone_method list 0 --field=method_id | grep -qx flat_rate; then
  echo "adding flat-rate shipping"
  wc_as_admin shipping_zone_method create 0 --method_id=flat_rate --enabled=true >/dev/null
fi

# Products, keyed by SKU so a re-run never duplicates them.
seed_product() {
  sku="$1"
  name="$2"
  price="$3"
  if [ -z "$(wc_as_admin product list --sku="$sku" --field=id)" ]; then
    echo "adding product $sku"
    wc_as_admin product create --name="$name" --sku="$sku" --regular_price="$price" --type=simple \
      --status=publish >/dev/null
  fi
}
seed_product URUMI-TSHIRT "Premium Cotton T-Shirt" 25.00
seed_product URUMI-MUG "Ceramic Coffee Mug" 12.00
seed_product URUMI-CAP "Embroidered Cap" 18.00

echo "store setup complete: $STORE_URL"
