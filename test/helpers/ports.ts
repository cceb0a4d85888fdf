/**
 * Ports for servers that a test starts in another process (a vecron, sshd, MinIO, the README's
 * stand-in service), which cannot listen on port 0 and report back.
 *
 * A port that `listen(0)` handed out and the test closed again is in the kernel's ephemeral range,
 * so the kernel can hand it to any other test's server or outgoing connection before the child
 * binds it (CI once lost the README block's PORT + 1 that way, 35 s into the test). Ports are
 * therefore taken below that range, where the kernel never assigns one by itself, at random, and
 * checked free (all `count` of them) at the moment they are handed out.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const FLOOR = 10_000;

/** The first port of the kernel's ephemeral range (Linux's default where /proc does not say). */
function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

/** Whether `port` can be listened on at 127.0.0.1 right now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port `p` (with `p + 1` … `p + count - 1` free too) below the ephemeral range. */
export async function freePort(count = 1): Promise<number> {
  const top = Math.max(FLOOR + 1_000, ephemeralStart() - count);
  for (let tries = 0; tries < 500; tries++) {
    const port = FLOOR + Math.floor(Math.random() * (top - FLOOR));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await canListen(port + i);
    if (free) return port;
  }
  throw new Error(`no ${count} free consecutive port(s) between ${FLOOR} and ${top}`);
}
