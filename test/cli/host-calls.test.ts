/** How wasm-cli test shows a run's host calls (src/cli/wasm/host-calls.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HostCallRecord } from '../../src/wasm/host/types.ts';
import { denialHints, hostCallLines } from '../../src/cli/wasm/host-calls.ts';

const call = (over: Partial<HostCallRecord>): HostCallRecord => ({
  seq: 0,
  function: 'http_request',
  target: 'https://api.example.com/customers',
  at: '2026-12-02T00:00:00.000Z',
  duration_us: 1530,
  bytes_in: 80,
  bytes_out: 2048,
  outcome: 'ok',
  served: 'host',
  request: {},
  response: {},
  ...over,
});

describe('host calls in wasm-cli test', () => {
  it('one aligned line per call: function, target, outcome, time, bytes; a denial names the missing permission', () => {
    const lines = hostCallLines([
      call({}),
      call({ seq: 1, function: 'time', target: 'now Asia/Ho_Chi_Minh', duration_us: 3, bytes_in: 12, bytes_out: 60, served: 'worker' }),
      call({ seq: 2, function: 'db_query', target: 'analytics/customers', outcome: 'permission_denied', permission: 'database:write', duration_us: 40 }),
    ]);
    assert.equal(lines[0], 'host calls (3):');
    assert.match(lines[1], /^ {2}# {2}FUNCTION {6}TARGET {2,}OUTCOME {2,}TIME {2,}IN\/OUT$/);
    assert.match(lines[2], /^ {2}0 {2}http_request {2}https:\/\/api\.example\.com\/customers {2}ok {2,}1\.53 ms {2}80\/2048 B$/);
    assert.match(lines[3], /^ {2}1 {2}time {10}now Asia\/Ho_Chi_Minh {2,}ok {2,}3 us {5}12\/60 B$/);
    assert.match(lines[4], /permission_denied \(needs database:write\) {2}40 us/);
    assert.deepEqual(hostCallLines([]), []);
  });

  it('a denial says which --allow grants it here and what the manifest needs for the job, once per resource', () => {
    const denied = call({ outcome: 'permission_denied', permission: 'http:read' });
    const hints = denialHints([denied, { ...denied, seq: 1 }, call({ seq: 2 })]);
    assert.deepEqual(hints, [
      'denied http_request https://api.example.com/customers: grant it with --allow http:read=https://api.example.com/customers here, and with {"type": "http:read", "resource_pattern": "..."} in the manifest\'s permissions for the job',
    ]);
  });
});
