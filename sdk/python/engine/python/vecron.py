"""vecron's Python SDK (docs/sdk/python.md): the input, the output, a validation verdict, a route,
logs, the job context and the host functions, over the guest ABI (docs/abi.md).

    import vecron

    def process(input):
        if not isinstance(input.get('order'), dict):
            return vecron.invalid(['order: must be an object'])
        vecron.log.info('checked the order')
        return vecron.route('fulfil', {'valid': True})

The module is imported when it is built (its top-level code runs then, once); each run calls the
entry function (`process`) with the input.
"""
import json as _json

import _vecron as _native

__all__ = ['input', 'output', 'log', 'context', 'invalid', 'route', 'http', 'db', 'files', 'crypto', 'time', 'HostError']

_NO_OUTPUT = object()
_input = _NO_OUTPUT
_output = _NO_OUTPUT
_initialized = False


def input():
    """The input of this run (the job context, or the step's `input` template), parsed."""
    if _input is _NO_OUTPUT:
        raise RuntimeError('vecron.input() has no value while the module is built: call it inside the entry function')
    return _input


def output(value):
    """Sets the output (for an entry function that returns None)."""
    global _output
    _output = value


def _show(v):
    if isinstance(v, str):
        return v
    if isinstance(v, BaseException):
        return f'{type(v).__name__}: {v}'
    try:
        return _json.dumps(v, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(v)


class _Log:
    """vecron.log('x', 1) logs at info; .debug / .info / .warn (.warning) / .error pick the level."""

    def _emit(self, level, args):
        _native.log(level, ' '.join(_show(a) for a in args))

    def __call__(self, *args):
        self._emit(1, args)

    def debug(self, *args):
        self._emit(0, args)

    def info(self, *args):
        self._emit(1, args)

    def warn(self, *args):
        self._emit(2, args)

    warning = warn

    def error(self, *args):
        self._emit(3, args)


log = _Log()


class _Context:
    def get(self, key='', default=None):
        """A value of the job context ('' = all of it, a bare key, or a dotted path); `default` when missing."""
        text = _native.get_context(str(key))
        return default if text is None else _json.loads(text)

    def set(self, key, value):
        """Records a JSON value under `key` for later steps and the execution record."""
        r = _native.set_context(str(key), _json.dumps(value, ensure_ascii=False, allow_nan=False))
        if r == 1:
            raise ValueError(f'context.set({key!r}): the key is over 4 KiB or the value is not JSON')
        if r == 2:
            raise OverflowError(f"context.set({key!r}): the run's context writes would pass 4 MiB")


context = _Context()


def invalid(errors):
    """A validation verdict: returning it fails the step with these errors (validation_failed)."""
    return {'valid': False, 'errors': list(errors) if isinstance(errors, (list, tuple)) else [errors]}


def route(next_step, value=None):
    """Routes the job: route('notify', out), route(['a', 'b'], out); route([]) ends it."""
    out = dict(value or {})
    if isinstance(next_step, (list, tuple)):
        out['next_steps'] = [str(s) for s in next_step]
    else:
        out['next_step'] = str(next_step)
    return out


class HostError(Exception):
    """A refused or failed host call; `code` is the host's error code (permission_denied, timeout, ...)."""

    def __init__(self, function, code, message):
        super().__init__(f'{function}: {code}: {message}')
        self.function = function
        self.code = code
        self.message = message


# The order of PRIVILEGED_HOST_FUNCTIONS (src/wasm/host/types.ts) and engine.h.
_HOST = ('http_request', 'db_query', 'file_read', 'file_write', 'file_list', 'crypto', 'time')


def _call(fn, request):
    text = _native.host(_HOST.index(fn), _json.dumps(request, ensure_ascii=False))
    if text is None:
        raise HostError(
            fn,
            'unavailable',
            f'{fn} is not linked into this module: the build links the host functions the sources name '
            '(vecron.http, vecron.db, vecron.files.*, vecron.crypto, vecron.time); '
            'set "python": {"host_functions": "all"} in vecron.json to link them all',
        )
    answer = _json.loads(text)
    if isinstance(answer, dict) and isinstance(answer.get('error'), dict):
        raise HostError(fn, str(answer['error'].get('code')), str(answer['error'].get('message')))
    return answer


def _fields(d):
    return {k: v for k, v in d.items() if v is not None}


class _Http:
    def request(self, method='GET', url=None, headers=None, body=None, timeout_ms=None):
        """-> {'status', 'headers', 'body'} (body as text). Needs the http permission for the URL."""
        request = {'method': method, 'url': url, 'headers': headers or {}, 'body': body}
        if timeout_ms is not None:
            request['timeout_ms'] = timeout_ms
        return _call('http_request', request)

    def get(self, url, headers=None, timeout_ms=None):
        return self.request('GET', url, headers, None, timeout_ms)

    def post(self, url, body=None, headers=None, timeout_ms=None):
        """A dict or list body is sent as JSON (content-type application/json)."""
        h = dict(headers or {})
        if body is not None and not isinstance(body, str):
            body = _json.dumps(body, ensure_ascii=False)
            h.setdefault('content-type', 'application/json')
        return self.request('POST', url, h, body, timeout_ms)


class _Db:
    def query(self, datasource, sql, params=(), max_rows=None):
        """-> {'columns', 'rows', 'row_count'}. Needs the db permission for the datasource."""
        return _call('db_query', _fields({'datasource': datasource, 'sql': sql, 'params': list(params), 'max_rows': max_rows}))


class _Files:
    def read(self, path):
        """-> {'content', 'encoding', 'size'}."""
        return _call('file_read', {'path': path})

    def write(self, path, content, encoding=None):
        """-> {'size', 'sha256'}."""
        return _call('file_write', _fields({'path': path, 'content': content, 'encoding': encoding}))

    def list(self, prefix=''):
        """-> [{'path', 'size', 'modified_at'}]."""
        return _call('file_list', {'prefix': prefix})['files']


class _Crypto:
    def sha256(self, data):
        return _call('crypto', {'op': 'sha256', 'data': data})

    def sha512(self, data):
        return _call('crypto', {'op': 'sha512', 'data': data})

    def hmac_sha256(self, key_secret, data):
        return _call('crypto', {'op': 'hmac_sha256', 'key_secret': key_secret, 'data': data})

    def random_bytes(self, n):
        return _call('crypto', {'op': 'random_bytes', 'n': n})

    def uuid(self):
        return _call('crypto', {'op': 'uuid'})

    def call(self, op, **fields):
        """Any op of the crypto host function: call('aes_256_gcm_encrypt', key_secret=..., data=...)."""
        return _call('crypto', {**fields, 'op': op})


class _Time:
    def now(self, tz=None):
        """-> {'epoch_ms', 'iso'} (tz default Asia/Ho_Chi_Minh)."""
        return _call('time', _fields({'op': 'now', 'tz': tz}))

    def format(self, **fields):
        return _call('time', {**fields, 'op': 'format'})

    def parse(self, **fields):
        return _call('time', {**fields, 'op': 'parse'})

    def add(self, **fields):
        return _call('time', {**fields, 'op': 'add'})


http = _Http()
db = _Db()
files = _Files()
crypto = _Crypto()
time = _Time()
