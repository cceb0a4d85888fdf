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

const LEVEL_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/**
 * `parent.child(bindings)`, made only when something is logged through it at an enabled level.
 * A child costs about 7 us (pino serializes its bindings at once), and the engine gives one to
 * every step, whose executor mostly logs at debug: a call at a disabled level is answered by the
 * parent's no-op without making the child.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | null = null;
  const real = (): Logger => (child ??= parent.child(bindings));
  const bound = new Map<string | symbol, { fn: unknown; call: unknown }>();
  // The level is the parent's until a child exists: asking for it makes none (so a lazy child of a lazy child stays lazy).
  const isLevelEnabled = (level: string): boolean => parent.isLevelEnabled(level);
  return new Proxy(parent, {
    get(target, prop) {
      if (child === null && typeof prop === 'string') {
        if (prop === 'isLevelEnabled') return isLevelEnabled;
        if (prop === 'level') return target.level;
        if (LEVEL_METHODS.has(prop) && !target.isLevelEnabled(prop)) return Reflect.get(target, prop, target);
      }
      const c = real();
      const v = Reflect.get(c, prop, c);
      if (typeof v !== 'function') return v;
      // Bound once per method: a line logged in a loop costs no new function.
      let b = bound.get(prop);
      if (b === undefined || b.fn !== v) bound.set(prop, (b = { fn: v, call: v.bind(c) }));
      return b.call;
    },
    // What is set (a level) is the child's own, as on a child made at once.
    set(_target, prop, value) {
      return Reflect.set(real(), prop, value);
    },
  });
}
