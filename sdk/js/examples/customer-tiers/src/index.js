// The twin of fixtures/wasm/customer-tiers (Rust): the same input, output and log line, so the
// two can be compared (scripts/bench-js-engine.ts, docs/sdk/js.md).
const tier = (revenue) => (revenue > 100000 ? 'platinum' : revenue > 50000 ? 'gold' : revenue > 10000 ? 'silver' : 'bronze');

export function transform_data(ctx) {
  const customers = ctx?.steps?.fetch_customers?.output?.data?.customers;
  if (customers === undefined) {
    vecron.log.error('missing steps.fetch_customers.output.data.customers');
    return { error: 'missing steps.fetch_customers.output.data.customers' };
  }
  let total = 0;
  const out = customers.map((c) => {
    total += c.total_orders;
    return { id: c.id, name: c.name, revenue: c.total_orders, tier: tier(c.total_orders) };
  });
  vecron.log.info(`classified ${customers.length} customers`);
  return { customers: out, total_revenue: total };
}
