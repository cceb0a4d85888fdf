/** Exponential backoff with "equal jitter": half fixed, half random, capped at one hour. */
export function retryDelayMs(baseSeconds: number, attempt: number, random = Math.random): number {
  const exp = Math.min(3600_000, baseSeconds * 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
