// Verifies a JWT access token as a resource server does with oauth4webapi,
// the library openid-client is built on (same author, pinned through
// openid-client's lockfile entry): validateJwtAccessToken implements
// RFC 9068 §4, fetching the keys from the jwks_uri the issuer's discovery
// document names and accepting only the algorithms given.
import * as oauth from 'oauth4webapi';
import { main } from './io.mjs';

await main(async ({ issuer, token, audience, algorithms }) => {
  const insecure = { [oauth.allowInsecureRequests]: true };
  const issuerURL = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerURL, await oauth.discoveryRequest(issuerURL, insecure));
  const request = new Request('https://api.example.com/reports', { headers: { authorization: `Bearer ${token}` } });
  const claims = await oauth.validateJwtAccessToken(as, request, audience, { ...insecure, signingAlgorithms: algorithms });
  return { claims };
});
