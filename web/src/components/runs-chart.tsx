import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Duration and fuel of a module's runs over time (uPlot, canvas); the caption describes it in words. */
export function RunsChart({ runs, labels, caption }: {
  runs: { created_at: string; duration_ms: number; fuel_consumed: number }[];
  labels: { duration: string; fuel: string };
  caption: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || runs.length === 0) return;
    const sorted = [...runs].sort((a, b) => a.created_at.localeCompare(b.created_at));
    const data: uPlot.AlignedData = [
      sorted.map((r) => new Date(r.created_at).getTime() / 1000),
      sorted.map((r) => r.duration_ms),
      sorted.map((r) => r.fuel_consumed),
    ];
    const width = Math.max(280, el.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: true }, ms: { auto: true }, fuel: { auto: true } },
        series: [
          {},
          { label: labels.duration, scale: 'ms', stroke: '#0a6d8f', width: 2, points: { show: true } },
          { label: labels.fuel, scale: 'fuel', stroke: '#b45309', width: 2, dash: [6, 4], points: { show: true } },
        ],
        axes: [{}, { scale: 'ms', label: labels.duration, size: 70 }, { scale: 'fuel', side: 1, label: labels.fuel, size: 70, grid: { show: false } }],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [runs, labels.duration, labels.fuel]);
  return (
    <figure className="chart">
      <div ref={box} role="img" aria-label={caption} data-testid="runs-chart" />
      <figcaption className="muted small">{caption}</figcaption>
    </figure>
  );
}
