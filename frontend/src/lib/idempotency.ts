// One Idempotency-Key per distinct create request: submitting the same body again (a double
// click, a retry after a lost answer) reuses the key, so the API answers the first result
// instead of creating a second store; a changed body gets a new key.
export class IdempotencyKeys {
  private body: string | null = null;
  private key = "";

  constructor(private readonly fresh: () => string = () => globalThis.crypto.randomUUID()) {}

  /** The key for this request body. */
  keyFor(body: unknown): string {
    const b = JSON.stringify(body);
    if (b !== this.body) {
      this.body = b;
      this.key = this.fresh();
    }
    return this.key;
  }

  /** Forget the key (after a store was created, the next request is a new one). */
  reset(): void {
    this.body = null;
    this.key = "";
  }
}
