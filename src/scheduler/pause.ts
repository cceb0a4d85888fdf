/**
 * Maintenance mode in the scheduler: which fire times were missed because firing was paused.
 * The pause state itself is in the database (src/maintenance/state.ts).
 */

/**
 * A schedule due at `dueAt` that was not fired before the latest resume (cluster-wide or of the
 * job) missed its fire times during the pause: every fire time before the resume is a misfire,
 * however short the pause, so the job's misfire_policy decides (fire_once: one run, skip: none)
 * instead of a burst of late runs. Returns the misfire threshold that puts the cutoff at the
 * resume, or null when the schedule was not held by a pause.
 */
export function missedDuringPause(dueAt: Date, now: Date, resumes: (Date | null)[]): { resumedAt: Date; thresholdMs: number } | null {
  let resumedAt: Date | null = null;
  for (const r of resumes) if (r && (!resumedAt || r > resumedAt)) resumedAt = r;
  if (!resumedAt || dueAt >= resumedAt) return null;
  // The resume time is the database's clock, `now` this process's: never a negative threshold.
  return { resumedAt, thresholdMs: Math.max(0, now.getTime() - resumedAt.getTime()) };
}
