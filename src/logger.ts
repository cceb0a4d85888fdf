import pino, { type DestinationStream, type Logger } from 'pino';
import { traceLogFields } from './tracing/state.ts';

export type { Logger };

/**
 * Structured JSON logs (pino). Secrets never reach here: callers log masked values only. While
 * tracing is on, a line logged inside a span carries its `trace_id` and `span_id` (src/tracing).
 */
export function createLogger(level: string, name = 'vecron', destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    mixin: traceLogFields,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-vecron-signature"]',
        'headers.authorization',
        'headers.cookie',
        'req.query.access_token',
        'query.access_token',
        '*.access_token',
        '*.password',
        '*.token',
        '*.secret',
      ],
      censor: '***',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
