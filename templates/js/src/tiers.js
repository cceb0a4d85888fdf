// Tier thresholds (total orders, VND thousands), highest first: a customer gets the first tier
// whose threshold their total passes.
export const TIERS = [
  [100000, 'platinum'],
  [50000, 'gold'],
  [10000, 'silver'],
  [0, 'bronze'],
];

export function tierOf(total) {
  for (const [threshold, tier] of TIERS) if (total > threshold) return tier;
  return 'bronze';
}
