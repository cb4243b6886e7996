// Starts the device authorization grant (RFC 8628) as a device built on
// openid-client would: discovery, then the device authorization request.
// Returns the library's response whole, for device-poll.mjs once the user
// has typed the code in a browser.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async ({ issuer, client_id, scope }) => {
  const config = await client.discovery(new URL(issuer), client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  return client.initiateDeviceAuthorization(config, { scope });
});
