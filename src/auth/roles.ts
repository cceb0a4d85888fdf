export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type TokenRole = (typeof ROLES)[number];

/** Who is calling: the API token's identity. */
export interface Principal {
  id: string;
  name: string;
  role: TokenRole;
}

const rank: Record<TokenRole, number> = { viewer: 0, operator: 1, admin: 2 };

/** viewer reads; operator also runs and edits jobs; admin also manages tokens, keys and settings. */
export function roleAllows(have: TokenRole, need: TokenRole): boolean {
  return rank[have] >= rank[need];
}

export function isRole(value: unknown): value is TokenRole {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
