// "Place a test order": the storefront link and the WooCommerce Store API requests that place
// an order paid by Cash on Delivery (set up by the store's `setup` step). The dashboard does
// not send them itself: the store is another origin, and against the Kubernetes API simulator
// (`make dev`) there is no WordPress behind the URL at all.
import type { Schemas } from "../lib/api";

export function testOrderCommands(url: string): string {
  const base = url.replace(/\/+$/, "");
  const api = (route: string) => `"${base}/?rest_route=/wc/store/v1/${route}"`;
  const address =
    '{"first_name": "Ada", "last_name": "Lovelace", "address_1": "1 Analytical St", "city": "London", ' +
    '"state": "", "postcode": "N1 1AA", "country": "GB", "email": "ada@example.com", "phone": "0123456789"}';
  return [
    "# 1. the product the setup step seeded",
    `PRODUCT=$(curl -s ${api("products&sku=URUMI-TSHIRT")} | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')`,
    "# 2. a cart: keep its Nonce and Cart-Token headers",
    `curl -s -o /dev/null -D cart-headers.txt ${api("cart")}`,
    `NONCE=$(awk -F': ' 'tolower($1)=="nonce" {print $2}' cart-headers.txt | tr -d '\r')`,
    `CART=$(awk -F': ' 'tolower($1)=="cart-token" {print $2}' cart-headers.txt | tr -d '\r')`,
    "# 3. the product into the cart",
    `curl -s -X POST -H "Nonce: $NONCE" -H "Cart-Token: $CART" -H 'Content-Type: application/json' \\`,
    `  -d "{\\"id\\": $PRODUCT, \\"quantity\\": 1}" ${api("cart/add-item")}`,
    "# 4. check out with Cash on Delivery: the answer has order_id and payment_method \"cod\"",
    `curl -s -X POST -H "Nonce: $NONCE" -H "Cart-Token: $CART" -H 'Content-Type: application/json' \\`,
    `  -d '{"billing_address": ${address},`,
    `       "shipping_address": ${address}, "payment_method": "cod"}' ${api("checkout")}`,
  ].join("\n");
}

export function TestOrder({ store }: { store: Schemas["Store"] }) {
  if (store.status !== "ready" || !store.url) {
    return (
      <p className="text-sm text-slate-600">
        A test order can be placed once the store is <strong>ready</strong> (it has a storefront URL then).
      </p>
    );
  }
  return (
    <div className="space-y-3 text-sm">
      <p>
        Open the storefront:{" "}
        <a className="font-medium text-indigo-700 hover:underline" href={store.url} target="_blank" rel="noopener noreferrer" data-testid="storefront-link">
          {store.url}
        </a>{" "}
        and buy any product with <em>Cash on Delivery</em> (the store's setup step enabled it, with flat-rate shipping and
        sample products).
      </p>
      <p>Or place the order with the WooCommerce Store API, from a shell that reaches the store:</p>
      <pre className="overflow-x-auto rounded bg-slate-900 p-3 text-xs text-slate-100 focus-visible:outline-2 focus-visible:outline-indigo-400" role="region" tabIndex={0} aria-label="Store API commands for a test order">
        {testOrderCommands(store.url)}
      </pre>
      <p className="rounded-md border border-amber-300 bg-amber-50 p-3 text-amber-900" data-testid="simulator-note">
        The dashboard does not place the order itself. On the local platform (<code>make dev</code>) the cluster is the
        Kubernetes API simulator: it runs no WordPress, so this URL serves no shop and no real order can be placed there.
        On a real cluster, run the steps above (or use the storefront) once its DNS points at the ingress.
      </p>
    </div>
  );
}
