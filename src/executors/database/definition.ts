import type { Problem } from '../../errors.ts';
import { egressHostProblem } from '../../egress/index.ts';
import { type JsonSchema, type StepDefinition, containsTemplate, dropNulls, enumFromSeed, isPlainObject, problem } from '../definition.ts';

export const DATABASE_TYPES = ['postgresql', 'mysql'] as const;
export type DatabaseType = (typeof DATABASE_TYPES)[number];

export interface DatabaseStepConfig {
  /** `mysql` also covers MariaDB. */
  database_type: DatabaseType;
  /** Name of a named connection configured on the server (exactly one of connection / connection_string). */
  connection?: string;
  /** URL (`postgresql://…`, `mysql://…`), usually a template such as `{{variables.db_url}}` or `${DB_URL}`. */
  connection_string?: string;
  /** SQL text for raw_sql (placeholders `$1` for postgresql, `?` for mysql); the procedure name for stored_procedure. */
  query: string;
  query_type: 'raw_sql' | 'stored_procedure';
  parameters?: unknown[];
  /** Rows kept in the step output; more rows is an error, not silent truncation. */
  row_limit: number;
  timeout_seconds?: number;
}

const configSchema: JsonSchema = {
  type: 'object',
  required: ['database_type', 'query'],
  additionalProperties: false,
  properties: {
    database_type: {
      type: 'string',
      enum: [...DATABASE_TYPES],
      'x-unsupported': {
        oracle: 'Oracle is not supported (supported: postgresql, mysql)',
        sqlserver: 'SQL Server is not supported (supported: postgresql, mysql)',
        mssql: 'SQL Server is not supported (supported: postgresql, mysql)',
        sqlite: 'SQLite is not supported (supported: postgresql, mysql)',
        postgres: "use 'postgresql'",
        mariadb: "use 'mysql' for MariaDB",
      },
    },
    connection: { type: 'string', minLength: 1, maxLength: 200 },
    connection_string: { type: 'string', minLength: 1, maxLength: 4096 },
    query: { type: 'string', minLength: 1, maxLength: 1_000_000 },
    query_type: { type: 'string', enum: ['raw_sql', 'stored_procedure'], default: 'raw_sql' },
    parameters: { type: 'array', maxItems: 10_000 },
    row_limit: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000 },
    timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
  },
};

const SEED_DATABASE_TYPES: Record<string, string> = {
  postgresql: 'postgresql',
  postgres: 'postgresql',
  mysql: 'mysql',
  mariadb: 'mysql',
  oracle: 'oracle',
};

function fromSeed(seed: any): unknown {
  if (!isPlainObject(seed)) return seed;
  const c = dropNulls(seed);
  if ('database_type' in c) c.database_type = enumFromSeed(c.database_type, SEED_DATABASE_TYPES);
  if ('query_type' in c) c.query_type = enumFromSeed(c.query_type);
  return c;
}

/** `proc`, `schema.proc`, optionally quoted parts. */
const PROCEDURE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`)(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`)){0,2}$/;

function check(c: DatabaseStepConfig): Problem[] {
  const out: Problem[] = [];
  const hasName = c.connection !== undefined;
  const hasString = c.connection_string !== undefined;
  if (hasName === hasString) {
    out.push(
      problem(
        hasName ? 'connection_string' : '',
        hasName ? "'connection' and 'connection_string' are mutually exclusive" : "one of 'connection' (a named connection) or 'connection_string' is required",
      ),
    );
  }
  if (hasString && !containsTemplate(c.connection_string!)) {
    const s = c.connection_string!.trim();
    if (c.database_type === 'postgresql' && !/^postgres(ql)?:\/\//i.test(s) && !/^\w+\s*=/.test(s)) {
      out.push(problem('connection_string', "must be a 'postgresql://…' URL, a 'key=value' string or a template such as '${DB_URL}'"));
    }
    if (c.database_type === 'mysql' && !/^(mysql|mariadb):\/\//i.test(s)) {
      out.push(problem('connection_string', "must be a 'mysql://…' URL or a template such as '${DB_URL}'"));
    }
    const refused = literalHostProblem(s, c.database_type);
    if (refused) out.push(problem('connection_string', refused));
  }
  if (c.query_type === 'stored_procedure' && !containsTemplate(c.query) && !PROCEDURE_NAME.test(c.query.trim())) {
    out.push(problem('query', "for a stored_procedure, 'query' must be the procedure name (e.g. 'reporting.refresh_daily'); arguments go in 'parameters'"));
  }
  return out;
}

export const database: StepDefinition<'database', DatabaseStepConfig> = {
  type: 'database',
  seedName: 'DatabaseQuery',
  loadExecutor: () => import('./executor.ts'),
  title: 'SQL query or stored procedure on PostgreSQL or MySQL/MariaDB',
  configSchema,
  fromSeed,
  check,
};

/** The egress policy's verdict on a literal connection string's host (URL form; key=value host=). */
function literalHostProblem(s: string, type: string): string | null {
  const defaultPort = type === 'mysql' ? 3306 : 5432;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    try {
      const u = new URL(s.replace(/^(postgres(ql)?|mysql|mariadb):/i, 'http:'));
      if (!u.hostname) return null;
      return egressHostProblem(u.hostname, u.port ? Number(u.port) : defaultPort);
    } catch {
      return null;
    }
  }
  const host = /(?:^|\s)(?:host|hostaddr)\s*=\s*'?([^'\s]+)/.exec(s)?.[1];
  const port = /(?:^|\s)port\s*=\s*'?(\d+)/.exec(s)?.[1];
  if (!host || host.startsWith('/')) return null;
  return egressHostProblem(host, port ? Number(port) : defaultPort);
}
