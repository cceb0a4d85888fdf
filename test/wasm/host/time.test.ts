/**
 * The time host function (served in the worker): now in the default zone, format, parse and add
 * across a daylight-saving change, and bad input named by field.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { HostCallError } from '../../../src/wasm/host/types.ts';
import { DateTime, IANAZone } from 'luxon';
import { nowAt, offsetAt, serveTime, timeWorker } from '../../../src/wasm/host/time.ts';
import { caller, testSession } from '../../helpers/host-session.ts';

describe('time', () => {
  it('now: epoch_ms, UTC iso and the local time in Asia/Ho_Chi_Minh by default', () => {
    const before = Date.now();
    const a = serveTime({ op: 'now' }) as any;
    const after = Date.now();
    assert.ok(a.epoch_ms >= before && a.epoch_ms <= after);
    assert.equal(a.iso, new Date(a.epoch_ms).toISOString());
    assert.equal(a.tz, 'Asia/Ho_Chi_Minh');
    assert.equal(a.offset_minutes, 420);
    assert.match(a.local, /\+07:00$/);
    assert.equal(Date.parse(a.local), a.epoch_ms);
    assert.equal(timeWorker.target({ op: 'now' }), 'now Asia/Ho_Chi_Minh');
    const ny = serveTime({ op: 'now', tz: 'America/New_York' }) as any;
    assert.ok([-240, -300].includes(ny.offset_minutes));
  });

  it("now's cached offsets are the zone's own, across transitions and odd historic offsets", () => {
    const zones = ['Asia/Ho_Chi_Minh', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Africa/Monrovia', 'Europe/London', 'Pacific/Apia'];
    const edges = [
      Date.UTC(2026, 2, 8, 7) - 1,
      Date.UTC(2026, 2, 8, 7),
      Date.UTC(1972, 0, 7, 0, 44, 30) - 1,
      Date.UTC(1972, 0, 7, 0, 44, 30),
      Date.UTC(1975, 5, 13, 16),
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const tz of zones) {
      const zone = IANAZone.create(tz);
      const instants = [...edges, ...Array.from({ length: 500 }, () => Date.UTC(1900, 0, 1) + random() * 200 * 365.25 * 86400_000)];
      for (const ms of instants) {
        // Twice: once computed, once from the cache.
        assert.equal(offsetAt(tz, ms), zone.offset(ms), `${tz} at ${new Date(ms).toISOString()}`);
        assert.equal(offsetAt(tz, ms), zone.offset(ms), `${tz} at ${new Date(ms).toISOString()} (cached)`);
      }
    }
    for (const tz of [...zones, 'UTC', 'Etc/GMT+5']) {
      const a = serveTime({ op: 'now', tz }) as any;
      const local = new Date(a.epoch_ms + a.offset_minutes * 60_000).toISOString().slice(0, 23);
      assert.equal(a.local.slice(0, 23), local, tz);
      assert.equal(a.offset_minutes, IANAZone.create(tz).offset(a.epoch_ms), tz);
    }
    assert.match((serveTime({ op: 'now', tz: 'Europe/London' }) as any).local, /[+-]\d\d:\d\d$/, 'a zone at offset 0 is written +00:00, not Z');
  });

  it("now's answer, built without luxon, is exactly luxon's, in every kind of zone and at every instant", () => {
    const zones = [
      'Asia/Ho_Chi_Minh',
      'UTC',
      'utc',
      'GMT',
      'Etc/UTC',
      'Etc/GMT+5',
      'Europe/London',
      'America/New_York',
      'America/St_Johns',
      'Asia/Kolkata',
      'Asia/Kathmandu',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
      'Africa/Monrovia',
      'Pacific/Kiritimati',
    ];
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const edges = [
      0,
      1,
      Date.UTC(2026, 2, 8, 7) - 1,
      Date.UTC(2026, 2, 8, 7),
      Date.UTC(2026, 9, 25, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10000, 0, 1),
    ];
    for (const tz of zones) {
      const instants = [...edges, ...Array.from({ length: 300 }, () => Math.floor(Date.UTC(1850, 0, 1) + random() * 300 * 365.25 * 86400_000))];
      for (const ms of instants) {
        const dt = DateTime.fromMillis(ms, { zone: tz });
        const luxon = { epoch_ms: dt.toMillis(), iso: dt.toUTC().toISO(), local: dt.toISO(), tz, offset_minutes: dt.offset };
        assert.deepEqual(nowAt(tz, ms), luxon, `${tz} at ${ms}`);
      }
    }
  });

  it('format: an instant as text in a zone, with luxon tokens and a locale', () => {
    const ms = Date.UTC(2026, 0, 31, 17, 30); // 2026-02-01 00:30 in Ho Chi Minh City
    assert.equal((serveTime({ op: 'format', epoch_ms: ms, format: 'yyyy-MM-dd HH:mm' }) as any).text, '2026-02-01 00:30');
    assert.equal((serveTime({ op: 'format', epoch_ms: ms, tz: 'UTC', format: 'yyyy-MM-dd HH:mm' }) as any).text, '2026-01-31 17:30');
    assert.equal((serveTime({ op: 'format', epoch_ms: ms }) as any).text, '2026-02-01T00:30:00.000+07:00');
    assert.equal((serveTime({ op: 'format', iso: '2026-02-01T00:30:00Z', format: 'EEEE d MMMM', locale: 'vi-VN' }) as any).text, 'Chủ Nhật 1 tháng 2');
  });

  it('parse: local text in the zone, or text with its own offset', () => {
    const a = serveTime({ op: 'parse', text: '2026-03-08 02:30', format: 'yyyy-MM-dd HH:mm' }) as any;
    assert.equal(a.iso, '2026-03-07T19:30:00.000Z');
    const b = serveTime({ op: 'parse', text: '2026-03-08T02:30:00+01:00' }) as any;
    assert.equal(b.iso, '2026-03-08T01:30:00.000Z');
    assert.equal(b.local, '2026-03-08T08:30:00.000+07:00');
    const c = serveTime({ op: 'parse', text: '08/03/2026', format: 'dd/MM/yyyy', tz: 'Europe/Paris' }) as any;
    assert.equal(c.iso, '2026-03-07T23:00:00.000Z');
  });

  it('add: calendar units follow the zone (a day across the US spring change is 23 hours)', () => {
    const start = serveTime({ op: 'parse', text: '2026-03-07T12:00:00', tz: 'America/New_York' }) as any;
    const next = serveTime({ op: 'add', epoch_ms: start.epoch_ms, days: 1, tz: 'America/New_York' }) as any;
    assert.equal(next.local, '2026-03-08T12:00:00.000-04:00');
    assert.equal(next.epoch_ms - start.epoch_ms, 23 * 3600_000);
    const hours = serveTime({ op: 'add', epoch_ms: start.epoch_ms, hours: 24, tz: 'America/New_York' }) as any;
    assert.equal(hours.local, '2026-03-08T13:00:00.000-04:00');
    const month = serveTime({ op: 'add', iso: '2026-01-31T09:00:00', months: 1 }) as any;
    assert.equal(month.local, '2026-02-28T09:00:00.000+07:00');
    assert.equal((serveTime({ op: 'add', iso: '2026-01-31T09:00:00', minutes: -90 }) as any).local, '2026-01-31T07:30:00.000+07:00');
  });

  it('bad input is bad_request naming the field; the dispatch gives the same answer', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ op: 'now', tz: 'Mars/Olympus' }, /tz must be an IANA time zone/],
      [{ op: 'now', tz: 7 }, /tz must be an IANA time zone/],
      [{ op: 'yesterday' }, /op must be one of now, format, parse, add/],
      [{ op: 'format' }, /epoch_ms or iso is required/],
      [{ op: 'format', epoch_ms: 'x' }, /epoch_ms must be a number/],
      [{ op: 'format', epoch_ms: 1, iso: 'x' }, /either epoch_ms or iso/],
      [{ op: 'format', iso: 'not a time' }, /iso is not an ISO 8601 time/],
      [{ op: 'format', epoch_ms: 0, locale: 'xx-invalid-locale-!!' }, /locale must be a BCP 47 locale/],
      [{ op: 'parse' }, /text is required/],
      [{ op: 'parse', text: '31/02/2026', format: 'dd/MM/yyyy' }, /text does not match the format "dd\/MM\/yyyy"/],
      [{ op: 'add', epoch_ms: 0, days: 1.5 }, /days must be an integer/],
      [{ op: 'add', epoch_ms: 0, years: 10_000_000 }, /years must be an integer from -1000000 to 1000000/],
      [{ op: 'format', epoch_ms: 9e15 }, /epoch_ms must be a finite number/],
    ];
    const call = caller(testSession({ blobs: new FsBlobStore('/nonexistent-not-used'), permissions: [] }));
    for (const [req, message] of cases) {
      assert.throws(
        () => serveTime(req),
        (e: unknown) => e instanceof HostCallError && e.code === 'bad_request' && message.test(e.message),
        JSON.stringify(req),
      );
      const a = await call('time', req);
      assert.equal(a.outcome, 'bad_request');
      assert.match((a.response.error as any).message, message);
    }
    const ok = await call('time', { op: 'now', tz: 'UTC' });
    assert.equal(ok.outcome, 'ok');
    assert.equal(ok.target, 'now UTC');
  });
});
