import type { Problem } from '../../errors.ts';
import { egressUrlProblem } from '../../egress/index.ts';
import {
  type JsonSchema,
  type StepDefinition,
  dropNulls,
  formatPath,
  containsTemplate,
  httpUrlProblem,
  isPlainObject,
  problem,
  taggedFromSeed,
} from '../definition.ts';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export type HttpAuth =
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | {
      type: 'oauth2_client_credentials';
      token_url: string;
      client_id: string;
      client_secret: string;
      scope?: string;
      audience?: string;
    };

export interface HttpStepConfig {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean>;
  /** JSON body (sent as application/json unless a Content-Type header says otherwise). */
  body?: unknown;
  /** Raw text body; mutually exclusive with `body`. */
  body_text?: string;
  auth?: HttpAuth;
  timeout_seconds?: number;
  /** Accepted status codes; absent = any 2xx. */
  expected_status?: number[];
  follow_redirects?: boolean;
}

const nonEmpty = { type: 'string', minLength: 1 };

const configSchema: JsonSchema = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: {
    method: { type: 'string', enum: [...HTTP_METHODS], default: 'GET' },
    url: { type: 'string', minLength: 1, maxLength: 8192 },
    headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 16384 } },
    query: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    body: {},
    body_text: { type: 'string' },
    auth: {
      type: 'object',
      required: ['type'],
      discriminator: { propertyName: 'type' },
      oneOf: [
        {
          properties: { type: { const: 'basic' }, username: nonEmpty, password: { type: 'string' } },
          required: ['type', 'username', 'password'],
          additionalProperties: false,
        },
        {
          properties: { type: { const: 'bearer' }, token: nonEmpty },
          required: ['type', 'token'],
          additionalProperties: false,
        },
        {
          properties: {
            type: { const: 'oauth2_client_credentials' },
            token_url: nonEmpty,
            client_id: nonEmpty,
            client_secret: nonEmpty,
            scope: { type: 'string' },
            audience: { type: 'string' },
          },
          required: ['type', 'token_url', 'client_id', 'client_secret'],
          additionalProperties: false,
        },
      ],
    },
    timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
    expected_status: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'integer', minimum: 100, maximum: 599 },
    },
    follow_redirects: { type: 'boolean' },
  },
};

/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function normalize(config: unknown): unknown {
  if (isPlainObject(config) && typeof config.method === 'string') {
    return { ...config, method: config.method.trim().toUpperCase() };
  }
  return config;
}

function fromSeed(seed: any): unknown {
  if (!isPlainObject(seed)) return seed;
  const c = dropNulls(seed);
  if ('auth' in c) {
    const auth = taggedFromSeed(c.auth, { Basic: 'basic', Bearer: 'bearer', OAuth2: 'oauth2_client_credentials' });
    // serde unit variant "None" = no auth
    if (auth === 'None') delete c.auth;
    else {
      if (isPlainObject(auth) && Array.isArray(auth.scope)) auth.scope = auth.scope.join(' ');
      c.auth = auth;
    }
  }
  // The seed's body is a string (Rust `Option<String>`) holding the raw request body.
  if (typeof c.body === 'string' && !('body_text' in c)) {
    c.body_text = c.body;
    delete c.body;
  }
  return c;
}

/** A literal URL that the egress policy refuses is refused at save time (a templated one at run time). */
function literalEgressProblem(url: string): string | null {
  return containsTemplate(url) ? null : egressUrlProblem(url);
}

function check(c: HttpStepConfig): Problem[] {
  const out: Problem[] = [];
  const urlProblem = httpUrlProblem(c.url) ?? literalEgressProblem(c.url);
  if (urlProblem) out.push(problem('url', urlProblem));
  if (c.body !== undefined && c.body_text !== undefined) {
    out.push(problem('body_text', "'body' and 'body_text' are mutually exclusive; use 'body' for JSON, 'body_text' for raw text"));
  }
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    const at = formatPath(['headers', name]);
    if (!HEADER_NAME.test(name)) out.push(problem(at, `invalid header name '${name}'`));
    else if (/[\r\n\0]/.test(value)) out.push(problem(at, 'header value must not contain line breaks or NUL'));
  }
  if (c.auth?.type === 'oauth2_client_credentials') {
    const p = httpUrlProblem(c.auth.token_url) ?? literalEgressProblem(c.auth.token_url);
    if (p) out.push(problem('auth.token_url', p));
  }
  return out;
}

export const http: StepDefinition<'http', HttpStepConfig> = {
  type: 'http',
  seedName: 'HttpRequest',
  loadExecutor: () => import('./executor.ts'),
  title: 'HTTP request (REST/JSON API call)',
  configSchema,
  fromSeed,
  normalize,
  check,
};
