// Finishes the sign-in register.mjs started: discovers the issuer again
// with the registered client, exchanges the code of the callback URL with
// the PKCE verifier, and checks state, nonce and the ID token as
// openid-client does, then reads userinfo with the access token.
//
// Input: issuer, client_id, client_secret (absent for a public client),
// callback (the URL the browser was sent back to), code_verifier, state,
// nonce. Output: the ID token's claims, userinfo, and the token response's
// scope and whether it held a refresh token.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async ({ issuer, client_id, client_secret, callback, code_verifier, state, nonce }) => {
  const auth = client_secret ? client.ClientSecretPost(client_secret) : client.None();
  const config = await client.discovery(new URL(issuer), client_id, client_secret, auth, {
    execute: [client.allowInsecureRequests],
  });
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: code_verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return { claims, userinfo, scope: tokens.scope, refresh: Boolean(tokens.refresh_token) };
});
