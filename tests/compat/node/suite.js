#!/usr/bin/env node
// Fastly's official JavaScript client (npm `fastly`, pinned in package.json and
// package-lock.json) against a live tokenpanel server.
//
// Environment (tests/compat/run.sh sets all of it):
//   TOKENPANEL_URL   http://127.0.0.1:PORT (loopback only)
//   COMPAT_LOGIN     email of a superuser of an account with at least one service
//   COMPAT_PASSWORD  that user's password
//   COMPAT_TOKEN     a global, all-services token of that user (made by the runner)
//
// The client sends every operation to the host written into the operation itself
// (https://api.fastly.com); ApiClient.basePath is ignored. The only way to point it
// elsewhere is a superagent plugin (ApiClient#plugins) that rewrites the URL, which is
// what `client()` does; it refuses any request that would leave the loopback server.
//
// Stops at the first failure (exit 1) unless --keep-going; --with-invitations adds the
// /invitations checks. A failure prints the exact request and the server's answer.
'use strict';

const Fastly = require('fastly');

const FASTLY_HOST = 'https://api.fastly.com';

class Fail extends Error {}
class Skip extends Error {}

function expect(condition, message) {
  if (!condition) throw new Fail(message);
}

function expectStatus(error, status) {
  expect(error && error.status === status,
    `expected HTTP ${status}, got ${error && (error.status || error.message)}`);
}

function main() {
  const args = new Set(process.argv.slice(2));
  for (const a of args) {
    if (a !== '--keep-going' && a !== '--with-invitations') {
      console.error(`unknown argument: ${a}`);
      process.exit(2);
    }
  }
  const base = process.env.TOKENPANEL_URL.replace(/\/+$/, '');
  const host = new URL(base).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) {
    console.error(`TOKENPANEL_URL must be a loopback address, not ${host}`);
    process.exit(2);
  }
  const login = process.env.COMPAT_LOGIN;
  const password = process.env.COMPAT_PASSWORD;
  const bootstrap = process.env.COMPAT_TOKEN;
  // Each Api constructor authenticates ApiClient.instance from this variable.
  delete process.env.FASTLY_API_TOKEN;

  const keepGoing = args.has('--keep-going');
  const results = { passed: 0, failed: 0, skipped: 0 };
  let last = null;
  const state = {};

  function client({ token, username, secret } = {}) {
    const api = new Fastly.ApiClient();
    if (token) api.authenticate(token);
    if (username !== undefined) {
      api.authentications.username_and_password.username = username;
      api.authentications.username_and_password.password = secret;
    }
    api.plugins = [(request) => {
      if (request.url.startsWith(FASTLY_HOST)) {
        request.url = base + request.url.slice(FASTLY_HOST.length);
      }
      if (!request.url.startsWith(base + '/')) {
        throw new Error(`refusing a request to ${request.url}`);
      }
      const entry = { method: request.method, url: request.url, request };
      last = entry;
      request.on('response', (response) => {
        entry.status = response.status;
        entry.text = response.text;
        entry.headers = response.headers;
      });
    }];
    return api;
  }

  function describe() {
    if (!last) return '    (no request was sent)';
    const r = last.request;
    const headers = {};
    for (const [k, v] of Object.entries(r.header || {})) {
      const lower = k.toLowerCase();
      headers[k] = lower === 'fastly-key' ? '<token>'
        : lower === 'authorization' ? 'Basic <login:password>' : v;
    }
    const query = r.qs && Object.keys(r.qs).length ? `?${new URLSearchParams(r.qs)}` : '';
    const lines = [`    request:  ${last.method} ${last.url}${query}`,
      `    headers:  ${JSON.stringify(headers)}`];
    if (r._data !== undefined) {
      let body = typeof r._data === 'string' ? r._data : JSON.stringify(r._data);
      body = body.replace(/password=[^&]*/, 'password=<password>')
        .replace(/"password":"[^"]*"/, '"password":"<password>"');
      lines.push(`    body:     ${body}`);
    }
    if (last.status !== undefined) {
      let text = (last.text || '').replace(/\s+/g, ' ').trim();
      if (text.length > 400) text = text.slice(0, 400) + '…';
      lines.push(`    response: ${last.status} ${text}`);
    }
    return lines.join('\n');
  }

  function finish() {
    console.log(`node: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`);
    process.exit(results.failed ? 1 : 0);
  }

  async function check(name, fn) {
    last = null;
    try {
      await fn();
    } catch (e) {
      if (e instanceof Skip) {
        results.skipped += 1;
        console.log(`SKIP ${name}: ${e.message}`);
        return;
      }
      results.failed += 1;
      let summary;
      if (e instanceof Fail) summary = `Fail: ${e.message}`;
      else if (e && e.status !== undefined) summary = `HTTP ${e.status} ${e.statusText || ''}`.trim();
      else summary = `${(e && e.constructor && e.constructor.name) || 'Error'}: ${e && e.message}`;
      console.log(`FAIL ${name}: ${summary}`);
      console.log(describe());
      if (!keepGoing) finish();
      return;
    }
    results.passed += 1;
    console.log(`PASS ${name}`);
  }

  function need(...keys) {
    const missing = keys.filter((k) => !(k in state));
    if (missing.length) throw new Skip(`needs ${missing.join(', ')} from an earlier check`);
    return keys.map((k) => state[k]);
  }

  async function raw(path, token) {
    const response = await fetch(base + path, {
      headers: { 'Fastly-Key': token, Accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
    return response.json();
  }

  const tokens = (c) => new Fastly.TokensApi(c);

  return (async () => {
    const me = await raw('/tokens/self', bootstrap);
    state.customer_id = me.customer_id;
    state.user_id = me.user_id;
    state.bootstrap_id = me.id;

    // --- Tokens -----------------------------------------------------------------------

    await check('create token with username and password (HTTP Basic)', async () => {
      const created = await tokens(client({ username: login, secret: password })).createToken();
      expect(created.access_token, 'no access_token');
      expect(created.id, 'no id');
      expect(created.scope === 'global', `scope ${created.scope}, expected global`);
      expect(created.user_id === state.user_id, 'user_id is not the signed-in user');
      expect(Array.isArray(created.services), 'services is not a list');
      state.basic_token = created.access_token;
      state.basic_token_id = created.id;
    });

    await check('self (GET /tokens/self)', async () => {
      const [token, id] = need('basic_token', 'basic_token_id');
      const current = await tokens(client({ token })).getTokenCurrent();
      expect(current.id === id, `id ${current.id}, expected ${id}`);
      expect(current.name, 'no name');
      expect(current.created_at, 'no created_at');
    });

    await check('sudo (POST /sudo with username and password)', async () => {
      const response = await new Fastly.SudoApi(client({ token: bootstrap })).requestSudoAccess({
        sudo_request: { username: login, password },
      });
      const expiry = response.expiry_time;
      expect(expiry instanceof Date && !Number.isNaN(expiry.getTime()),
        `expiry_time ${expiry}`);
      expect(expiry.getTime() > Date.now(), 'expiry_time is not in the future');
      state.sudo = true;
    });

    await check('create token with a token in sudo mode', async () => {
      need('sudo');
      const created = await tokens(client({ token: bootstrap })).createToken();
      expect(created.access_token, 'no access_token');
      expect(created.user_id === state.user_id, 'user_id is not the signed-in user');
      state.sudo_token_id = created.id;
    });

    await check('list own tokens (GET /tokens)', async () => {
      const list = await tokens(client({ token: bootstrap })).listTokensUser();
      const ids = new Set(list.map((t) => t.id));
      expect(ids.has(state.bootstrap_id), 'the calling token is not listed');
      for (const key of ['basic_token_id', 'sudo_token_id']) {
        if (key in state) expect(ids.has(state[key]), `${key} ${state[key]} is not listed`);
      }
      for (const t of list) expect(t.user_id === state.user_id, `token ${t.id} of another user listed`);
    });

    await check('show a token (GET /tokens/{id})', async () => {
      const [id] = need('basic_token_id');
      const token = await tokens(client({ token: bootstrap })).getToken({ token_id: id });
      expect(token.id === id, `id ${token.id}`);
      expect(token.scope === 'global', `scope ${token.scope}`);
    });

    await check("list the customer's tokens (GET /customer/{id}/tokens)", async () => {
      const list = await tokens(client({ token: bootstrap }))
        .listTokensCustomer({ customer_id: state.customer_id });
      expect(list.some((t) => t.id === state.bootstrap_id), 'the calling token is not listed');
    });

    // --- Users, customer, verify --------------------------------------------------------

    await check('current user (GET /current_user)', async () => {
      const user = await new Fastly.UserApi(client({ token: bootstrap })).getCurrentUser();
      expect(user.id === state.user_id, `id ${user.id}`);
      expect(user.login === login, `login ${user.login}, expected ${login}`);
      expect(user.customer_id === state.customer_id, `customer_id ${user.customer_id}`);
      expect(String(user.role) === 'superuser', `role ${user.role}`);
    });

    await check('a user (GET /user/{id})', async () => {
      const user = await new Fastly.UserApi(client({ token: bootstrap }))
        .getUser({ user_id: state.user_id });
      expect(user.id === state.user_id, `id ${user.id}`);
      expect(user.login === login, `login ${user.login}`);
    });

    await check('the customer (GET /customer/{id})', async () => {
      const customer = await new Fastly.CustomerApi(client({ token: bootstrap }))
        .getCustomer({ customer_id: state.customer_id });
      expect(customer.id === state.customer_id, `id ${customer.id}`);
      expect(customer.name, 'no name');
    });

    await check("the customer's users (GET /customer/{id}/users)", async () => {
      const users = await new Fastly.CustomerApi(client({ token: bootstrap }))
        .listUsers({ customer_id: state.customer_id });
      expect(users.some((u) => u.id === state.user_id), 'the caller is not listed');
    });

    await check("verify (GET /verify, the CLI's whoami)", async () => {
      // No method for /verify in the client; its own callApi sends it.
      const api = client({ token: bootstrap });
      const { data } = await api.callApi('/verify', 'GET', {}, {}, {}, {}, {}, null,
        ['token'], [], ['application/json'], Object, FASTLY_HOST);
      expect(data.customer && data.customer.id === state.customer_id, 'customer.id');
      expect(data.user && data.user.id === state.user_id, 'user.id');
      expect(data.user.login === login, 'user.login');
      expect(data.token && data.token.id === state.bootstrap_id, 'token.id');
      expect(data.token.scope === 'global', 'token.scope');
      expect(data.services && typeof data.services === 'object' && !Array.isArray(data.services),
        'services is not an object of id: name');
    });

    // --- Services and purges ----------------------------------------------------------

    const services = (c) => new Fastly.ServiceApi(c);
    const purges = (c) => new Fastly.PurgeApi(c);

    await check('list services (GET /service)', async () => {
      const list = await services(client({ token: bootstrap })).listServices();
      expect(list.length >= 1, 'no services');
      for (const s of list) {
        expect(s.id && s.name, 'a service without id or name');
        expect(s.customer_id === state.customer_id, `customer_id ${s.customer_id}`);
      }
      state.service_id = list[0].id;
      state.service_name = list[0].name;
    });

    await check('a service (GET /service/{id})', async () => {
      const [id] = need('service_id');
      const s = await services(client({ token: bootstrap })).getService({ service_id: id });
      expect(s.id === id, `id ${s.id}`);
      expect(s.name === state.service_name, `name ${s.name}`);
    });

    await check('service details (GET /service/{id}/details)', async () => {
      const [id] = need('service_id');
      const d = await services(client({ token: bootstrap })).getServiceDetail({ service_id: id });
      expect(d.id === id, `id ${d.id}`);
      expect(Array.isArray(d.versions) && d.versions.length === 0,
        `versions ${JSON.stringify(d.versions)}`);
    });

    await check('purge all (POST /service/{id}/purge_all)', async () => {
      const [id] = need('service_id');
      const r = await purges(client({ token: bootstrap })).purgeAll({ service_id: id });
      expect(r.status === 'ok', `status ${r.status}`);
    });

    await check('purge one key, soft (POST /service/{id}/purge/{key})', async () => {
      const [id] = need('service_id');
      const r = await purges(client({ token: bootstrap })).purgeTag({
        service_id: id, surrogate_key: 'compat-one', fastly_soft_purge: 1,
      });
      expect(r.status === 'ok', `status ${r.status}`);
      expect(r.id, 'no purge id');
    });

    await check('purge keys in the Surrogate-Key header (POST /service/{id}/purge)', async () => {
      const [id] = need('service_id');
      const r = await purges(client({ token: bootstrap })).bulkPurgeTag({
        service_id: id, surrogate_key: 'compat-a compat-b',
      });
      const keys = Object.keys(r || {}).sort();
      expect(JSON.stringify(keys) === '["compat-a","compat-b"]', `answer ${JSON.stringify(r)}`);
    });

    await check('purge keys in a JSON body (POST /service/{id}/purge)', async () => {
      const [id] = need('service_id');
      const r = await purges(client({ token: bootstrap })).bulkPurgeTag({
        service_id: id, purge_response: { surrogate_keys: ['compat-c', 'compat-d'] },
      });
      const keys = Object.keys(r || {}).sort();
      expect(JSON.stringify(keys) === '["compat-c","compat-d"]', `answer ${JSON.stringify(r)}`);
    });

    await check('rate-limit headers on a write', async () => {
      const [id] = need('service_id');
      const api = client({ token: bootstrap });
      const { response } = await purges(api).purgeAllWithHttpInfo({ service_id: id });
      // ApiClient#rateLimitRemaining starts at a default of its own, so the headers are
      // read from the response itself.
      for (const name of ['fastly-ratelimit-remaining', 'fastly-ratelimit-reset']) {
        expect(/^[0-9]+$/.test(response.headers[name] || ''), `no ${name} header on a write`);
      }
      expect(api.rateLimitRemaining === Number(response.headers['fastly-ratelimit-remaining']),
        'the client did not take Fastly-RateLimit-Remaining');
    });

    // --- Events -----------------------------------------------------------------------

    await check('events (GET /events, filtered)', async () => {
      const [id] = need('service_id');
      const r = await new Fastly.EventsApi(client({ token: bootstrap })).listEvents({
        filter_event_type: 'service.purge_all', filter_service_id: id, page_size: 20,
      });
      expect(Array.isArray(r.data) && r.data.length > 0, 'no service.purge_all event for the service');
      const first = r.data[0];
      expect(String(first.type) === 'event', `type ${first.type}`);
      expect(first.attributes.event_type === 'service.purge_all', `event_type ${first.attributes.event_type}`);
      expect(first.attributes.service_id === id, 'service_id');
    });

    // --- Automation tokens --------------------------------------------------------------

    const automation = (c) => new Fastly.AutomationTokensApi(c);

    // The client declares the `id`, `user_id` and `customer_id` of automation tokens as
    // empty objects (ReadOnlyId), and its deserializer drops the strings: `created.id` is
    // `{}` whatever the server sends. The ids are read from the response body instead
    // (the *WithHttpInfo methods return it).
    await check('create an automation token (POST /automation-tokens)', async () => {
      const [, id] = need('sudo', 'service_id');
      const expires = new Date(Date.now() + 30 * 86400 * 1000);
      expires.setMilliseconds(0);
      const { data: created, response } = await automation(client({ token: bootstrap }))
        .createAutomationTokenWithHttpInfo({
          automation_token_create_request: {
            name: 'compat automation', role: 'engineer', scope: 'global',
            services: [id], tls_access: false, expires_at: expires,
          },
        });
      expect(created.access_token, 'no access_token');
      expect(created.role === 'engineer', `role ${created.role}`);
      expect(JSON.stringify(created.services) === JSON.stringify([id]), `services ${created.services}`);
      const rawId = response.body && response.body.id;
      expect(typeof rawId === 'string' && rawId, `id ${JSON.stringify(rawId)}`);
      state.automation_id = rawId;
    });

    await check('list automation tokens (GET /automation-tokens)', async () => {
      const [id] = need('automation_id');
      const { data: list, response } = await automation(client({ token: bootstrap }))
        .listAutomationTokensWithHttpInfo();
      expect(Array.isArray(list), `answer ${JSON.stringify(list)}`);
      expect(Array.isArray(response.body), 'the body is not a JSON array');
      expect(response.body.some((t) => t.id === id), 'the new token is not listed');
    });

    await check('show an automation token (GET /automation-tokens/{id})', async () => {
      const [id] = need('automation_id');
      const { data: t, response } = await automation(client({ token: bootstrap }))
        .getAutomationTokenIdWithHttpInfo({ id });
      expect(response.body.id === id, `id ${response.body.id}`);
      expect(t.role === 'engineer', `role ${t.role}`);
    });

    await check('revoke an automation token (DELETE /automation-tokens/{id})', async () => {
      const [id] = need('automation_id');
      const api = client({ token: bootstrap });
      await automation(api).revokeAutomationTokenId({ id });
      let error = null;
      try {
        await automation(api).getAutomationTokenId({ id });
      } catch (e) {
        error = e;
      }
      expect(error, 'the revoked automation token is still shown');
      expectStatus(error, 404);
    });

    // --- Revocation ---------------------------------------------------------------------

    await check('revoke a token (DELETE /tokens/{id})', async () => {
      const [id] = need('sudo_token_id');
      const api = client({ token: bootstrap });
      await tokens(api).revokeToken({ token_id: id });
      let error = null;
      try {
        await tokens(api).getToken({ token_id: id });
      } catch (e) {
        error = e;
      }
      expect(error, 'the revoked token is still shown');
      expectStatus(error, 404);
    });

    await check('bulk revoke (DELETE /tokens, JSON:API bulk)', async () => {
      need('basic_token_id');
      const made = [];
      for (let i = 0; i < 2; i += 1) {
        made.push(await tokens(client({ username: login, secret: password })).createToken());
      }
      const api = client({ token: bootstrap });
      await tokens(api).bulkRevokeTokens({
        request_body: { data: made.map((t) => ({ type: 'token', id: t.id })) },
      });
      const remaining = new Set((await tokens(api).listTokensUser()).map((t) => t.id));
      for (const t of made) expect(!remaining.has(t.id), `token ${t.id} survived the bulk revocation`);
    });

    await check('revoke self (DELETE /tokens/self)', async () => {
      const [token] = need('basic_token');
      const api = client({ token });
      await tokens(api).revokeTokenCurrent();
      let error = null;
      try {
        await tokens(api).getTokenCurrent();
      } catch (e) {
        error = e;
      }
      expect(error, 'the revoked token still works');
      expectStatus(error, 401);
    });

    // --- Errors -------------------------------------------------------------------------

    await check('unknown API path answers JSON 404', async () => {
      const api = client({ token: bootstrap });
      let error = null;
      try {
        await api.callApi('/compat-no-such-path', 'GET', {}, {}, {}, {}, {}, null,
          ['token'], [], ['application/json'], Object, FASTLY_HOST);
      } catch (e) {
        error = e;
      }
      expect(error, 'an unknown path answered with success');
      expectStatus(error, 404);
      let body = null;
      try {
        body = JSON.parse(error.response.text);
      } catch (e) {
        throw new Fail('the 404 body is not JSON');
      }
      expect(body && body.msg, 'the 404 body has no msg');
    });

    // --- Invitations (issue 15, item 4) ---------------------------------------------------

    if (args.has('--with-invitations')) {
      await check('invitations (POST, GET, DELETE /invitations)', async () => {
        const api = new Fastly.InvitationsApi(client({ token: bootstrap }));
        const email = `compat-${Math.random().toString(16).slice(2, 10)}@example.com`;
        const created = await api.createInvitation({
          invitation: {
            data: {
              type: 'invitation',
              attributes: { email, role: 'user' },
            },
          },
        });
        const id = created.data.id;
        const listed = await api.listInvitations();
        expect(listed.data.some((i) => i.id === id), 'not listed');
        await api.deleteInvitation({ invitation_id: id });
      });
    }

    finish();
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

main();
