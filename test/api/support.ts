/**
 * Small helpers shared by the API suites (not a test file itself).
 */
import assert from 'node:assert/strict';

/** Test apps run the API role only: a worker would pick up triggered executions and change their status. */
export const API_ONLY = { VECRON_ROLES: 'api' } as const;

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A uuid that names no row. */
export const MISSING_ID = '00000000-0000-4000-8000-000000000000';

/** The design study's ("seed") example job, in the seed shape. */
export function seedJob(name = 'customer-analysis') {
  return {
    name,
    variables: { api_token: 'secret-token', db_url: 'postgres://analytics.example/db' },
    steps: [
      {
        id: 'fetch_customers',
        name: 'Fetch Customer Data',
        step_type: {
          HttpRequest: {
            method: 'GET',
            url: 'https://api.example.com/customers',
            auth: { Bearer: { token: '{{variables.api_token}}' } },
          },
        },
      },
      {
        id: 'transform',
        name: 'Transform and Analyze',
        step_type: {
          Wasm: { module_id: 'customer-transformer-v1', function_name: 'transform_data', fuel_limit: 1000000, timeout_seconds: 10 },
        },
      },
      {
        id: 'save_to_db',
        name: 'Save to Database',
        step_type: {
          DatabaseQuery: {
            database_type: 'PostgreSQL',
            connection_string: '{{variables.db_url}}',
            query: 'INSERT INTO customer_analysis (data) VALUES ($1)',
            query_type: 'RawSql',
          },
        },
      },
    ],
  };
}

/** The canonical steps the seed example must be stored as. */
export const SEED_CANONICAL_STEPS = [
  {
    id: 'fetch_customers',
    name: 'Fetch Customer Data',
    type: 'http',
    config: {
      method: 'GET',
      url: 'https://api.example.com/customers',
      auth: { type: 'bearer', token: '{{variables.api_token}}' },
    },
  },
  {
    id: 'transform',
    name: 'Transform and Analyze',
    type: 'wasm',
    config: {
      module_id: 'customer-transformer-v1',
      function_name: 'transform_data',
      fuel_limit: 1000000,
      timeout_seconds: 10,
      memory_limit_mb: 64,
    },
  },
  {
    id: 'save_to_db',
    name: 'Save to Database',
    type: 'database',
    config: {
      database_type: 'postgresql',
      connection_string: '{{variables.db_url}}',
      query: 'INSERT INTO customer_analysis (data) VALUES ($1)',
      query_type: 'raw_sql',
      row_limit: 10000,
    },
  },
];

/** A minimal valid job in the flat shape. */
export function flatJob(name: string, extra: Record<string, unknown> = {}) {
  return { name, steps: [{ id: 'ping', type: 'http', config: { url: 'https://ping.example/health' } }], ...extra };
}

/**
 * Asserts the error envelope `{error: {code, message[, details]}}` with this status and code, and
 * that the message matches every pattern given (the message must name the problem).
 */
export function assertError(
  res: { status: number; body: any },
  status: number,
  code: string,
  ...patterns: (RegExp | string)[]
): { code: string; message: string; details?: any } {
  const show = JSON.stringify(res.body);
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${show}`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error, `expected an error envelope, got ${show}`);
  const err = res.body.error;
  assert.deepEqual(Object.keys(res.body), ['error'], `only "error" at the top level: ${show}`);
  assert.equal(err.code, code, `error code: ${show}`);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, 'message is not empty');
  for (const k of Object.keys(err)) assert.ok(['code', 'message', 'details'].includes(k), `unexpected key error.${k}`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(err.message.includes(p), `message should mention ${JSON.stringify(p)}: ${err.message}`);
    else assert.match(err.message, p);
  }
  return err;
}

/** Polls `fn` until it returns a truthy value (bounded: throws after `ms`). Not a timing assertion. */
export async function waitFor<T>(fn: () => Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Puts the module the seed's example job names (`customer-transformer-v1`, entry `transform_data`)
 * in the registry: jobs naming a missing module or function are refused when saved.
 */
export async function uploadSeedModule(t: { url: string; adminToken: string }): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const form = new FormData();
  form.set('file', new Blob([readFileSync(new URL('../../fixtures/wasm/customer-tiers/customer-tiers.wasm', import.meta.url))]), 'm.wasm');
  form.set('name', 'customer-transformer-v1');
  form.set('version', '1.0.0');
  form.set('author', 'seed');
  const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
  if (res.status !== 201) throw new Error(`uploading the seed module failed: ${res.status} ${await res.text()}`);
}
