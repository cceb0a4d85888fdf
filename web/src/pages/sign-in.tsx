import { useState, type FormEvent } from 'react';
import { useLocation, useSearch } from 'wouter';
import { ApiError } from '../api.ts';
import { useSession } from '../session.tsx';
import { useI18n } from '../i18n.tsx';
import { LanguagePicker } from '../components/language-picker.tsx';

export function SignIn() {
  const { signIn, reason } = useSession();
  const { t } = useI18n();
  const search = useSearch();
  const [, navigate] = useLocation();
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(token.trim());
      const next = new URLSearchParams(search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('/sign-in') ? next : '/jobs', { replace: true });
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" className="signin">
      <form onSubmit={submit} className="card signin-card" aria-labelledby="signin-title">
        <div className="signin-head">
          <h1 id="signin-title"><img src="/favicon.svg" alt="" width="28" height="28" /> vecron</h1>
          <LanguagePicker />
        </div>
        <p className="muted">{t('signin.intro')}</p>
        {reason && !error && <p className="alert" role="alert" data-testid="signin-reason">{t('signin.ended')} {reason}</p>}
        {error && <p className="alert" role="alert">{error}</p>}
        <label htmlFor="token">{t('signin.token')}</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          required
          autoFocus
        />
        <p className="hint">{t('signin.hint')}</p>
        <button type="submit" className="primary" disabled={busy || token.trim() === ''}>{t('signin.submit')}</button>
      </form>
    </main>
  );
}
