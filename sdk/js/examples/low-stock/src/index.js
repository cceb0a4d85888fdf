// The twin of fixtures/wasm/low-stock (AssemblyScript): routes to the alert below the threshold.
const THRESHOLD = 100;

export function route_decision(ctx) {
  const level = ctx?.steps?.check_inventory?.output?.data?.stock_level;
  if (typeof level !== 'number') return { error: 'missing steps.check_inventory.output.data.stock_level' };
  vecron.log.info(`stock_level=${level}`);
  if (level < THRESHOLD) {
    return vecron.route('send_low_stock_alert', { priority: 'high', message: `Stock level ${level} below threshold ${THRESHOLD}` });
  }
  return vecron.route('continue_normal_flow', { priority: 'normal' });
}
