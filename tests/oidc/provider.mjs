// A real OpenID provider (oidc-provider, OpenID Certified) for scopegate's end-to-end
// test. Listens on 127.0.0.1 on a free port, then prints `READY <issuer>` on stdout.
// Issues RS256 JWT access tokens by client_credentials for the resource `urn:orders-api`
// (audience `orders-api`). Test-only: fixed client secret, keys made at start.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const CLIENT_ID = process.env.OIDC_CLIENT_ID || 'orders-client';
const CLIENT_SECRET = process.env.OIDC_CLIENT_SECRET || 'orders-client-secret-for-tests-only';
const SCOPES = ['orders:read', 'orders:write', 'orders:delete'];

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-rsa-1', use: 'sig', alg: 'RS256' };

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: SCOPES.join(' '),
    }],
    scopes: SCOPES,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Without a resource the token would be opaque and its scopes dropped.
        defaultResource: () => 'urn:orders-api',
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (resourceIndicator !== 'urn:orders-api') {
            throw new Error(`unknown resource ${resourceIndicator}`);
          }
          return {
            scope: SCOPES.join(' '),
            audience: 'orders-api',
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);
});

// The test kills us; also stop when its stdin pipe closes (the test process died).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
