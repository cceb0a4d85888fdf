import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findTemplateReferences, parseReference, resolveTemplates } from '../../src/engine/templates.ts';
import { StepError } from '../../src/engine/step-error.ts';

const context = {
  steps: {
    fetch: { output: { data: { items: [{ id: 7, 'display name': 'Ada' }, { id: 8 }], total: 2 }, ok: true, none: null } },
    'load-2': { output: 'plain text' },
  },
  variables: { name: 'world', token: 'tok-123', n: 42, obj: { a: [1, 2] }, empty: '' },
  trigger: { payload: { x: 'from-trigger', nested: { deep: [10, 20] } } },
  job: { name: 'nightly' },
  execution: { id: 'exec-1' },
};

function templateError(re: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof StepError, 'a StepError');
    assert.equal(err.code, 'template_error');
    assert.equal(err.retryable, false);
    assert.match(err.message, re);
    return true;
  };
}

describe('resolveTemplates', () => {
  it('resolves paths with dots, indexes and quoted keys, with whitespace inside the braces', () => {
    assert.equal(resolveTemplates('{{ steps.fetch.output.data.items[0].id }}', context), 7);
    assert.equal(resolveTemplates('{{steps.fetch.output.data.items[0]["display name"]}}', context), 'Ada');
    assert.equal(resolveTemplates("{{steps.fetch.output.data.items[0]['display name']}}", context), 'Ada');
    assert.equal(resolveTemplates('{{steps.fetch.output.data.items.1.id}}', context), 8);
    assert.equal(resolveTemplates('{{steps.load-2.output}}', context), 'plain text');
    assert.equal(resolveTemplates('{{trigger.payload.nested.deep[1]}}', context), 20);
    assert.equal(resolveTemplates('{{job.name}}/{{execution.id}}', context), 'nightly/exec-1');
  });

  it('returns the raw value for a string that is exactly one template', () => {
    assert.deepEqual(resolveTemplates('{{steps.fetch.output.data.items}}', context), context.steps.fetch.output.data.items);
    assert.equal(resolveTemplates('{{variables.n}}', context), 42);
    assert.equal(resolveTemplates('{{steps.fetch.output.ok}}', context), true);
    assert.equal(resolveTemplates('{{steps.fetch.output.none}}', context), null);
    assert.equal(resolveTemplates('${n}', context), 42);
  });

  it('stringifies values embedded in a longer string', () => {
    assert.equal(resolveTemplates('hello {{variables.name}}!', context), 'hello world!');
    assert.equal(resolveTemplates('n={{variables.n}}', context), 'n=42');
    assert.equal(resolveTemplates('obj={{variables.obj}}', context), 'obj={"a":[1,2]}');
    assert.equal(resolveTemplates('none={{steps.fetch.output.none}}', context), 'none=null');
    assert.equal(resolveTemplates(' {{variables.n}}', context), ' 42');
    assert.equal(resolveTemplates('[{{variables.empty}}]', context), '[]');
  });

  it('treats ${NAME} as {{variables.NAME}}', () => {
    assert.equal(resolveTemplates('Bearer ${token}', context), 'Bearer tok-123');
    assert.equal(resolveTemplates('${name}-${n}', context), 'world-42');
    // not NAME}: literal
    assert.equal(resolveTemplates('cost: ${ 5 } and ${x:-y} and $name and ${', context), 'cost: ${ 5 } and ${x:-y} and $name and ${');
    assert.throws(() => resolveTemplates('${missing}', context), templateError(/template \{\{variables\.missing\}\}: unknown variable 'missing'/));
  });

  it('deep-walks objects and arrays without changing keys or the input', () => {
    const input = {
      url: 'https://x/{{variables.name}}',
      '{{variables.name}}': ['{{variables.n}}', 3, null, true, { deep: '${token}' }],
      rows: '{{steps.fetch.output.data.items}}',
    };
    const copy = structuredClone(input);
    const out = resolveTemplates(input, context) as any;
    assert.deepEqual(out, {
      url: 'https://x/world',
      '{{variables.name}}': [42, 3, null, true, { deep: 'tok-123' }],
      rows: context.steps.fetch.output.data.items,
    });
    assert.deepEqual(input, copy, 'input untouched');
    assert.equal(resolveTemplates(5, context), 5);
    assert.equal(resolveTemplates(null, context), null);
  });

  it('does not expand templates found in substituted values', () => {
    const ctx = { ...context, trigger: { payload: { evil: '{{variables.token}}', evil2: '${token}' } } };
    assert.equal(resolveTemplates('{{trigger.payload.evil}}', ctx), '{{variables.token}}');
    assert.equal(resolveTemplates('x {{trigger.payload.evil2}}', ctx), 'x ${token}');
  });

  it('supports \\{{ and \\${ escapes, and leaves an unclosed {{ as text', () => {
    assert.equal(resolveTemplates('\\{{variables.name}}', context), '{{variables.name}}');
    assert.equal(resolveTemplates('\\${name} is ${name}', context), '${name} is world');
    assert.equal(resolveTemplates('a {{ b', context), 'a {{ b');
    assert.equal(resolveTemplates('{{variables.name}} {{ open', context), 'world {{ open');
    assert.equal(resolveTemplates('plain } text }}', context), 'plain } text }}');
  });

  it('names the reference and the point where lookup failed', () => {
    assert.throws(
      () => resolveTemplates('{{steps.fetch.output.data.item[0].id}}', context),
      templateError(/^template \{\{steps\.fetch\.output\.data\.item\[0\]\.id\}\}: 'steps\.fetch\.output\.data' has no property 'item'$/),
    );
    assert.throws(
      () => resolveTemplates('{{steps.fetch.output.data.items[3].id}}', context),
      templateError(/'steps\.fetch\.output\.data\.items': index 3 is out of range \(length 2\)/),
    );
    assert.throws(
      () => resolveTemplates('x {{steps.b.output}}', context),
      templateError(/template \{\{steps\.b\.output\}\}: unknown step 'b' \(known: fetch, load-2\)/),
    );
    assert.throws(() => resolveTemplates('{{nope.x}}', context), templateError(/unknown name 'nope' \(known: steps, variables, trigger, job, execution\)/));
    assert.throws(
      () => resolveTemplates('{{steps.fetch.output.ok.x}}', context),
      templateError(/'steps\.fetch\.output\.ok' is a boolean, so it has no property 'x'/),
    );
    assert.throws(() => resolveTemplates('{{steps.fetch.output.none.x}}', context), templateError(/'steps\.fetch\.output\.none' is null/));
    assert.throws(
      () => resolveTemplates('{{steps.fetch.output.data.items.id}}', context),
      templateError(/is an array of length 2, not an object: it has no property 'id'/),
    );
    assert.throws(
      () => resolveTemplates('{{steps.fetch.output.data[0]}}', context),
      templateError(/'steps\.fetch\.output\.data' is an object, not an array: it has no index 0/),
    );
    assert.throws(() => resolveTemplates({ a: ['{{variables.nope}}'] }, context), templateError(/unknown variable 'nope'/));
  });

  it('reports malformed references', () => {
    assert.throws(() => resolveTemplates('{{}}', context), templateError(/invalid reference: it is empty/));
    assert.throws(() => resolveTemplates('{{ steps..a }}', context), templateError(/invalid reference/));
    assert.throws(() => resolveTemplates('{{ steps.a[x] }}', context), templateError(/expected an index/));
    assert.throws(() => resolveTemplates('{{ steps.a["x }}', context), templateError(/unclosed string/));
    assert.throws(() => resolveTemplates('{{#each items}}', context), templateError(/write \\\{\{ for a literal/));
  });

  it('sees only own properties (no prototype access or pollution)', () => {
    for (const ref of [
      'variables.constructor',
      'variables.__proto__',
      'variables.toString',
      'variables.hasOwnProperty',
      'job.name.length',
      'steps.fetch.output.data.items.length',
      'constructor',
    ]) {
      assert.throws(() => resolveTemplates(`{{${ref}}}`, context), templateError(/template/), ref);
    }
    assert.throws(() => resolveTemplates('{{variables["constructor"]["prototype"]}}', context), templateError(/unknown variable 'constructor'/));
    // an own "__proto__" key (as JSON.parse creates it) is an ordinary key
    const payload = JSON.parse('{"__proto__": {"polluted": "yes"}}');
    const ctx = { ...context, trigger: { payload } };
    assert.deepEqual(resolveTemplates('{{trigger.payload.__proto__}}', ctx), { polluted: 'yes' });
    const out = resolveTemplates(JSON.parse('{"__proto__": {"polluted": "{{variables.name}}"}}'), context) as any;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ['__proto__']);
    assert.equal(({} as any).polluted, undefined);
  });
});

describe('findTemplateReferences', () => {
  it('lists every reference once, ${NAME} as variables.NAME, ignoring escapes and keys', () => {
    const refs = findTemplateReferences({
      url: 'https://x/{{ variables.host }}/{{steps.a.output.items[0]["id"]}}',
      '{{keys.are.ignored}}': ['${token}', '\\{{not.a.ref}}', 'again {{variables.host}}', 4],
      body: '{{trigger.payload}} {{ unclosed',
    });
    assert.deepEqual(refs, ['variables.host', 'steps.a.output.items[0]["id"]', 'variables.token', 'trigger.payload']);
    assert.deepEqual(findTemplateReferences('no templates'), []);
    assert.throws(() => findTemplateReferences(['{{ a b }}']), templateError(/invalid reference/));
  });

  it('parses references into segments', () => {
    assert.deepEqual(parseReference('steps.a.output["k y"][2].z'), [
      { kind: 'key', key: 'steps' },
      { kind: 'key', key: 'a' },
      { kind: 'key', key: 'output' },
      { kind: 'key', key: 'k y' },
      { kind: 'index', index: 2 },
      { kind: 'key', key: 'z' },
    ]);
  });
});
