// Registers a client with dynamic client registration (RFC 7591), as an
// MCP client or a CLI tool meeting a provider for the first time does,
// then starts a sign-in with it: PKCE, state and nonce. The browser
// signs in from Go, and register_callback.mjs finishes the flow.
//
// Input: issuer, metadata (RFC 7591 client metadata), and optionally
// initial_access_token and scope. Output: the registered client's
// metadata as openid-client read it, and url, code_verifier, state and
// nonce for the sign-in.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async ({ issuer, metadata, initial_access_token, scope }) => {
  const auth = metadata.token_endpoint_auth_method === 'none' ? client.None() : undefined;
  const config = await client.dynamicClientRegistration(new URL(issuer), metadata, auth, {
    initialAccessToken: initial_access_token,
    execute: [client.allowInsecureRequests],
  });
  const registered = config.clientMetadata();
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: registered.redirect_uris[0],
    scope: scope ?? 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { client: registered, url: url.href, code_verifier, state, nonce };
});
