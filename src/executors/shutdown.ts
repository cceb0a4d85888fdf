/**
 * Resources that executors keep for the life of the process (database pools, …) register a closer
 * here; `App.close()` runs them after the worker has stopped. Process-wide, like the executor modules.
 */
const hooks = new Set<() => Promise<void>>();

/** Registers `close` to run at shutdown; returns a function that unregisters it. */
export function onShutdown(close: () => Promise<void>): () => void {
  hooks.add(close);
  return () => void hooks.delete(close);
}

/** Runs (and forgets) every registered closer, concurrently; failures are reported, not thrown. */
export async function runShutdownHooks(onError: (err: unknown) => void = () => {}): Promise<void> {
  const all = [...hooks];
  hooks.clear();
  await Promise.all(all.map((close) => close().catch(onError)));
}
