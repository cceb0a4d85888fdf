import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs (pino). Secrets never reach here: callers log masked values only. */
export function createLogger(level: string, name = 'vecron'): Logger {
  return pino({
    name,
    level,
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
  });
}
