// The `vecron` global of a JavaScript module (docs/sdk/js.md). Compiled to QuickJS bytecode when
// the engine is built and run once per instance in _initialize, before any of the author's code.
// engine.c provides `__vecron_native` (log, getContext, setContext, host) and calls
// vecron.__engine.setInput / callEntry / outputJson / describeError.
(() => {
  const native = globalThis.__vecron_native;
  delete globalThis.__vecron_native;

  const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 };
  const NO_OUTPUT = Symbol('no output');
  let input;
  let output = NO_OUTPUT;

  const show = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return String(v);
    try {
      const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
      return s === undefined ? String(v) : s;
    } catch {
      return String(v);
    }
  };
  const line = (args) => args.map(show).join(' ');

  /** A refused or failed host call: `code` is the host's error code (permission_denied, ...). */
  class HostError extends Error {
    constructor(fn, code, message) {
      super(`${fn}: ${code}: ${message}`);
      this.name = 'HostError';
      this.function = fn;
      this.code = code;
      this.hostMessage = message;
    }
  }

  // The order of PRIVILEGED_HOST_FUNCTIONS (src/wasm/host/types.ts) and engine.h.
  const HOST = ['http_request', 'db_query', 'file_read', 'file_write', 'file_list', 'crypto', 'time'];
  const call = (fn, request) => {
    const text = native.host(HOST.indexOf(fn), JSON.stringify(request));
    if (text === null) {
      throw new HostError(
        fn,
        'unavailable',
        `${fn} is not linked into this module: the build links the host functions the source names ` +
          `(vecron.http.request, vecron.db.query, vecron.files.*, vecron.crypto.*, vecron.time.*); ` +
          `set "js": {"host_functions": "all"} in vecron.json to link them all`,
      );
    }
    const answer = JSON.parse(text);
    if (answer !== null && typeof answer === 'object' && answer.error !== null && typeof answer.error === 'object') {
      throw new HostError(fn, String(answer.error.code), String(answer.error.message));
    }
    return answer;
  };
  const withOp = (fn, op) => (fields = {}) => call(fn, { ...fields, op });

  const log = (...args) => native.log(LEVELS.info, line(args));
  for (const [name, level] of Object.entries(LEVELS)) log[name] = (...args) => native.log(level, line(args));

  const vecron = {
    /** The input of this run (the job context, or the step's `input` template), parsed. */
    input: () => input,
    /** Sets the output (for a module that does not return it from its entry function). */
    output: (value) => {
      output = value;
    },
    log,
    context: {
      /** A value of the job context (`""`, a bare key, or a dotted path); undefined when missing. */
      get: (key = '') => {
        const text = native.getContext(String(key));
        return text === null ? undefined : JSON.parse(text);
      },
      /** Records a JSON value under `key` for later steps and the execution record. */
      set: (key, value) => {
        const text = JSON.stringify(value === undefined ? null : value);
        const r = native.setContext(String(key), text);
        if (r === 1) throw new TypeError(`context.set(${JSON.stringify(String(key))}): the key is over 4 KiB or the value is not JSON`);
        if (r === 2) throw new RangeError(`context.set(${JSON.stringify(String(key))}): the run's context writes would pass 4 MiB`);
      },
    },
    /** A validation verdict: the step fails with these errors (docs/abi.md). */
    invalid: (errors) => ({ valid: false, errors: Array.isArray(errors) ? errors : [errors] }),
    /** Routes the job: `route("notify", out)` or `route(["a", "b"], out)`; `route([])` ends it. */
    route: (next, value = {}) => (Array.isArray(next) ? { ...value, next_steps: next } : { ...value, next_step: String(next) }),
    http: {
      /** {method, url, headers, body, timeout_ms} -> {status, headers, body}. */
      request: (req) => call('http_request', { method: 'GET', headers: {}, body: null, ...req }),
      get: (url, opts = {}) => call('http_request', { headers: {}, body: null, ...opts, method: 'GET', url }),
      post: (url, body, opts = {}) =>
        call('http_request', {
          headers: typeof body === 'string' ? {} : { 'content-type': 'application/json' },
          ...opts,
          method: 'POST',
          url,
          body: typeof body === 'string' || body === null ? body : JSON.stringify(body),
        }),
    },
    db: {
      /** query(datasource, sql, params, {max_rows}) -> {columns, rows, row_count}. */
      query: (datasource, sql, params = [], opts = {}) => call('db_query', { ...opts, datasource, sql, params }),
    },
    files: {
      /** read(path) -> {content, encoding, size}. */
      read: (path) => call('file_read', { path }),
      /** write(path, content, {encoding}) -> {size, sha256}. */
      write: (path, content, opts = {}) => call('file_write', { ...opts, path, content }),
      /** list(prefix) -> [{path, size, modified_at}]. */
      list: (prefix = '') => call('file_list', { prefix }).files,
    },
    crypto: {
      sha256: (data) => call('crypto', { op: 'sha256', data }),
      sha512: (data) => call('crypto', { op: 'sha512', data }),
      hmacSha256: (keySecret, data) => call('crypto', { op: 'hmac_sha256', key_secret: keySecret, data }),
      randomBytes: (n) => call('crypto', { op: 'random_bytes', n }),
      uuid: () => call('crypto', { op: 'uuid' }),
      /** Any op of the crypto host function: call('aes_256_gcm_encrypt', {key_secret, data}). */
      call: (op, fields = {}) => withOp('crypto', op)(fields),
    },
    time: {
      /** {epoch_ms, iso} (tz default Asia/Ho_Chi_Minh). */
      now: (tz) => call('time', tz === undefined ? { op: 'now' } : { op: 'now', tz }),
      format: (fields) => withOp('time', 'format')(fields),
      parse: (fields) => withOp('time', 'parse')(fields),
      add: (fields) => withOp('time', 'add')(fields),
    },
    HostError,
  };

  Object.defineProperty(vecron, '__engine', {
    enumerable: false,
    value: {
      setInput: (v) => {
        input = v;
      },
      callEntry: (ns, entry) => {
        const fn = typeof ns[entry] === 'function' ? ns[entry] : typeof ns.default === 'function' ? ns.default : undefined;
        if (fn !== undefined) return fn(input);
        if (output === NO_OUTPUT) {
          throw new Error(`the module neither exports a function "${entry}" (or a default function) nor calls vecron.output()`);
        }
        return undefined;
      },
      outputJson: (result) => {
        const value = result === undefined && output !== NO_OUTPUT ? output : result;
        if (value === undefined) {
          throw new TypeError('the entry returned undefined: return the output (or call vecron.output(value))');
        }
        const text = JSON.stringify(value);
        if (text === undefined) throw new TypeError(`the output is not JSON (${typeof value})`);
        return text;
      },
      describeError: (e) => {
        if (e instanceof Error) {
          // The prelude's own frames (callEntry, call, HostError) say nothing to the author.
          const frames = typeof e.stack === 'string' ? e.stack.split('\n').filter((l) => l.trim() !== '' && !l.includes('vecron:prelude')) : [];
          const stack = frames.length > 0 ? `\n${frames.join('\n')}` : '';
          return `${e.name}: ${e.message}${stack}`;
        }
        return `${show(e)} (a thrown value that is not an Error)`;
      },
    },
  });

  // A pre-initialised module starts every run from the same memory: Math.random's own state would
  // repeat, so it reads WASI random_get instead.
  Object.defineProperty(Math, 'random', { value: () => native.random(), writable: true, configurable: true, enumerable: false });

  Object.freeze(vecron.context);
  globalThis.vecron = vecron;
  globalThis.console = {
    log,
    info: log.info,
    debug: log.debug,
    warn: log.warn,
    error: log.error,
  };
})();
