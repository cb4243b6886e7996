// Pushed authorization requests (RFC 9126) as an app using openid-client
// makes them, in two phases with a browser between them:
//
//   {"phase": "start", issuer, client_id, client_secret, redirect_uri, scope}
//     pushes the request (buildAuthorizationUrlWithPAR) and returns the URL
//     to send the browser to, with the state, nonce and PKCE verifier the
//     app keeps;
//   {"phase": "finish", ..., callback, state, nonce, code_verifier}
//     exchanges the code the browser came back with, checking state, nonce
//     and the ID token, and returns the ID token's claims.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async (input) => {
  const { issuer, client_id, client_secret } = input;
  const config = await client.discovery(new URL(issuer), client_id, client_secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
  if (input.phase === 'start') {
    const code_verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: input.redirect_uri,
      scope: input.scope,
      code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, nonce, code_verifier };
  }
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback), {
    pkceCodeVerifier: input.code_verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
  return { claims: tokens.claims(), access_token: tokens.access_token };
});
