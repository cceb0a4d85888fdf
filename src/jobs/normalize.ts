/**
 * Input shapes -> canonical shape (before validation).
 *
 * Two shapes are accepted, step by step and for the schedule:
 * - flat (canonical): step `{ id, name, type: 'http', config: {...} }`, schedule `{ type: 'cron', ... }`;
 * - the design study's "seed" shape: step `{ id, name, step_type: { HttpRequest: {...} } }` with
 *   Rust-serde enums inside the config, schedule `{ Cron: {...} }` or a bare cron string.
 *
 * Normalisation never throws and never mutates its input. It reports only the structural problems
 * it cannot hand on to the schema (both/neither of type and step_type, unknown step type or schedule
 * kind) and remembers where each canonical part came from, so that problems found later are reported
 * at the path the user wrote: `steps[0].step_type.HttpRequest.url`, not `steps[0].config.url`.
 */
import type { Problem } from '../errors.ts';
import { type PathSegment, formatPath, isPlainObject, pascalToSnake, seedVariant } from '../executors/definition.ts';
import { isStepType, stepDefinitions, stepDefinitionsBySeedName, stepTypes } from '../executors/definitions.ts';
import { DEFAULT_TIMEZONE } from '../scheduler/timezone.ts';
import { IGNORED_JOB_PROPERTIES, SCHEDULE_TYPES } from './types.ts';

export interface NormalizedJob {
  /** Canonical-shaped document, not validated yet; null when the input is not an object. */
  document: Record<string, unknown> | null;
  /** Problems found while normalising, at the paths the user wrote. */
  problems: Problem[];
  /** Maps a path in `document` to the path of the same value in the input. */
  userPath(canonical: readonly PathSegment[]): string;
}

interface Region {
  canonical: PathSegment[];
  user: PathSegment[];
  /** The seed value at `user`, walked to map deeper paths through serde enum wrappers. */
  seedValue?: unknown;
  /** Every path below `canonical` maps to `user` itself (bare string schedule). */
  collapse?: boolean;
}

const SEED_SCHEDULES = ['Cron', 'FixedRate', 'FixedDelay', 'Once'];

export function describeJsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && Number.isInteger(v)) return 'integer';
  if (isPlainObject(v)) return 'object';
  return typeof v;
}

/** Deep copy of plain objects and arrays; other values are shared. Own `__proto__` keys stay data. */
export function cloneJson<T>(v: T): T {
  if (Array.isArray(v)) return v.map(cloneJson) as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      Object.defineProperty(out, k, { value: cloneJson(val), enumerable: true, writable: true, configurable: true });
    }
    return out as T;
  }
  return v;
}

function without(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!keys.includes(k)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Follows canonical path segments through a seed value, stepping into `{ "Variant": {...} }` wrappers. */
function walkSeed(rest: readonly PathSegment[], start: unknown): PathSegment[] {
  const out: PathSegment[] = [];
  let node: unknown = start;
  let i = 0;
  while (i < rest.length) {
    const seg = rest[i];
    const has = typeof seg === 'number' ? Array.isArray(node) && seg < node.length : isPlainObject(node) && Object.hasOwn(node, seg);
    if (has) {
      out.push(seg);
      node = (node as Record<string, unknown>)[seg as string];
      i++;
      continue;
    }
    const sv = seedVariant(node);
    if (!sv) return [...out, ...rest.slice(i)];
    out.push(sv.variant);
    node = sv.fields;
  }
  const sv = seedVariant(node);
  if (sv) out.push(sv.variant);
  return out;
}

function makeUserPath(regions: Region[]) {
  return (canonical: readonly PathSegment[]): string => {
    let best: Region | undefined;
    for (const r of regions) {
      if (r.canonical.length <= canonical.length && r.canonical.every((s, i) => s === canonical[i])) {
        if (!best || r.canonical.length > best.canonical.length) best = r;
      }
    }
    if (!best) return formatPath(canonical);
    if (best.collapse) return formatPath(best.user);
    const rest = canonical.slice(best.canonical.length);
    return formatPath([...best.user, ...(best.seedValue !== undefined ? walkSeed(rest, best.seedValue) : rest)]);
  };
}

function normalizeSchedule(raw: unknown, regions: Region[], problems: Problem[]): unknown {
  if (typeof raw === 'string') {
    regions.push({ canonical: ['schedule'], user: ['schedule'], collapse: true });
    return { type: 'cron', expression: raw, timezone: DEFAULT_TIMEZONE };
  }
  if (!isPlainObject(raw)) return cloneJson(raw);
  if ('type' in raw) {
    const s = cloneJson(raw);
    if (s.type === 'cron' && s.timezone === undefined) s.timezone = DEFAULT_TIMEZONE;
    if (s.type === 'once' && s.at instanceof Date && !Number.isNaN(s.at.getTime())) s.at = s.at.toISOString();
    return s;
  }
  const sv = seedVariant(raw);
  if (sv) {
    if (!SEED_SCHEDULES.includes(sv.variant)) {
      problems.push({
        path: formatPath(['schedule', sv.variant]),
        message: `unknown schedule kind '${sv.variant}' (expected one of ${SEED_SCHEDULES.join(', ')})`,
      });
      return null;
    }
    regions.push({ canonical: ['schedule'], user: ['schedule', sv.variant], seedValue: sv.fields });
    const s: Record<string, unknown> = { type: pascalToSnake(sv.variant), ...cloneJson(sv.fields) };
    if (s.type === 'cron' && s.timezone === undefined) s.timezone = DEFAULT_TIMEZONE;
    return s;
  }
  const keys = Object.keys(raw);
  if (keys.length === 1 && SEED_SCHEDULES.includes(keys[0])) {
    // `{ "Cron": "0 0 * * * *" }` and the like: the variant must hold an object
    problems.push({
      path: formatPath(['schedule', keys[0]]),
      message: `must be an object, e.g. {"Cron": {"expression": "0 0 9 * * ?", "timezone": "${DEFAULT_TIMEZONE}"}}`,
    });
    return null;
  }
  problems.push({
    path: 'schedule',
    message:
      `missing required property 'type' (one of ${SCHEDULE_TYPES.join(', ')}); ` +
      `the seed form {"Cron": {...}}, {"FixedRate": {...}}, {"FixedDelay": {...}}, {"Once": {...}} or a cron string also work`,
  });
  return null;
}

function normalizeStep(raw: unknown, i: number, regions: Region[], problems: Problem[]): unknown {
  if (!isPlainObject(raw)) return cloneJson(raw);
  const at = (...rest: PathSegment[]) => formatPath(['steps', i, ...rest]);
  const hasType = Object.hasOwn(raw, 'type');
  const hasSeed = Object.hasOwn(raw, 'step_type');
  let step: Record<string, unknown>;

  if (hasType && hasSeed) {
    problems.push({
      path: at(),
      message: "a step has either 'type' with 'config' (canonical shape) or 'step_type' (seed shape), not both",
    });
    step = cloneJson(without(raw, 'type', 'step_type', 'config'));
  } else if (!hasType && !hasSeed) {
    problems.push({
      path: at(),
      message:
        `missing required property 'type' (one of ${stepTypes.join(', ')}), or 'step_type' in the seed shape ` + `(e.g. {"step_type": {"HttpRequest": {...}}})`,
    });
    step = cloneJson(without(raw, 'config'));
  } else if (hasType) {
    step = cloneJson(raw);
    const type = raw.type;
    if (typeof type !== 'string') {
      problems.push({ path: at('type'), message: `must be a string, one of ${stepTypes.join(', ')} (got ${describeJsonType(type)})` });
      step = without(step, 'type', 'config');
    } else if (!isStepType(type)) {
      problems.push({ path: at('type'), message: `unknown step type '${type}' (expected one of ${stepTypes.join(', ')})` });
      step = without(step, 'type', 'config');
    } else if (!('config' in raw)) {
      problems.push({ path: at(), message: "missing required property 'config'" });
    } else {
      const def = stepDefinitions[type];
      if (def.normalize) step.config = def.normalize(step.config);
    }
  } else {
    step = cloneJson(without(raw, 'step_type'));
    const st = raw.step_type;
    const keys = isPlainObject(st) ? Object.keys(st) : [];
    const seedNames = [...stepDefinitionsBySeedName.keys()];
    if ('config' in raw) {
      problems.push({
        path: at('config'),
        message: "unknown property 'config' (with 'step_type', the configuration goes inside step_type, e.g. {\"HttpRequest\": {...}})",
      });
      step = without(step, 'config');
    }
    if (!isPlainObject(st) || keys.length !== 1) {
      problems.push({
        path: at('step_type'),
        message: `must be an object with exactly one key naming the step type (one of ${seedNames.join(', ')}), e.g. {"HttpRequest": {...}}`,
      });
    } else {
      const def = stepDefinitionsBySeedName.get(keys[0]);
      if (!def) {
        problems.push({
          path: at('step_type'),
          message: `unknown step type '${keys[0]}' (expected one of ${seedNames.join(', ')})`,
        });
      } else {
        const seedConfig = st[keys[0]];
        regions.push({ canonical: ['steps', i, 'config'], user: ['steps', i, 'step_type', keys[0]], seedValue: seedConfig });
        let config = def.fromSeed(cloneJson(seedConfig));
        if (def.normalize) config = def.normalize(config);
        step = { ...step, type: def.type, config };
      }
    }
  }

  if (step.name === undefined && typeof step.id === 'string') step.name = step.id;
  // canonical key order: id, name, type, config, then the rest
  const ordered: Record<string, unknown> = {};
  for (const k of ['id', 'name', 'type', 'config']) if (k in step) ordered[k] = step[k];
  for (const [k, v] of Object.entries(without(step, 'id', 'name', 'type', 'config'))) {
    Object.defineProperty(ordered, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return ordered;
}

/** Seed or flat job document -> canonical-shaped document (unvalidated); see the module comment. */
export function normalizeJobDocument(input: unknown): NormalizedJob {
  const problems: Problem[] = [];
  const regions: Region[] = [];
  const userPath = makeUserPath(regions);
  if (!isPlainObject(input)) {
    problems.push({ path: '', message: `job document must be a JSON object (got ${describeJsonType(input)})` });
    return { document: null, problems, userPath };
  }
  const doc = without(input, ...IGNORED_JOB_PROPERTIES, 'schedule', 'steps');
  if ('schedule' in input) doc.schedule = normalizeSchedule(input.schedule, regions, problems);
  if ('steps' in input) {
    doc.steps = Array.isArray(input.steps) ? input.steps.map((s, i) => normalizeStep(s, i, regions, problems)) : cloneJson(input.steps);
  }
  return { document: cloneJson(doc), problems, userPath };
}
