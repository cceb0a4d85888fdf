import { useMutation } from '@tanstack/react-query';
import { api } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { formatNumber } from '../format.ts';
import { ErrorNote } from './ui.tsx';

/** Where a replay first differed (src/wasm/replay/types.ts Divergence). */
export interface Divergence {
  kind: string;
  call_index?: number;
  function?: string;
  message: string;
  expected?: unknown;
  actual?: unknown;
}

interface ReplaySummary {
  module_hash: string;
  ok: boolean;
  error?: { code: string; message: string };
  fuel_consumed: number;
  init_fuel_consumed: number;
  duration_ms: number;
  host_calls: number;
}

type ReplayResult =
  | { status: 'reproduced'; replay: ReplaySummary }
  | { status: 'diverged'; divergence: Divergence; replay: ReplaySummary }
  | { status: 'could_not_replay'; reason: string; message: string };

interface StoredReplay {
  execution_id: string;
  step_id: string;
  attempt: number | null;
  result: ReplayResult;
}

/** The first divergence in one line: which call (or WASI read), what differed. */
export function DivergenceText({ d }: { d: Divergence }) {
  const { t } = useI18n();
  return (
    <span data-testid="divergence">
      <code className="code">{d.kind}</code>
      {d.call_index !== undefined && <> {t('replay.atCall', { n: d.call_index + 1 })}</>}
      {d.function && <> (<code>{d.function}</code>)</>}: {d.message}
    </span>
  );
}

/**
 * The "replay" button of one WASM run: the server re-runs the recorded run with every host call
 * answered from its record, and this shows whether it reproduced, or the first divergence.
 */
export function ReplayButton({ executionId, stepId, attempt }: { executionId: string; stepId: string; attempt: number }) {
  const { t, locale } = useI18n();
  const run = useMutation({
    mutationFn: () => api<StoredReplay>(`/executions/${executionId}/steps/${encodeURIComponent(stepId)}/replay`, { method: 'POST', body: { attempt } }),
  });
  const r = run.data?.result;
  return (
    <div className="replay" data-testid="replay">
      <button type="button" onClick={() => run.mutate()} disabled={run.isPending} aria-label={t('replay.buttonOf', { run: `${stepId} (${t('exec.attemptN', { n: attempt })})` })}>
        {run.isPending ? t('replay.running') : t('replay.button')}
      </button>
      <ErrorNote error={run.error} />
      {r && (
        <p className={r.status === 'reproduced' ? 'notice' : 'alert'} role="status" data-testid="replay-result" data-status={r.status}>
          {r.status === 'reproduced' && (
            <>
              <strong>{t('replay.reproduced')}</strong> {t('replay.reproducedDetail', { fuel: formatNumber(r.replay.fuel_consumed + r.replay.init_fuel_consumed, locale), calls: r.replay.host_calls })}
            </>
          )}
          {r.status === 'diverged' && (
            <>
              <strong>{t('replay.diverged')}</strong> {t('replay.firstDivergence')} <DivergenceText d={r.divergence} />
            </>
          )}
          {r.status === 'could_not_replay' && (
            <>
              <strong>{t('replay.couldNot')}</strong> <code className="code">{r.reason}</code> {r.message}
            </>
          )}
        </p>
      )}
    </div>
  );
}
