// A real OpenID Connect provider on loopback for the dashboards' tests: panva's OpenID-certified
// `oidc-provider`, with its own small sign-in form that checks passwords (not the library's
// accept-anyone development screens), signed ID tokens carrying the `ioc_grants` claim, and
// RP-initiated logout that returns straight to the app.
//
// Usage: node provider.mjs CONFIG.json, where CONFIG has port, clients (oidc-provider client metadata),
// users ({login: {password, claims}}), id_token_ttl (seconds), session_ttl (seconds) and optionally host
// (default 127.0.0.1; the node tests use the node IP, which both pods and the machine's browser reach).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const host = config.host ?? '127.0.0.1';
const issuer = `http://${host}:${config.port}`;
const users = config.users;

// Streamlit's st.login asks for prompt=select_account; the provider must accept that prompt.
const policy = interactionPolicy.base();
policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }), 0);

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    ioc: ['ioc_grants'],
  },
  // Release the scopes' claims in the ID token itself: Streamlit reads the user from the ID token.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // Sign out without a confirmation page (the tests and the officials both asked for it).
      async logoutSource(ctx, form) {
        ctx.body = `<!DOCTYPE html><html><body>${form}<script>document.forms[0].submit()</script></body></html>`;
      },
    },
  },
  interactions: {
    policy,
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // First-party client: grant what it asks for, no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const found = await ctx.oidc.provider.Grant.find(grantId);
      if (found) return found;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile ioc');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...user.claims }; } };
  },
  ttl: {
    IdToken: config.id_token_ttl ?? 3600,
    AccessToken: config.id_token_ttl ?? 3600,
    Session: config.session_ttl ?? 3600,
    Interaction: 600,
    Grant: config.session_ttl ?? 3600,
    AuthorizationCode: 120,
  },
  pkce: { required: () => false },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

function page(uid, message) {
  return `<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Đăng nhập IOC</title></head>
<body style="font-family: sans-serif; max-width: 24rem; margin: 4rem auto">
<h1>Đăng nhập IOC Bình Dương</h1>
${message ? `<p id="error" style="color: #b00020">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login" autocomplete="off">
  <label>Tên đăng nhập <input id="login" name="login" required></label><br><br>
  <label>Mật khẩu <input id="password" name="password" type="password" required></label><br><br>
  <button id="submit" type="submit">Đăng nhập</button>
</form></body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'POST' && match[2]) {
      const form = await body(req);
      const user = users[form.get('login')];
      if (!user || user.password !== form.get('password')) {
        res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page(details.uid, 'Sai tên đăng nhập hoặc mật khẩu.'));
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { select_account: {}, login: { accountId: form.get('login') } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(details.uid, ''));
  } catch (error) {
    console.error('interaction error', error);
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(String(error));
  }
});
server.listen(config.port, host, () => console.log(`oidc-provider ${issuer} ready`));
