// {{name}}: classifies customers into tiers by their total orders (the design study's
// customer-analysis transform), rejects bad input with a validation verdict, and routes the job:
// to `notify_account_managers` when a customer reached platinum, else to `store_tiers`.
//
// The input is the step's `input` (by default the whole job context): { "customers": [...] }.
// `vecron` is a global (docs/sdk/js.md): input, output, log, context, invalid, route, http, db,
// files, crypto, time.
import { TIERS, tierOf } from './tiers.js';

/** Every problem of the input, each with the JSON path it is about. */
function problems(input) {
  if (input === null || typeof input !== 'object' || !Array.isArray(input.customers)) {
    return ['customers: must be a list of customers'];
  }
  const errors = [];
  input.customers.forEach((c, i) => {
    if (c === null || typeof c !== 'object') {
      errors.push(`customers[${i}]: must be an object`);
      return;
    }
    if (typeof c.id !== 'string' && typeof c.id !== 'number') errors.push(`customers[${i}].id: must be a string or a number`);
    if (typeof c.total_orders !== 'number' || !Number.isFinite(c.total_orders) || c.total_orders < 0) {
      errors.push(`customers[${i}].total_orders: must be a number >= 0`);
    }
  });
  return errors;
}

export function process(input) {
  const errors = problems(input);
  if (errors.length > 0) {
    vecron.log.warn(`rejected the input: ${errors.length} problem(s)`);
    return vecron.invalid(errors);
  }
  const customers = input.customers.map((c) => ({ id: c.id, name: c.name ?? null, total_orders: c.total_orders, tier: tierOf(c.total_orders) }));
  const byTier = Object.fromEntries(TIERS.map(([, tier]) => [tier, 0]));
  for (const c of customers) byTier[c.tier] += 1;
  const total = customers.reduce((sum, c) => sum + c.total_orders, 0);

  // For later steps: {{tier_counts.platinum}} in a template, vecron.context.get('tier_counts') in a module.
  vecron.context.set('tier_counts', byTier);
  vecron.log.info(`classified ${customers.length} customers`);

  const next = byTier.platinum > 0 ? 'notify_account_managers' : 'store_tiers';
  return vecron.route(next, { customers, summary: { count: customers.length, total_orders: total, by_tier: byTier } });
}
