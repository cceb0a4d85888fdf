import type { Logger } from '../logger.ts';
import { describeDbError } from './transient.ts';

/** How a process logs a database connection error: only the message (node-postgres errors may carry the whole client object). */
export const dbErrorLogger =
  (logger: Logger) =>
  (err: unknown): void =>
    logger.warn({ err: describeDbError(err) }, 'database connection error');
