-- Signing keys may be Ed25519 keys (alg EdDSA, RFC 8037), which sign JWT
-- access tokens for clients registered with access_token_signed_response_alg
-- EdDSA. No key is created here: every node creates a key for each
-- algorithm it has none for when it starts (keys.Manager.Init), so a
-- deployment gets its EdDSA key on the first start after this upgrade.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_algorithm_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_algorithm_check
    CHECK (algorithm IN ('RS256', 'ES256', 'EdDSA'));

---- create above / drop below ----

-- Tokens the Ed25519 keys signed stop verifying: the schema before this
-- one cannot hold the keys.
DELETE FROM signing_keys WHERE algorithm = 'EdDSA';
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_algorithm_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_algorithm_check
    CHECK (algorithm IN ('RS256', 'ES256'));
