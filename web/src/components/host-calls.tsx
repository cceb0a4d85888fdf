import { useI18n } from '../i18n.tsx';
import { formatBytes, formatDateTime, formatNumber } from '../format.ts';
import { Json } from './ui.tsx';

/** One host call of a WASM run, as the server records it (src/wasm/host/types.ts HostCallRecord). */
export interface HostCall {
  seq: number;
  function: string;
  target: string | null;
  at: string;
  duration_us: number;
  bytes_in: number;
  bytes_out: number;
  outcome: string;
  permission?: string;
  served: 'worker' | 'host';
  request: unknown;
  response: unknown;
}

export interface ModuleLogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  at: string;
}

/** The module's own log lines and its host calls, in order, for one WASM run. */
export function RunRecord({ logs, calls, runLabel }: { logs: ModuleLogLine[]; calls: HostCall[]; runLabel: string }) {
  const { t, locale } = useI18n();
  const denied = calls.filter((c) => c.outcome === 'permission_denied').length;
  return (
    <div className="run-record">
      {calls.length > 0 ? (
        <details open={denied > 0 || calls.some((c) => c.outcome !== 'ok')}>
          <summary>
            {t('exec.hostCalls', { n: calls.length })}
            {denied > 0 && <span className="chip status-failed"> {t('exec.denied', { n: denied })}</span>}
          </summary>
          <div className="table-wrap">
            <table className="table compact" data-testid="host-calls">
              <caption className="sr-only">{t('exec.hostCallsOf', { run: runLabel })}</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">{t('exec.function')}</th>
                  <th scope="col">{t('exec.target')}</th>
                  <th scope="col">{t('exec.outcome')}</th>
                  <th scope="col">{t('exec.duration')}</th>
                  <th scope="col">{t('exec.bytes')}</th>
                  <th scope="col">{t('exec.detail')}</th>
                </tr>
              </thead>
              <tbody>
                {calls.map((c) => (
                  <tr key={c.seq} data-outcome={c.outcome}>
                    <td>{c.seq + 1}</td>
                    <td>
                      <code>{c.function}</code> <span className="muted small">{c.served === 'worker' ? t('exec.inWorker') : ''}</span>
                    </td>
                    <td className="wrap">{c.target ? <code>{c.target}</code> : '—'}</td>
                    <td>
                      {c.outcome === 'ok' ? 'ok' : <code className="code">{c.outcome}</code>}
                      {c.permission && <span className="muted small"> ({c.permission})</span>}
                    </td>
                    <td title={formatDateTime(c.at, locale)}>{formatNumber(c.duration_us / 1000, locale, 2)} ms</td>
                    <td>
                      {formatBytes(c.bytes_in, locale)} / {formatBytes(c.bytes_out, locale)}
                    </td>
                    <td>
                      <details>
                        <summary>{t('exec.requestResponse')}</summary>
                        <Json value={{ request: c.request, response: c.response }} label={t('exec.callN', { n: c.seq + 1 })} expanded={false} />
                      </details>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      ) : (
        <p className="muted small">{t('exec.noHostCalls')}</p>
      )}
      {logs.length > 0 && (
        <details>
          <summary>{t('exec.moduleLog', { n: logs.length })}</summary>
          <ol className="log-lines" data-testid="module-log">
            {logs.map((l, i) => (
              <li key={i} data-level={l.level}>
                <span className="muted small">{formatDateTime(l.at, locale)}</span> <code className="chip">{l.level}</code> {l.message}
              </li>
            ))}
          </ol>
        </details>
      )}
    </div>
  );
}
