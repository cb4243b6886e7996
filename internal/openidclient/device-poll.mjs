// Polls the token endpoint for the device authorization grant (RFC 8628
// §3.4) with openid-client until the user decides, and returns the tokens
// and the ID token's subject, or the library's error.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async ({ issuer, client_id, response }) => {
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const tokens = await client.pollDeviceAuthorizationGrant(config, response);
  return {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    sub: tokens.claims()?.sub,
  };
});
