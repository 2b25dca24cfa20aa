-- A token may carry an expiry: after it the token is refused like a revoked one.
ALTER TABLE urumi.api_tokens ADD COLUMN expires_at timestamptz;
