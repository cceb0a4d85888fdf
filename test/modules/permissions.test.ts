import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkPermission, parsePermissions, PermissionDenied, type Permission } from '../../src/modules/permissions.ts';
import { compareVersions, parseModuleRef, versionProblem } from '../../src/modules/ref.ts';

const denied = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: any) => {
    assert.ok(e instanceof PermissionDenied, String(e));
    assert.equal(e.code, 'forbidden');
    assert.match(e.message, re);
    return true;
  });

describe('checkPermission: deny by default, globs over the resource', () => {
  const perms: Permission[] = [
    { type: 'http:read', resource_pattern: 'https://api.example.com/**' },
    { type: 'http:write', resource_pattern: 'https://api.example.com/orders/*' },
    { type: 'database:write', resource_pattern: 'customer_*' },
    { type: 'file:read', resource_pattern: null },
    { type: 'network:external', resource_pattern: '*.example.com' },
  ];

  it('allows what a permission names, and returns the canonical resource', () => {
    assert.equal(checkPermission(perms, 'http:read', 'https://api.example.com/v1/customers?page=2'), 'https://api.example.com/v1/customers?page=2');
    assert.equal(checkPermission(perms, 'http:read', 'HTTPS://API.example.com/a/../v1'), 'https://api.example.com/v1');
    assert.equal(checkPermission(perms, 'http:write', 'https://api.example.com/orders/42'), 'https://api.example.com/orders/42');
    assert.equal(checkPermission(perms, 'database:write', 'customer_analysis'), 'customer_analysis');
    assert.equal(checkPermission(perms, 'file:read', 'jobs/x/anything.csv'), 'jobs/x/anything.csv');
    assert.equal(checkPermission(perms, 'network:external', 'API.Example.com'), 'api.example.com');
  });

  it('denies everything else, saying which permission and resource', () => {
    denied(
      () => checkPermission([], 'http:read', 'https://api.example.com/'),
      /http:read for 'https:\/\/api\.example\.com\/' \(the module has no such permission\)/,
    );
    denied(() => checkPermission(perms, 'http:read', 'https://api.example.com.evil.net/x'), /no resource pattern of the module matches/);
    denied(() => checkPermission(perms, 'http:read', 'https://api.example.com@evil.net/x'), /http:read/);
    denied(() => checkPermission(perms, 'http:read', 'http://api.example.com/v1'), /no resource pattern/);
    denied(() => checkPermission(perms, 'http:write', 'https://api.example.com/orders/42/items'), /http:write/);
    denied(() => checkPermission(perms, 'http:read', 'https://user:pw@api.example.com/x'), /credentials in the URL/);
    denied(() => checkPermission(perms, 'http:read', 'file:///etc/passwd'), /only http and https/);
    denied(() => checkPermission(perms, 'http:read', 'not a url'), /not a valid URL/);
    denied(() => checkPermission(perms, 'database:read', 'customer_analysis'), /database:read.*no such permission/);
    denied(() => checkPermission(perms, 'database:write', 'orders'), /database:write for 'orders'/);
    denied(() => checkPermission(perms, 'file:write', 'jobs/x/out.csv'), /file:write/);
    denied(() => checkPermission(perms, 'network:external', 'example.com.evil.net'), /network:external/);
  });
});

describe('parsePermissions', () => {
  it('reports every problem with its path, and drops repeats', () => {
    assert.throws(
      () => parsePermissions([{ type: 'http:read', extra: 1 }, { type: 'nope' }, 'x', { type: 'file:read', resource_pattern: 3 }]),
      (e: any) => {
        const paths = e.details.problems.map((p: any) => p.path);
        assert.deepEqual(paths, ['permissions[0].extra', 'permissions[1].type', 'permissions[2]', 'permissions[3].resource_pattern']);
        return true;
      },
    );
    assert.deepEqual(parsePermissions([{ type: 'file:read' }, { type: 'file:read', resource_pattern: null }]), [{ type: 'file:read', resource_pattern: null }]);
  });
});

describe('module references and versions', () => {
  it('parses ids, name@version, name@latest and bare names; refuses the rest', () => {
    assert.deepEqual(parseModuleRef('0F8FAD5B-D9CB-469F-A165-70867728950E'), { kind: 'id', id: '0f8fad5b-d9cb-469f-a165-70867728950e' });
    assert.deepEqual(parseModuleRef('tiers@1.2.0'), { kind: 'version', name: 'tiers', version: '1.2.0' });
    assert.deepEqual(parseModuleRef('tiers@latest'), { kind: 'latest', name: 'tiers' });
    assert.deepEqual(parseModuleRef('tiers'), { kind: 'latest', name: 'tiers' });
    for (const bad of ['', '@1.0.0', 'a b@1.0.0', 'tiers@', 'tiers@one', '../x@1.0.0', 'tiers@v1', 'tiers@1.0', 'tiers@01.0.0']) {
      assert.equal(parseModuleRef(bad), null, bad);
    }
  });
  it('accepts semantic versions only, and says what is wrong with the rest', () => {
    for (const good of ['1.0.0', '0.0.0', '2.1.0-rc.1', '10.20.30', '1.0.0-alpha', '1.0.0-alpha.beta.1', '1.0.0-0.3.7', '1.0.0-x-y-z.--']) {
      assert.equal(versionProblem(good), null, good);
    }
    const cases: [string, RegExp][] = [
      ['v1', /without a leading 'v'/],
      ['v1.0.0', /without a leading 'v'/],
      ['1.0', /all three numbers are required, e\.g\. '1\.0\.0'/],
      ['2', /all three numbers are required, e\.g\. '2\.0\.0'/],
      ['01.0.0', /leading zeros/],
      ['1.02.0', /leading zeros/],
      ['1.0.0-01', /pre-release/],
      ['1.0.0-', /pre-release/],
      ['1.0.0+build', /build metadata/],
      ['one', /must be a semantic version/],
      ['', /must be a semantic version/],
    ];
    for (const [bad, why] of cases) assert.match(versionProblem(bad) ?? 'accepted', why, bad);
  });
  it('orders versions semantically', () => {
    const sorted = ['1.10.0', '1.2.0', '1.10.0-rc.1', '1.10.0-rc.10', '1.10.0-rc.2', '0.9', 'v2', '1.10.0-alpha'].sort(compareVersions);
    assert.deepEqual(sorted, ['0.9', '1.2.0', '1.10.0-alpha', '1.10.0-rc.1', '1.10.0-rc.2', '1.10.0-rc.10', '1.10.0', 'v2']);
  });
});
