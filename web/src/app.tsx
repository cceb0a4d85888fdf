import { lazy, Suspense, useEffect } from 'react';
import { Link, Redirect, Route, Switch, useLocation } from 'wouter';
import { useSession } from './session.tsx';
import { useI18n } from './i18n.tsx';
import { LanguagePicker } from './components/language-picker.tsx';
import { ErrorBoundary } from './components/error-boundary.tsx';
import type { MessageKey } from './messages/en.ts';
import { SignIn } from './pages/sign-in.tsx';
import { MaintenanceBanner } from './components/maintenance.tsx';
import { JobsPage } from './pages/jobs.tsx';

// The first page (sign-in, jobs) is in the main bundle; the others load when visited.
const JobPage = lazy(() => import('./pages/job.tsx'));
const BuilderPage = lazy(() => import('./pages/builder.tsx'));
const ExecutionsPage = lazy(() => import('./pages/executions.tsx'));
const ExecutionPage = lazy(() => import('./pages/execution.tsx'));
const ModulesPage = lazy(() => import('./pages/modules.tsx'));
const ModulePage = lazy(() => import('./pages/module.tsx'));
const AuditPage = lazy(() => import('./pages/audit.tsx'));
const TokensPage = lazy(() => import('./pages/tokens.tsx'));
const VariablesPage = lazy(() => import('./pages/variables.tsx'));
const MaintenancePage = lazy(() => import('./pages/maintenance.tsx'));

const NAV: { href: string; label: MessageKey; admin?: boolean }[] = [
  { href: '/jobs', label: 'nav.jobs' },
  { href: '/executions', label: 'nav.executions' },
  { href: '/modules', label: 'nav.modules' },
  { href: '/audit', label: 'nav.audit' },
  { href: '/variables', label: 'nav.variables' },
  { href: '/maintenance', label: 'nav.maintenance' },
  { href: '/tokens', label: 'nav.tokens', admin: true },
];

function Shell() {
  const { principal, signOut } = useSession();
  const { t } = useI18n();
  const [location] = useLocation();
  useEffect(() => {
    window.scrollTo(0, 0);
  }, [location]);
  if (!principal) return null;
  return (
    <>
      <a className="skip" href="#main">{t('nav.skip')}</a>
      <header className="top">
        <Link href="/jobs" className="brand" aria-label="vecron">
          <img src="/favicon.svg" alt="" width="24" height="24" /> vecron
        </Link>
        <nav aria-label={t('nav.main')}>
          <ul>
            {NAV.filter((n) => !n.admin || principal.role === 'admin').map((n) => (
              <li key={n.href}>
                <Link href={n.href} aria-current={location === n.href || location.startsWith(`${n.href}/`) ? 'page' : undefined}>
                  {t(n.label)}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <LanguagePicker />
          <span className="principal" data-testid="principal">
            {principal.name} <span className={`role role-${principal.role}`}>{t(`role.${principal.role}` as MessageKey)}</span>
          </span>
          <button type="button" className="ghost" onClick={() => signOut(null)}>{t('nav.signOut')}</button>
        </div>
      </header>
      <MaintenanceBanner />
      <main id="main" tabIndex={-1}>
        <ErrorBoundary resetKey={location} title={t('common.crashed')}>
        <Suspense fallback={<p className="muted">{t('common.loading')}</p>}>
          <Switch>
            <Route path="/"><Redirect to="/jobs" /></Route>
            <Route path="/sign-in"><Redirect to="/jobs" /></Route>
            <Route path="/jobs" component={JobsPage} />
            <Route path="/jobs/new" component={BuilderPage} />
            <Route path="/jobs/:id/edit" component={BuilderPage} />
            <Route path="/jobs/:id" component={JobPage} />
            <Route path="/executions" component={ExecutionsPage} />
            <Route path="/executions/:id" component={ExecutionPage} />
            <Route path="/modules" component={ModulesPage} />
            <Route path="/modules/:id" component={ModulePage} />
            <Route path="/audit" component={AuditPage} />
            <Route path="/variables" component={VariablesPage} />
            <Route path="/tokens" component={TokensPage} />
            <Route path="/maintenance" component={MaintenancePage} />
            <Route>
              <h1>{t('common.notFound')}</h1>
              <p><Link href="/jobs">{t('nav.jobs')}</Link></p>
            </Route>
          </Switch>
        </Suspense>
        </ErrorBoundary>
      </main>
    </>
  );
}

export function App() {
  const { principal } = useSession();
  const [location, navigate] = useLocation();
  // Signed out: every address shows sign-in, and returns there afterwards.
  useEffect(() => {
    if (!principal && location !== '/sign-in') navigate(`/sign-in?next=${encodeURIComponent(location)}`, { replace: true });
  }, [principal, location, navigate]);
  if (!principal) return <SignIn />;
  return <Shell />;
}
