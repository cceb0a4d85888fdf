/**
 * A one-line progress bar on stderr for long transfers. On a terminal it redraws in place; in a
 * pipe or a CI log it prints at most one line per 25 %, so logs stay readable.
 */
export function progressBar(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): { update(done: number): void; end(note?: string): void } {
  const tty = Boolean(stream.isTTY);
  let lastQuarter = -1;
  const mib = (n: number) => (n / 1048576).toFixed(2);
  const line = (done: number) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    return `${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB`;
  };
  return {
    update(done: number) {
      if (tty) stream.write(`\r${line(done)}`);
      else {
        const q = Math.floor((total > 0 ? done / total : 1) * 4);
        if (q !== lastQuarter) {
          lastQuarter = q;
          stream.write(line(done) + '\n');
        }
      }
    },
    end(note = '') {
      if (tty) stream.write(`\r${line(total)}${note ? ` ${note}` : ''}\n`);
      else if (note) stream.write(`${label}: ${note}\n`);
    },
  };
}

/**
 * A spinner with the elapsed time for work of unknown length (a build step). On a terminal it
 * redraws one line in place; elsewhere (CI logs, pipes) it prints one line when the step starts and
 * one when it ends, never a frame per tick.
 */
export function spinner(label: string, stream: NodeJS.WriteStream = process.stderr): { done(note: string): void; fail(note: string): void } {
  const tty = Boolean(stream.isTTY);
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  const frames = ['|', '/', '-', '\\'];
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  if (tty) {
    const draw = () => stream.write(`\r${frames[i++ % frames.length]} ${label} ${secs()} s`);
    draw();
    timer = setInterval(draw, 100);
  } else stream.write(`${label} ...\n`);
  const finish = (mark: string, note: string) => {
    if (timer) clearInterval(timer);
    stream.write(`${tty ? '\r\x1b[K' : ''}${mark} ${label}: ${note} (${secs()} s)\n`);
  };
  return { done: (note) => finish('ok', note), fail: (note) => finish('FAILED', note) };
}

/**
 * A progress bar over a count of items (the runs of a shadow test), with a note on the item just
 * done. On a terminal it redraws one line in place; elsewhere it prints at most one line per 25 %,
 * and the last one.
 */
export function progressCount(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): { update(done: number, note?: string): void; end(): void } {
  const tty = Boolean(stream.isTTY);
  let lastQuarter = -1;
  let drawn = false;
  const line = (done: number, note: string) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    return `${label} [${bar}] ${String(done).padStart(String(total).length)}/${total}${note ? ` ${note}` : ''}`;
  };
  return {
    update(done: number, note = '') {
      if (tty) {
        stream.write(`\r\x1b[K${line(done, note)}`);
        drawn = true;
        return;
      }
      const q = Math.floor((total > 0 ? done / total : 1) * 4);
      if (q !== lastQuarter) {
        lastQuarter = q;
        stream.write(`${line(done, '')}\n`);
      }
    },
    end() {
      if (tty && drawn) stream.write('\r\x1b[K');
    },
  };
}
