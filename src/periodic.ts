/**
 * A background task of one process, run every `everyMs` (and once at start unless told otherwise):
 * never two runs at once (a run still going when the timer fires again is not doubled), the timer
 * holds nothing open (unref), and a run's failure goes to `onError` instead of ending the loop.
 * Returns the stop function, which waits for a run in progress. The pruners, retention and the
 * table upkeep are all this loop around their own run.
 */
export function startPeriodic(
  task: () => Promise<unknown>,
  everyMs: number,
  onError: (err: unknown) => void,
  opts: { atStart?: boolean } = {},
): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    running ??= task()
      .catch(onError)
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(run, everyMs);
  timer.unref();
  if (opts.atStart ?? true) run();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
