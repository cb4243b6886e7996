// Calls one of Latchkey's back-channel endpoints the way an app using
// openid-client does, with the client authentication the input names:
//
//   server  the authorization server metadata (issuer and endpoints)
//   client_id, client_secret
//   auth    "default" (openid-client's own choice for a secret, the body:
//           client_secret_post), "basic", or "private_key_jwt" with jwk
//           (a private JWK) and, optionally, assertion_aud, which
//           openid-client's modifyAssertion hook writes into the assertion
//           as libraries such as Authlib do (the URL being called)
//   op      "client_credentials" (with scope), "introspect" or "revoke"
//           (with token), or "refresh" (with token, a refresh token)
//
// It writes what the library returned.
import * as client from 'openid-client';
import { main } from './io.mjs';

await main(async (input) => {
  const { server, client_id, client_secret, op, token, scope } = input;
  let auth;
  switch (input.auth) {
    case 'basic':
      auth = client.ClientSecretBasic(client_secret);
      break;
    case 'private_key_jwt': {
      const key = await crypto.subtle.importKey('jwk', input.jwk,
        { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
      const url = { client_credentials: server.token_endpoint, introspect: server.introspection_endpoint, revoke: server.revocation_endpoint }[op];
      auth = client.PrivateKeyJwt({ key, kid: input.jwk.kid }, {
        [client.modifyAssertion]: (_header, payload) => {
          if (input.assertion_aud === 'endpoint') payload.aud = url;
          else if (input.assertion_aud) payload.aud = input.assertion_aud;
        },
      });
      break;
    }
    default:
      auth = undefined; // openid-client's default for a secret: client_secret_post
  }
  const config = new client.Configuration(server, client_id, client_secret, auth);
  client.allowInsecureRequests(config);
  switch (op) {
    case 'client_credentials':
      return await client.clientCredentialsGrant(config, scope ? { scope } : {});
    case 'introspect':
      return await client.tokenIntrospection(config, token);
    case 'revoke':
      await client.tokenRevocation(config, token);
      return { revoked: true };
    case 'refresh':
      return await client.refreshTokenGrant(config, token);
    default:
      throw new Error(`unknown op ${op}`);
  }
});
