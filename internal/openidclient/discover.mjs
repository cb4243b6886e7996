// Discovers the issuer as an app would and returns what openid-client
// read from its metadata: the smallest scenario, which also checks the
// harness.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async ({ issuer, client_id, client_secret }) => {
  const config = await client.discovery(new URL(issuer), client_id ?? 'probe', client_secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
  return config.serverMetadata();
});
