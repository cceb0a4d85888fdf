import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { ConfirmDialog, ErrorNote, Field, Loading } from '../components/ui.tsx';
import { formatDateTime } from '../format.ts';
import type { MessageKey } from '../messages/en.ts';

interface TokenRow {
  id: string;
  name: string;
  role: string;
  created_at: string;
  created_by?: string | null;
  last_used_at?: string | null;
  revoked_at?: string | null;
}

export default function TokensPage() {
  const { t, locale } = useI18n();
  const isAdmin = useCan('admin');
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [shown, setShown] = useState<{ name: string; token: string } | null>(null);
  const [target, setTarget] = useState<TokenRow | null>(null);
  const list = useQuery({ queryKey: ['tokens'], queryFn: () => api<{ items: TokenRow[] }>('/tokens'), enabled: isAdmin });
  const create = useMutation({
    mutationFn: () => api<TokenRow & { token: string }>('/tokens', { method: 'POST', body: { name: name.trim(), role } }),
    onSuccess: (r) => {
      setShown({ name: r.name, token: r.token });
      setName('');
      qc.invalidateQueries({ queryKey: ['tokens'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (x: TokenRow) => api(`/tokens/${x.id}`, { method: 'DELETE' }),
    onSuccess: () => {
      setTarget(null);
      qc.invalidateQueries({ queryKey: ['tokens'] });
    },
  });
  if (!isAdmin) return <p className="alert" role="alert">{t('tokens.adminOnly')}</p>;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setShown(null);
    create.mutate();
  };
  return (
    <section aria-labelledby="tokens-title">
      <h1 id="tokens-title">{t('tokens.title')}</h1>
      <form className="card filters" onSubmit={submit} aria-label={t('tokens.create')}>
        <Field label={`${t('common.name')} *`}>{({ id }) => <input id={id} value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />}</Field>
        <Field label={t('tokens.role')}>
          {({ id }) => (
            <select id={id} value={role} onChange={(e) => setRole(e.target.value)}>
              {['viewer', 'operator', 'admin'].map((r) => <option key={r} value={r}>{t(`role.${r}` as MessageKey)}</option>)}
            </select>
          )}
        </Field>
        <button type="submit" className="primary" disabled={create.isPending || !name.trim()}>{t('tokens.create')}</button>
      </form>
      <ErrorNote error={create.error ?? revoke.error ?? list.error} />
      {shown && (
        <div className="notice" role="status">
          <p>{t('tokens.showOnce', { name: shown.name })}</p>
          <code className="break token-value" data-testid="new-token">{shown.token}</code>{' '}
          <button type="button" onClick={() => navigator.clipboard?.writeText(shown.token).catch(() => {})}>{t('common.copy')}</button>
        </div>
      )}
      {list.isLoading ? <Loading /> : list.data && (
        <div className="table-wrap">
          <table className="table" data-testid="tokens">
            <caption className="sr-only">{t('tokens.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('common.name')}</th><th scope="col">{t('tokens.role')}</th><th scope="col">{t('common.created')}</th>
                <th scope="col">{t('tokens.lastUsed')}</th><th scope="col">{t('tokens.state')}</th><th scope="col"><span className="sr-only">{t('common.actions')}</span></th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((x) => (
                <tr key={x.id} data-token={x.name}>
                  <td>{x.name}</td>
                  <td><span className="chip">{t(`role.${x.role}` as MessageKey)}</span></td>
                  <td>{formatDateTime(x.created_at, locale)} {x.created_by && <span className="muted small">· {x.created_by}</span>}</td>
                  <td>{formatDateTime(x.last_used_at ?? null, locale)}</td>
                  <td>{x.revoked_at ? <span className="badge status-cancelled">{t('tokens.revoked')}</span> : <span className="badge status-succeeded">{t('tokens.active')}</span>}</td>
                  <td className="right">
                    {!x.revoked_at && <button type="button" className="danger" onClick={() => setTarget(x)} aria-label={t('tokens.revokeLabel', { name: x.name })}>{t('tokens.revoke')}</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={target !== null}
        title={t('tokens.revokeTitle', { name: target?.name ?? '' })}
        confirmLabel={t('tokens.revoke')}
        onConfirm={() => target && revoke.mutate(target)}
        onClose={() => setTarget(null)}
        busy={revoke.isPending}
      >
        <p>{t('tokens.revokeText')}</p>
      </ConfirmDialog>
    </section>
  );
}
