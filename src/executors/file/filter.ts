/**
 * The file step's row filter: a small expression language, parsed once (when the job is saved, to
 * report mistakes early, and again at run time) and compiled to closures. Nothing is evaluated as
 * JavaScript.
 *
 *   amount > 1000 and status == 'OK'
 *   not is_empty(email) && lower(country) in ('vn', 'sg')
 *   [Transaction Date] >= '2024-01-01' or `Mã KH` = "KH001"
 *
 * Values: numbers, 'text' or "text", true, false, null; column names (letters, digits, `_`; others in
 * [brackets] or `backticks`). Operators: or ||, and &&, not !, == = != <>, < <= > >=, in (…), + - * / %.
 * Functions: lower, upper, trim, length, starts_with, ends_with, contains, is_empty, number.
 * Comparisons: a number and text that reads as a number compare as numbers (CSV values are text
 * unless `types` converts them); other text compares as text; null only equals null.
 */

export type Row = Record<string, unknown>;
export type Compiled = (row: Row) => unknown;

export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

export interface ParsedFilter {
  evaluate: (row: Row) => boolean;
  /** Column names the expression refers to (checked against the file's header). */
  columns: string[];
}

type Token =
  | { t: 'num'; v: number; p: number }
  | { t: 'str'; v: string; p: number }
  | { t: 'id'; v: string; p: number; quoted: boolean }
  | { t: 'op'; v: string; p: number }
  | { t: 'end'; p: number };

const WORD_OPS = new Set(['and', 'or', 'not', 'in', 'true', 'false', 'null']);

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]), p: start });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new FilterSyntaxError(`unterminated text starting at position ${start + 1}`, start);
        if (src[i] === '\\' && i + 1 < src.length) {
          s += src[i + 1];
          i += 2;
        } else if (src[i] === c) {
          if (src[i + 1] === c) {
            s += c;
            i += 2;
          } else {
            i++;
            break;
          }
        } else s += src[i++];
      }
      out.push({ t: 'str', v: s, p: start });
      continue;
    }
    if (c === '[' || c === '`') {
      const close = c === '[' ? ']' : '`';
      const j = src.indexOf(close, i + 1);
      if (j < 0) throw new FilterSyntaxError(`unterminated column name starting at position ${start + 1} (missing '${close}')`, start);
      const name = src.slice(i + 1, j);
      if (name === '') throw new FilterSyntaxError(`empty column name at position ${start + 1}`, start);
      out.push({ t: 'id', v: name, p: start, quoted: true });
      i = j + 1;
      continue;
    }
    const word = /^[\p{L}_][\p{L}\p{N}_]*/u.exec(src.slice(i));
    if (word) {
      const w = word[0];
      if (WORD_OPS.has(w.toLowerCase())) out.push({ t: 'op', v: w.toLowerCase(), p: start });
      else out.push({ t: 'id', v: w, p: start, quoted: false });
      i += w.length;
      continue;
    }
    const op = /^(?:==|!=|<>|<=|>=|&&|\|\||[=<>!+\-*/%(),])/.exec(src.slice(i));
    if (!op) throw new FilterSyntaxError(`unexpected character '${c}' at position ${start + 1}`, start);
    out.push({ t: 'op', v: op[0], p: start });
    i += op[0].length;
  }
  out.push({ t: 'end', p: src.length });
  return out;
}

/* ------------------------------------------------------------------------------------------------
 * Semantics
 * ---------------------------------------------------------------------------------------------- */

function asNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isNaN(v) ? null : v;
  if (typeof v === 'string') {
    const s = v.trim();
    if (s === '') return null;
    const n = Number(s);
    return Number.isFinite(n) ? n : null;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

function asText(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : String(v);
}

/** -1, 0, 1, or null when the values are not comparable (null on either side). */
function compare(a: unknown, b: unknown): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  if (typeof a === 'number' || typeof b === 'number') {
    const x = asNumber(a);
    const y = asNumber(b);
    if (x !== null && y !== null) return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') {
    const x = asText(a).toLowerCase();
    const y = asText(b).toLowerCase();
    return x === y ? 0 : x < y ? -1 : 1;
  }
  const x = asText(a);
  const y = asText(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function equals(a: unknown, b: unknown): boolean {
  const an = a === null || a === undefined;
  const bn = b === null || b === undefined;
  if (an || bn) return an && bn;
  return compare(a, b) === 0;
}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (typeof v === 'string') return !/^(false|0|no)$/i.test(v.trim());
  return true;
}

const FUNCTIONS: Record<string, { arity: number; fn: (...a: unknown[]) => unknown }> = {
  lower: { arity: 1, fn: (a) => (a === null || a === undefined ? null : asText(a).toLowerCase()) },
  upper: { arity: 1, fn: (a) => (a === null || a === undefined ? null : asText(a).toUpperCase()) },
  trim: { arity: 1, fn: (a) => (a === null || a === undefined ? null : asText(a).trim()) },
  length: { arity: 1, fn: (a) => (a === null || a === undefined ? 0 : asText(a).length) },
  starts_with: { arity: 2, fn: (a, b) => asText(a).startsWith(asText(b)) },
  ends_with: { arity: 2, fn: (a, b) => asText(a).endsWith(asText(b)) },
  contains: { arity: 2, fn: (a, b) => asText(a).includes(asText(b)) },
  is_empty: { arity: 1, fn: (a) => a === null || a === undefined || asText(a).trim() === '' },
  number: { arity: 1, fn: (a) => asNumber(a) },
};

/* ------------------------------------------------------------------------------------------------
 * Parser (recursive descent, compiling as it goes)
 * ---------------------------------------------------------------------------------------------- */

export function parseFilter(src: string): ParsedFilter {
  const toks = tokenize(src);
  let k = 0;
  const columns = new Set<string>();
  const peek = () => toks[k];
  const isOp = (...ops: string[]) => {
    const t = toks[k];
    return t.t === 'op' && ops.includes(t.v);
  };
  const describe = (t: Token) => (t.t === 'end' ? 'the end of the filter' : `'${t.t === 'str' ? JSON.stringify(t.v) : t.v}' at position ${t.p + 1}`);
  const expect = (op: string) => {
    if (!isOp(op)) throw new FilterSyntaxError(`expected '${op}' but found ${describe(peek())}`, peek().p);
    k++;
  };

  const orExpr = (): Compiled => {
    let left = andExpr();
    while (isOp('or', '||')) {
      k++;
      const l = left;
      const r = andExpr();
      left = (row) => truthy(l(row)) || truthy(r(row));
    }
    return left;
  };
  const andExpr = (): Compiled => {
    let left = notExpr();
    while (isOp('and', '&&')) {
      k++;
      const l = left;
      const r = notExpr();
      left = (row) => truthy(l(row)) && truthy(r(row));
    }
    return left;
  };
  const notExpr = (): Compiled => {
    if (isOp('not', '!')) {
      k++;
      const e = notExpr();
      return (row) => !truthy(e(row));
    }
    return cmpExpr();
  };
  const cmpExpr = (): Compiled => {
    const left = addExpr();
    if (isOp('==', '=', '!=', '<>', '<', '<=', '>', '>=')) {
      const op = (toks[k++] as { v: string }).v;
      const right = addExpr();
      switch (op) {
        case '==':
        case '=':
          return (row) => equals(left(row), right(row));
        case '!=':
        case '<>':
          return (row) => !equals(left(row), right(row));
        case '<':
          return (row) => {
            const c = compare(left(row), right(row));
            return c !== null && c < 0;
          };
        case '<=':
          return (row) => {
            const c = compare(left(row), right(row));
            return c !== null && c <= 0;
          };
        case '>':
          return (row) => {
            const c = compare(left(row), right(row));
            return c !== null && c > 0;
          };
        default:
          return (row) => {
            const c = compare(left(row), right(row));
            return c !== null && c >= 0;
          };
      }
    }
    const negated = isOp('not') && toks[k + 1]?.t === 'op' && (toks[k + 1] as { v: string }).v === 'in';
    if (negated) k++;
    if (isOp('in')) {
      k++;
      expect('(');
      const items: Compiled[] = [addExpr()];
      while (isOp(',')) {
        k++;
        items.push(addExpr());
      }
      expect(')');
      return (row) => {
        const v = left(row);
        const hit = items.some((it) => equals(v, it(row)));
        return negated ? !hit : hit;
      };
    }
    if (negated) throw new FilterSyntaxError(`expected 'in' after 'not' at position ${peek().p + 1}`, peek().p);
    return left;
  };
  const addExpr = (): Compiled => {
    let left = mulExpr();
    while (isOp('+', '-')) {
      const op = (toks[k++] as { v: string }).v;
      const l = left;
      const r = mulExpr();
      left =
        op === '+'
          ? (row) => {
              const a = l(row);
              const b = r(row);
              const x = asNumber(a);
              const y = asNumber(b);
              return x !== null && y !== null && (typeof a === 'number' || typeof b === 'number') ? x + y : asText(a) + asText(b);
            }
          : (row) => arith(l(row), r(row), (x, y) => x - y);
    }
    return left;
  };
  const mulExpr = (): Compiled => {
    let left = unary();
    while (isOp('*', '/', '%')) {
      const op = (toks[k++] as { v: string }).v;
      const l = left;
      const r = unary();
      const f =
        op === '*'
          ? (x: number, y: number) => x * y
          : op === '/'
            ? (x: number, y: number) => (y === 0 ? null : x / y)
            : (x: number, y: number) => (y === 0 ? null : x % y);
      left = (row) => arith(l(row), r(row), f);
    }
    return left;
  };
  const unary = (): Compiled => {
    if (isOp('-')) {
      k++;
      const e = unary();
      return (row) => {
        const n = asNumber(e(row));
        return n === null ? null : -n;
      };
    }
    return primary();
  };
  const primary = (): Compiled => {
    const t = toks[k];
    if (t.t === 'num' || t.t === 'str') {
      k++;
      const v = t.v;
      return () => v;
    }
    if (t.t === 'op' && (t.v === 'true' || t.v === 'false' || t.v === 'null')) {
      k++;
      const v = t.v === 'null' ? null : t.v === 'true';
      return () => v;
    }
    if (t.t === 'op' && t.v === '(') {
      k++;
      const e = orExpr();
      expect(')');
      return e;
    }
    if (t.t === 'id') {
      k++;
      if (!t.quoted && isOp('(')) {
        const f = FUNCTIONS[t.v.toLowerCase()];
        if (!f) throw new FilterSyntaxError(`unknown function '${t.v}' at position ${t.p + 1} (known: ${Object.keys(FUNCTIONS).join(', ')})`, t.p);
        k++;
        const args: Compiled[] = [];
        if (!isOp(')')) {
          args.push(orExpr());
          while (isOp(',')) {
            k++;
            args.push(orExpr());
          }
        }
        expect(')');
        if (args.length !== f.arity) throw new FilterSyntaxError(`${t.v}() takes ${f.arity} argument${f.arity === 1 ? '' : 's'}, got ${args.length}`, t.p);
        if (f.arity === 1) {
          const [a] = args;
          return (row) => f.fn(a(row));
        }
        const [a, b] = args;
        return (row) => f.fn(a(row), b(row));
      }
      const name = t.v;
      columns.add(name);
      return (row) => row[name];
    }
    throw new FilterSyntaxError(`expected a value, a column or '(' but found ${describe(t)}`, t.p);
  };

  const root = orExpr();
  if (peek().t !== 'end') throw new FilterSyntaxError(`unexpected ${describe(peek())}`, peek().p);
  return { evaluate: (row) => truthy(root(row)), columns: [...columns] };
}

function arith(a: unknown, b: unknown, f: (x: number, y: number) => number | null): number | null {
  const x = asNumber(a);
  const y = asNumber(b);
  return x === null || y === null ? null : f(x, y);
}
