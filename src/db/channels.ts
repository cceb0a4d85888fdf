/**
 * The NOTIFY channels vecron processes talk on. One list, so that no module has to import another
 * capability's code just to learn a channel's name.
 */

/** Wakes idle workers when work is queued; payload `<execution id>[ <run_at epoch ms>[ L]]` (L: the execution has limits). */
export const QUEUE_CHANNEL = 'vecron_queue';

/** Wakes schedulers when a job was created, edited, enabled, disabled or deleted; payload: the job id. */
export const JOBS_CHANNEL = 'vecron_jobs';
