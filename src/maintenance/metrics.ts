import { Gauge } from 'prom-client';
import type { Queryable } from '../db/database.ts';
import { maintenanceSummary } from './summary.ts';
import type { Metrics } from '../metrics.ts';

/** Gauges read from the database at scrape time: the state is cluster-wide, every process shows it. */
export function registerMaintenanceMetrics(metrics: Metrics, db: Queryable): void {
  let last: Awaited<ReturnType<typeof maintenanceSummary>> = null;
  const read = async () => (last = (await maintenanceSummary(db)) ?? last);
  new Gauge({
    name: 'vecron_scheduling_paused',
    help: '1 while firing is paused cluster-wide (maintenance mode), 0 otherwise',
    registers: [metrics.registry],
    async collect() {
      this.set((await read())?.paused ? 1 : 0);
    },
  });
  new Gauge({
    name: 'vecron_jobs_paused',
    help: 'Jobs whose firing is paused one by one',
    registers: [metrics.registry],
    async collect() {
      this.set((await read())?.paused_jobs ?? 0);
    },
  });
}
