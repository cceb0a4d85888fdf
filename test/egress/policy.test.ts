/** The egress policy's decisions, address forms and operator lists (no sockets here; see egress-connect). */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkAddress,
  checkHostName,
  configureEgress,
  egressUrlProblem,
  registerOwnListenAddress,
  resolveEgress,
  EgressDenied,
} from '../../src/egress/index.ts';
import { loadConfig } from '../../src/config/index.ts';

afterEach(() => configureEgress({}));

describe('egress policy: default classes', () => {
  const refused: [string, RegExp][] = [
    ['169.254.169.254', /link-local/],
    ['169.254.1.1', /link-local/],
    ['fe80::1', /link-local/],
    ['::ffff:169.254.169.254', /link-local/],
    ['::ffff:a9fe:a9fe', /link-local/],
    ['64:ff9b::a9fe:a9fe', /link-local/],
    ['64:ff9b:1::a9fe:a9fe', /link-local/],
    ['2002:a9fe:a9fe::1', /link-local/],
    ['::169.254.169.254', /link-local/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['ff02::1', /multicast/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['::ffff:0.0.0.0', /unspecified/],
    ['255.255.255.255', /broadcast/],
    ['100.100.100.200', /metadata/],
    ['fd00:ec2::254', /metadata/],
    ['192.0.0.192', /metadata/],
  ];
  for (const [addr, why] of refused) {
    it(`refuses ${addr}`, () => {
      const r = checkAddress(addr, 80);
      assert.ok(r, `${addr} should be refused`);
      assert.match(r.reason, why);
      assert.match(r.setting, /VECRON_EGRESS_ALLOW/);
    });
  }
  for (const addr of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '10.1.2.3', '192.168.0.10', '172.16.5.4', 'fd12::1', '8.8.8.8', '2001:db8::1']) {
    it(`allows ${addr} by default (private and loopback stay allowed)`, () => assert.equal(checkAddress(addr, 80), null));
  }
  it('refuses cloud metadata host names before resolution', () => {
    for (const h of ['metadata.google.internal', 'METADATA.google.internal.', 'instance-data', 'metadata']) assert.ok(checkHostName(h), h);
    assert.equal(checkHostName('api.example.com'), null);
  });
});

describe('egress policy: operator lists', () => {
  it('VECRON_EGRESS_DENY locks loopback and private ranges down, in every address form', () => {
    configureEgress({ deny: '127.0.0.0/8, ::1, 10.0.0.0/8' });
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '64:ff9b::7f00:1', '10.0.0.5']) {
      const r = checkAddress(a, 80);
      assert.ok(r, a);
      assert.equal(r.setting, 'VECRON_EGRESS_DENY');
    }
    assert.equal(checkAddress('192.168.1.1', 80), null);
  });
  it('VECRON_EGRESS_ALLOW permits a default-refused address; allow beats deny', () => {
    configureEgress({ allow: '169.254.169.254/32,10.1.0.0/16', deny: '0.0.0.0/0,::/0' });
    assert.equal(checkAddress('169.254.169.254', 80), null);
    assert.equal(checkAddress('10.1.2.3', 80), null);
    assert.ok(checkAddress('169.254.1.1', 80));
    assert.equal(checkAddress('8.8.8.8', 80)?.setting, 'VECRON_EGRESS_DENY');
  });
  it('host globs: deny refuses names, allow exempts names from the deny list but not from default classes', () => {
    configureEgress({ deny: '*.evil.example,10.0.0.0/8', allow: 'db.corp.example,metadata.google.internal' });
    assert.equal(checkHostName('x.y.evil.example')?.setting, 'VECRON_EGRESS_DENY');
    assert.equal(checkHostName('metadata.google.internal'), null);
    assert.equal(checkAddress('10.2.3.4', 5432, 'db.corp.example'), null);
    assert.ok(checkAddress('10.2.3.4', 5432, 'other.corp.example'));
    assert.ok(checkAddress('169.254.169.254', 80, 'metadata.google.internal'), 'the address class still applies');
  });
  it('bad list entries are configuration errors at start', () => {
    assert.throws(() => loadConfig({ VECRON_EGRESS_DENY: '10.0.0.0/33' }), /VECRON_EGRESS_DENY/);
    assert.throws(() => loadConfig({ VECRON_EGRESS_ALLOW: 'http://x/' }), /VECRON_EGRESS_ALLOW/);
    const c = loadConfig({ VECRON_EGRESS_DENY: '10.0.0.0/8 *.internal' });
    assert.equal(c.egressDeny.cidrs.length, 1);
    assert.equal(c.egressDeny.hosts.length, 1);
  });
});

describe('egress policy: own listen address, resolution, save-time checks', () => {
  it("refuses vecron's own listen address on its port only", () => {
    const forget = registerOwnListenAddress('0.0.0.0', 18080);
    try {
      assert.match(checkAddress('127.0.0.1', 18080)!.reason, /own API/);
      assert.match(checkAddress('127.0.0.2', 18080)!.reason, /own API/);
      assert.match(checkAddress('::ffff:127.0.0.1', 18080)!.reason, /own API/);
      assert.equal(checkAddress('127.0.0.1', 18081), null);
    } finally {
      forget();
    }
    assert.equal(checkAddress('127.0.0.1', 18080), null);
  });
  it('resolves a name and checks the address it resolves to (localhost with a deny list)', async () => {
    configureEgress({ deny: '127.0.0.0/8,::1' });
    const err = await resolveEgress('localhost', 80).catch((e) => e);
    assert.ok(err instanceof EgressDenied);
    assert.equal(err.code, 'egress_denied');
    assert.match(err.message, /localhost \((127\.0\.0\.1|::1)\):80/);
    assert.match(err.message, /VECRON_EGRESS_DENY/);
    configureEgress({});
    const t = await resolveEgress('localhost', 80);
    assert.ok(['127.0.0.1', '::1'].includes(t.address));
  });
  it('literal URLs: refused ones give a message naming the address and the setting', () => {
    assert.match(egressUrlProblem('http://169.254.169.254/latest/meta-data/')!, /169\.254\.169\.254.*link-local.*VECRON_EGRESS_ALLOW/);
    assert.match(egressUrlProblem('http://[::ffff:169.254.169.254]/')!, /link-local/);
    assert.match(egressUrlProblem('http://metadata.google.internal/computeMetadata/v1/')!, /metadata/);
    assert.equal(egressUrlProblem('https://api.example.com/x'), null);
    assert.equal(egressUrlProblem('http://127.0.0.1:9/'), null);
  });
});
