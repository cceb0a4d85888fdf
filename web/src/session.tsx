import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { api, setUnauthorizedHandler, tokenStore } from './api.ts';

export type Role = 'viewer' | 'operator' | 'admin';
export interface Principal {
  id: string;
  name: string;
  role: Role;
}

interface Session {
  principal: Principal | null;
  /** Why the last session ended (a 401's message), shown by sign-in. */
  reason: string | null;
  /** True while a stored token is being checked after a reload. */
  restoring: boolean;
  signIn(token: string): Promise<void>;
  signOut(reason?: string | null): void;
}

const SessionContext = createContext<Session | null>(null);
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const PRINCIPAL_KEY = 'vecron.principal';

export function SessionProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const [principal, setPrincipal] = useState<Principal | null>(() => {
    const saved = sessionStorage.getItem(PRINCIPAL_KEY);
    return saved && tokenStore.get() ? (JSON.parse(saved) as Principal) : null;
  });
  const [reason, setReason] = useState<string | null>(null);
  const [restoring, setRestoring] = useState(false);

  const signOut = useCallback((why: string | null = null) => {
    tokenStore.clear();
    sessionStorage.removeItem(PRINCIPAL_KEY);
    setPrincipal(null);
    setReason(why);
    qc.clear();
  }, [qc]);

  const signIn = useCallback(async (token: string) => {
    const p = await api<Principal>('/session', { token });
    tokenStore.set(token);
    sessionStorage.setItem(PRINCIPAL_KEY, JSON.stringify(p));
    setReason(null);
    setPrincipal(p);
  }, []);

  useEffect(() => {
    setUnauthorizedHandler((why) => signOut(why));
  }, [signOut]);

  // A reload keeps the session; re-check the token once (it may have been revoked meanwhile).
  useEffect(() => {
    if (!principal) return;
    setRestoring(true);
    api<Principal>('/session')
      .then((p) => {
        sessionStorage.setItem(PRINCIPAL_KEY, JSON.stringify(p));
        setPrincipal(p);
      })
      .catch(() => {})
      .finally(() => setRestoring(false));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const value = useMemo(() => ({ principal, reason, restoring, signIn, signOut }), [principal, reason, restoring, signIn, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

/** Whether the signed-in token's role includes `need` (viewer < operator < admin). */
export function useCan(need: Role): boolean {
  const { principal } = useSession();
  return principal !== null && RANK[principal.role] >= RANK[need];
}
