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
