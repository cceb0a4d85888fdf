import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PERMISSION_TYPES, PermissionDenied, checkPermission, parsePermissions, type Permission } from '../../src/modules/permissions.ts';

const deniedBy = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: any) => {
    assert.ok(e instanceof PermissionDenied, String(e));
    assert.match(e.message, re);
    return true;
  });

describe('permissions: secret:use and datasource/table resources', () => {
  it('parses secret:use and datasource/table patterns; permissions stored before them stay valid', () => {
    assert.ok(PERMISSION_TYPES.includes('secret:use'));
    const stored = [
      { type: 'database:read', resource_pattern: 'customer_*' },
      { type: 'database:write', resource_pattern: 'crm/customer_tiers' },
      { type: 'secret:use', resource_pattern: 'signing_key_*' },
      { type: 'network:external', resource_pattern: null },
    ];
    assert.deepEqual(parsePermissions(stored), stored);
    assert.throws(
      () => parsePermissions([{ type: 'secret:use', resource_pattern: '' }, { type: 'secret:uses' }]),
      (e: any) => {
        assert.deepEqual(
          e.details.problems.map((p: any) => p.path),
          ['permissions[0].resource_pattern', 'permissions[1].type'],
        );
        return true;
      },
    );
  });

  it('secret:use names the secret variables a module may use as keys', () => {
    const perms: Permission[] = [{ type: 'secret:use', resource_pattern: 'signing_key_*' }];
    assert.equal(checkPermission(perms, 'secret:use', 'signing_key_2026'), 'signing_key_2026');
    deniedBy(() => checkPermission(perms, 'secret:use', 'db_password'), /secret:use for 'db_password'/);
    deniedBy(() => checkPermission([], 'secret:use', 'signing_key_1'), /no such permission/);
  });

  it('database patterns match datasource/table; a pattern without / matches the table of any datasource', () => {
    const perms: Permission[] = [
      { type: 'database:read', resource_pattern: 'crm/customer_*' },
      { type: 'database:read', resource_pattern: 'orders' },
      { type: 'database:write', resource_pattern: 'crm/{customer_tiers,audit_log}' },
      { type: 'database:read', resource_pattern: 'warehouse/**' },
    ];
    assert.equal(checkPermission(perms, 'database:read', 'crm/customer_tiers'), 'crm/customer_tiers');
    assert.equal(checkPermission(perms, 'database:read', 'crm/orders'), 'crm/orders');
    assert.equal(checkPermission(perms, 'database:read', 'billing/orders'), 'billing/orders');
    assert.equal(checkPermission(perms, 'database:read', 'warehouse/stock.items'), 'warehouse/stock.items');
    assert.equal(checkPermission(perms, 'database:write', 'crm/audit_log'), 'crm/audit_log');
    assert.equal(checkPermission(perms, 'database:read', 'warehouse'), 'warehouse', 'a table-less statement on the datasource');
    deniedBy(() => checkPermission(perms, 'database:read', 'billing/customer_tiers'), /database:read for 'billing\/customer_tiers'/);
    deniedBy(() => checkPermission(perms, 'database:read', 'crm/public.customer_tiers'), /no resource pattern/);
    deniedBy(() => checkPermission(perms, 'database:write', 'crm/customers'), /database:write/);
    deniedBy(() => checkPermission(perms, 'database:read', 'crm'), /database:read for 'crm'/);
  });
});
