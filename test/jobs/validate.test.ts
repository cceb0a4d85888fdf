import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { canonicalJobJsonSchema, parseJobDocument, validateJobDocument } from '../../src/jobs/validate.ts';
import type { JobDefinition } from '../../src/jobs/types.ts';
import type { Problem } from '../../src/errors.ts';
import { VecronError } from '../../src/errors.ts';
import { stepDefinitions, stepTypes } from '../../src/executors/definitions.ts';
import { seedJob } from '../api/support.ts';

// The design study's example job, in its own shape (shared with the API tests).
const { variables: _v, ...seedExample } = seedJob();

/** The same job as seedExample, written in the flat shape. */
const flatExample = {
  name: 'customer-analysis',
  steps: [
    {
      id: 'fetch_customers',
      name: 'Fetch Customer Data',
      type: 'http',
      config: { method: 'get', url: 'https://api.example.com/customers', auth: { type: 'bearer', token: '{{variables.api_token}}' } },
    },
    {
      id: 'transform',
      name: 'Transform and Analyze',
      type: 'wasm',
      config: { module_id: 'customer-transformer-v1', function_name: 'transform_data', fuel_limit: 1000000, timeout_seconds: 10 },
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
      },
    },
  ],
};

const wasmStep = { id: 'w', type: 'wasm', config: { module_id: 'm@1.0.0', function_name: 'run' } };

function valid(input: unknown): JobDefinition {
  const r = validateJobDocument(input);
  if (!r.ok) assert.fail(`expected a valid job, got ${JSON.stringify(r.problems, null, 2)}`);
  return r.job;
}

function problems(input: unknown): Problem[] {
  const r = validateJobDocument(input);
  assert.equal(r.ok, false, 'expected problems');
  return (r as { ok: false; problems: Problem[] }).problems;
}

function problemAt(list: Problem[], path: string): Problem {
  const p = list.find((x) => x.path === path);
  assert.ok(p, `no problem at '${path}'; got ${JSON.stringify(list, null, 2)}`);
  return p;
}

describe('validateJobDocument: shapes', () => {
  it('normalises the seed example to the canonical form', () => {
    const job = valid(seedExample);
    assert.equal(job.steps.length, 3);
    const [http, wasm, db] = job.steps;
    assert.equal(http.type, 'http');
    assert.deepEqual(http.config, {
      method: 'GET',
      url: 'https://api.example.com/customers',
      auth: { type: 'bearer', token: '{{variables.api_token}}' },
    });
    assert.equal(wasm.type, 'wasm');
    assert.deepEqual(wasm.config, {
      module_id: 'customer-transformer-v1',
      function_name: 'transform_data',
      fuel_limit: 1000000,
      timeout_seconds: 10,
      memory_limit_mb: 64,
    });
    assert.equal(db.type, 'database');
    if (db.type !== 'database') return;
    assert.equal(db.config.database_type, 'postgresql');
    assert.equal(db.config.query_type, 'raw_sql');
    assert.equal(db.config.row_limit, 10000);
    assert.equal(db.name, 'Save to Database');
    assert.ok(!('step_type' in db));
  });

  it('a flat job and its seed equivalent normalise to deep-equal documents', () => {
    assert.deepEqual(valid(flatExample), valid(seedExample));
  });

  it('does not mutate its input', () => {
    const copy = structuredClone(seedExample);
    valid(seedExample);
    assert.deepEqual(seedExample, copy);
  });

  it('the canonical output is a fixed point, and GET output (with id, created_at, updated_at) can be PUT back', () => {
    const job = valid(seedExample);
    assert.deepEqual(valid(job), job);
    const fromApi = { id: '0195c2d4-8f5e-7aa0-9a51-6f0c8b8e2f10', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-02T00:00:00Z', ...job };
    const again = valid(fromApi);
    assert.deepEqual(again, job);
    assert.ok(!('id' in again) && !('created_at' in again) && !('updated_at' in again));
  });

  it('applies defaults', () => {
    const job = valid({ name: 'defaults', steps: [wasmStep] });
    assert.deepEqual(job, {
      name: 'defaults',
      description: null,
      schedule: null,
      steps: [
        {
          id: 'w',
          name: 'w', // name defaults to the id
          type: 'wasm',
          config: { module_id: 'm@1.0.0', function_name: 'run', fuel_limit: 1000000, timeout_seconds: 30, memory_limit_mb: 64 },
        },
      ],
      variables: {},
      timeout_seconds: 3600,
      max_retries: 3,
      retry_backoff_seconds: 5,
      enabled: true,
      misfire_policy: 'fire_once',
      overlap_policy: 'allow',
      webhook: null,
      concurrency_key: null,
      concurrency_limit: null,
      rate_limit: null,
    });
    const http = valid({ name: 'h', steps: [{ id: 'h', type: 'http', config: { url: 'https://x.example' } }] }).steps[0];
    assert.deepEqual(http.config, { method: 'GET', url: 'https://x.example' });
  });

  it('schedules: canonical, seed-style and bare string; cron time zone defaults to Asia/Ho_Chi_Minh', () => {
    const job = (schedule: unknown) => valid({ name: 'j', schedule, steps: [wasmStep] }).schedule;
    assert.deepEqual(job({ type: 'cron', expression: '0 0 9 ? * MON-FRI' }), {
      type: 'cron',
      expression: '0 0 9 ? * MON-FRI',
      timezone: 'Asia/Ho_Chi_Minh',
    });
    assert.deepEqual(job({ Cron: { expression: '0 0 9 ? * MON-FRI', timezone: 'Europe/Berlin' } }), {
      type: 'cron',
      expression: '0 0 9 ? * MON-FRI',
      timezone: 'Europe/Berlin',
    });
    assert.deepEqual(job('0 0 9 ? * MON-FRI'), { type: 'cron', expression: '0 0 9 ? * MON-FRI', timezone: 'Asia/Ho_Chi_Minh' });
    assert.deepEqual(job({ FixedRate: { interval_seconds: 60 } }), { type: 'fixed_rate', interval_seconds: 60 });
    assert.deepEqual(job({ FixedDelay: { delay_seconds: 30 } }), { type: 'fixed_delay', delay_seconds: 30 });
    assert.deepEqual(job({ Once: { at: '2026-12-01T09:00:00+07:00' } }), { type: 'once', at: '2026-12-01T02:00:00.000Z' });
    assert.equal(job(null), null);
  });

  it('maps the other seed enums (Basic / OAuth2 auth, MariaDB, StoredProcedure, FileProcessing, Sftp)', () => {
    const job = valid({
      name: 'seed-enums',
      steps: [
        { id: 'a', step_type: { HttpRequest: { method: 'post', url: 'https://x.example', auth: { Basic: { username: 'u', password: 'p' } } } } },
        {
          id: 'b',
          step_type: {
            HttpRequest: {
              method: 'GET',
              url: 'https://x.example',
              auth: { OAuth2: { token_url: 'https://idp.example/token', client_id: 'c', client_secret: '${SECRET}', scope: 'read' } },
            },
          },
        },
        { id: 'c', step_type: { DatabaseQuery: { database_type: 'MariaDB', connection: 'core', query: 'reporting.refresh', query_type: 'StoredProcedure' } } },
        { id: 'd', step_type: { FileProcessing: { operation: 'Read', format: 'Excel', path: 'in/report.xlsx' } } },
        {
          id: 'e',
          step_type: {
            Sftp: {
              operation: 'Download',
              host: 'sftp.bank.example',
              username: 'u',
              auth: { Password: { password: '${SFTP_PASSWORD}' } },
              remote_path: '/out',
              pattern: 'TXN_*.csv',
            },
          },
        },
      ],
    });
    const cfg = job.steps.map((s) => s.config as unknown as Record<string, unknown>);
    assert.deepEqual(cfg[0].auth, { type: 'basic', username: 'u', password: 'p' });
    assert.equal(cfg[0].method, 'POST');
    assert.deepEqual(cfg[1].auth, {
      type: 'oauth2_client_credentials',
      token_url: 'https://idp.example/token',
      client_id: 'c',
      client_secret: '${SECRET}',
      scope: 'read',
    });
    assert.equal(cfg[2].database_type, 'mysql');
    assert.equal(cfg[2].query_type, 'stored_procedure');
    assert.equal(cfg[3].operation, 'read');
    assert.equal(cfg[3].format, 'xlsx');
    assert.equal(cfg[3].max_output_rows, 100);
    assert.equal(cfg[4].operation, 'download');
    assert.equal(cfg[4].port, 22);
    assert.deepEqual(cfg[4].auth, { type: 'password', password: '${SFTP_PASSWORD}' });
  });
});

describe('validateJobDocument: problems', () => {
  it('returns every problem at once, with the path the user wrote', () => {
    const list = problems({
      name: 'four-errors',
      max_retries: 11, // 1
      steps: [
        { id: 'seed', name: 'Seed', step_type: { HttpRequest: { method: 'GET' } } }, // 2: url missing
        { id: 'flat', type: 'http', config: { url: 'https://x.example', method: 'FETCH' } }, // 3
        { id: 'db', step_type: { DatabaseQuery: { database_type: 'Oracle', connection: 'x', query: 'select 1' } } }, // 4
      ],
    });
    assert.deepEqual(list, [
      { path: 'steps[0].step_type.HttpRequest', message: "missing required property 'url'" },
      { path: 'steps[1].config.method', message: 'must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS (got "FETCH")' },
      { path: 'steps[2].step_type.DatabaseQuery.database_type', message: 'Oracle is not supported (supported: postgresql, mysql)' },
      { path: 'max_retries', message: 'must be at most 10 (got 11)' },
    ]);
  });

  it('maps nested seed enums back to the seed path', () => {
    const list = problems({
      name: 'x',
      steps: [{ id: 'a', step_type: { HttpRequest: { url: 'https://x.example', auth: { Bearer: { token: '' } } } } }],
    });
    assert.deepEqual(list, [{ path: 'steps[0].step_type.HttpRequest.auth.Bearer.token', message: 'must not be empty' }]);
    const missing = problems({
      name: 'x',
      steps: [{ id: 'a', step_type: { HttpRequest: { url: 'https://x.example', auth: { Bearer: {} } } } }],
    });
    assert.deepEqual(missing, [{ path: 'steps[0].step_type.HttpRequest.auth.Bearer', message: "missing required property 'token'" }]);
  });

  it('unknown properties are reported at their own path, with a suggestion', () => {
    const list = problems({
      name: 'x',
      nmae: 'typo',
      steps: [{ id: 'a', type: 'http', config: { url: 'https://x.example', foo: 1 } }],
    });
    assert.deepEqual(list, [
      { path: 'steps[0].config.foo', message: "unknown property 'foo'" },
      { path: 'nmae', message: "unknown property 'nmae' (did you mean 'name'?)" },
    ]);
  });

  it('unknown step type names the known ones', () => {
    assert.deepEqual(problems({ name: 'x', steps: [{ id: 'a', type: 'ftp', config: {} }] }), [
      { path: 'steps[0].type', message: "unknown step type 'ftp' (expected one of http, database, file, sftp, wasm)" },
    ]);
    assert.deepEqual(problems({ name: 'x', steps: [{ id: 'a', step_type: { Ftp: {} } }] }), [
      {
        path: 'steps[0].step_type',
        message: "unknown step type 'Ftp' (expected one of HttpRequest, DatabaseQuery, FileProcessing, Sftp, Wasm)",
      },
    ]);
  });

  it('a step needs exactly one of type / step_type', () => {
    const both = problems({ name: 'x', steps: [{ id: 'a', type: 'wasm', config: {}, step_type: { Wasm: {} } }] });
    assert.equal(both.length, 1);
    assert.equal(both[0].path, 'steps[0]');
    assert.match(both[0].message, /not both/);
    const neither = problems({ name: 'x', steps: [{ id: 'a', config: {} }] });
    assert.equal(neither.length, 1);
    assert.equal(neither[0].path, 'steps[0]');
    assert.match(neither[0].message, /missing required property 'type'/);
  });

  it('invalid cron expression (seed and canonical paths)', () => {
    assert.deepEqual(problems({ name: 'x', schedule: { Cron: { expression: '61 * * * * *' } }, steps: [wasmStep] }), [
      { path: 'schedule.Cron.expression', message: 'seconds value 61 is out of range (0-59)' },
    ]);
    const five = problems({ name: 'x', schedule: { type: 'cron', expression: '*/5 * * * *' }, steps: [wasmStep] });
    assert.equal(five[0].path, 'schedule.expression');
    assert.match(five[0].message, /must have 6 or 7 fields .* got 5 — prepend a seconds field, e.g. '0 \*\/5 \* \* \* \*'/);
    // a bare string schedule is reported at `schedule`
    assert.equal(problems({ name: 'x', schedule: 'nope', steps: [wasmStep] })[0].path, 'schedule');
  });

  it('unknown time zone', () => {
    assert.deepEqual(problems({ name: 'x', schedule: { type: 'cron', expression: '0 0 9 * * ?', timezone: 'Mars/Base' }, steps: [wasmStep] }), [
      {
        path: 'schedule.timezone',
        message: "unknown time zone 'Mars/Base' (use an IANA name such as 'Asia/Ho_Chi_Minh', 'Europe/Berlin' or 'UTC')",
      },
    ]);
  });

  it('duplicate step ids', () => {
    assert.deepEqual(problems({ name: 'x', steps: [wasmStep, { ...wasmStep, name: 'again' }] }), [
      { path: 'steps[1].id', message: "duplicate step id 'w' (also used by steps[0])" },
    ]);
  });

  it('max_retries 11 is rejected, at job and step level', () => {
    assert.deepEqual(problems({ name: 'x', max_retries: 11, steps: [{ ...wasmStep, max_retries: 11 }] }), [
      { path: 'steps[0].max_retries', message: 'must be at most 10 (got 11)' },
      { path: 'max_retries', message: 'must be at most 10 (got 11)' },
    ]);
    assert.equal(valid({ name: 'x', max_retries: 10, steps: [wasmStep] }).max_retries, 10);
    assert.equal(valid({ name: 'x', max_retries: 0, steps: [wasmStep] }).max_retries, 0);
  });

  it('non-object input', () => {
    for (const [input, got] of [
      [null, 'null'],
      [[], 'array'],
      ['job', 'string'],
      [42, 'integer'],
      [undefined, 'undefined'],
    ] as const) {
      assert.deepEqual(problems(input), [{ path: '', message: `job document must be a JSON object (got ${got})` }]);
    }
  });

  it('required top-level properties and empty steps', () => {
    assert.deepEqual(problems({}), [
      { path: '', message: "missing required property 'name'" },
      { path: '', message: "missing required property 'steps'" },
    ]);
    assert.deepEqual(problems({ name: 'x', steps: [] }), [{ path: 'steps', message: 'must not be empty' }]);
    assert.equal(problems({ name: 'x', steps: Array.from({ length: 101 }, (_, i) => ({ ...wasmStep, id: `s${i}` })) })[0].path, 'steps');
  });

  it('variable names must be usable in {{variables.<name>}}', () => {
    const list = problems({ name: 'x', variables: JSON.parse('{"ok_name": 1, "bad-name": 2, "__proto__": 3}'), steps: [wasmStep] });
    assert.deepEqual(
      list.map((p) => p.path),
      ['variables.bad-name', 'variables.__proto__'],
    );
    assert.equal(({} as Record<string, unknown>).ok_name, undefined); // no prototype pollution
  });

  it('step id pattern', () => {
    const list = problems({ name: 'x', steps: [{ ...wasmStep, id: '1-bad id' }] });
    assert.equal(list[0].path, 'steps[0].id');
  });

  it('semantic checks of step types: URL scheme, body vs body_text, connection, relative paths', () => {
    const list = problems({
      name: 'x',
      steps: [
        { id: 'a', type: 'http', config: { url: 'ftp://files.example/x', body: { a: 1 }, body_text: 'x' } },
        { id: 'b', type: 'database', config: { database_type: 'mysql', query: 'select 1' } },
        { id: 'c', type: 'file', config: { operation: 'write', format: 'csv', path: '../etc/passwd' } },
      ],
    });
    assert.equal(problemAt(list, 'steps[0].config.url').message, "must be an http(s) URL (got scheme 'ftp')");
    assert.match(problemAt(list, 'steps[0].config.body_text').message, /mutually exclusive/);
    assert.match(problemAt(list, 'steps[1].config').message, /one of 'connection'.*or 'connection_string' is required/);
    assert.match(problemAt(list, 'steps[2].config.path').message, /'\.\.'/);
    assert.match(problemAt(list, 'steps[2].config').message, /missing required property 'source'/);
    // templates are not checked as URLs
    valid({ name: 'x', steps: [{ id: 'a', type: 'http', config: { url: '{{variables.base_url}}/customers' } }] });
  });

  it('once.at must carry an offset and be a real date; it is stored as toISOString()', () => {
    const at = (v: string) => validateJobDocument({ name: 'x', schedule: { type: 'once', at: v }, steps: [wasmStep] });
    assert.equal(at('2026-02-30T00:00:00Z').ok, false);
    assert.equal(at('2026-12-01T09:00:00').ok, false);
    const ok = at('2026-12-01T09:00:00.5+07:00');
    assert.ok(ok.ok);
    assert.deepEqual(ok.job.schedule, { type: 'once', at: '2026-12-01T02:00:00.500Z' });
  });

  it('parseJobDocument throws validation_failed with the problems', () => {
    assert.deepEqual(parseJobDocument(flatExample), valid(flatExample));
    try {
      parseJobDocument({ name: 'x', steps: [{ id: 'a', type: 'ftp', config: {} }] });
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(err instanceof VecronError);
      assert.equal(err.code, 'validation_failed');
      assert.match(err.message, /^job is invalid: steps\[0\]\.type: unknown step type 'ftp'/);
      assert.deepEqual((err.details as { problems: Problem[] }).problems, [
        { path: 'steps[0].type', message: "unknown step type 'ftp' (expected one of http, database, file, sftp, wasm)" },
      ]);
    }
  });
});

describe('step definitions registry', () => {
  it('keys, types and seed names line up', () => {
    assert.deepEqual(stepTypes, ['http', 'database', 'file', 'sftp', 'wasm']);
    for (const t of stepTypes) assert.equal(stepDefinitions[t].type, t);
    assert.deepEqual(
      stepTypes.map((t) => stepDefinitions[t].seedName),
      ['HttpRequest', 'DatabaseQuery', 'FileProcessing', 'Sftp', 'Wasm'],
    );
  });

  it('canonicalJobJsonSchema compiles and accepts canonical output', () => {
    const ajv = new Ajv({ strict: false, discriminator: true, allowUnionTypes: true });
    const validate = ajv.compile(canonicalJobJsonSchema);
    assert.equal(validate(valid(seedExample)), true, JSON.stringify(validate.errors));
    assert.equal(validate(seedExample), false); // the seed shape is an input form only
  });
});

describe('templates that name steps are checked at save', () => {
  const http = (id: string, config: Record<string, unknown>) => ({ id, type: 'http', config: { url: 'https://api.example.com/x', ...config } });

  it('a step may use the output of the steps before it; trigger.*, variables.* and the rest stay run-time', () => {
    valid({
      name: 'ok',
      steps: [
        http('a', {}),
        http('b', { url: 'https://api.example.com/{{steps.a.output.body.id}}', body: { t: '{{trigger.payload.x}}', v: '${TOKEN}', j: '{{job.name}}' } }),
        http('c', { body: { all: '{{steps}}', a: '{{ steps.a.output }}', b: "{{steps['b'].output.status}}" } }),
      ],
    });
  });

  it('a missing, later or own step is refused at the path where it is written, naming the steps before it', () => {
    const list = problems({
      name: 'bad',
      steps: [
        http('a', { headers: { x: '{{steps.b.output.body}}' } }),
        http('b', { url: 'https://api.example.com/{{steps.nope.output.x}}' }),
        http('c', { body: { items: [1, { id: 'id-{{steps.c.output.id}}' }] } }),
        http('d', { body: '{{steps[0].output}}' }),
      ],
    });
    assert.deepEqual(list, [
      {
        path: 'steps[0].config.headers.x',
        message:
          "template {{steps.b.output.body}} names step 'b', which comes later (steps[1]); a step can use the output of the steps before it only (no step comes before it)",
      },
      { path: 'steps[1].config.url', message: "template {{steps.nope.output.x}} names no step 'nope' (steps before it: a)" },
      { path: 'steps[2].config.body.items[1].id', message: "template {{steps.c.output.id}} names step 'c' itself (steps before it: a, b)" },
      { path: 'steps[3].config.body', message: "template {{steps[0].output}} names no step '0' (steps before it: a, b, c)" },
    ]);
  });

  it('a malformed template is refused at save too, at its path', () => {
    const [p] = problems({ name: 'bad', steps: [http('a', { body: { q: 'x {{steps.a..b}}' } })] });
    assert.equal(p.path, 'steps[0].config.body.q');
    assert.match(p.message, /template \{\{steps\.a\.\.b\}\}: invalid reference/);
  });

  it('in the seed shape the path is the one the user wrote', () => {
    const doc = structuredClone(seedExample) as any;
    doc.steps[2].step_type.DatabaseQuery.parameters = ['{{steps.fetch_customer.output.body}}'];
    const list = problems(doc);
    assert.deepEqual(list, [
      {
        path: 'steps[2].step_type.DatabaseQuery.parameters[0]',
        message: "template {{steps.fetch_customer.output.body}} names no step 'fetch_customer' (steps before it: fetch_customers, transform)",
      },
    ]);
  });
});
