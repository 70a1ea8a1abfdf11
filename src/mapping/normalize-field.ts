import { CALLBACK_STATUSES, type CallbackStatus } from '../core/activity';
import { MappingError } from '../core/errors';
import type { FieldKind } from './language-terms';
import { activityTimeMs, isoFromMs } from '../core/time';
import type { SourcePlan } from './source-plan';
import { toNumber, toText } from './transforms';

/**
 * A mapped value shaped to the kind of the canonical field it fills (text,
 * time, seconds, a callback status...): a value of the wrong shape is a
 * MappingError naming the field and line, never a silently wrong activity.
 */

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** A mapped value in the shape its canonical field needs, or a MappingError that names the field. */
export function normalize(plan: SourcePlan, kind: FieldKind, label: string, line: number, raw: unknown): unknown {
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'string' && raw.trim() === '') return null;
  const bad = (what: string): MappingError =>
    new MappingError(`${label} needs ${what}, but the mapping gave ${describe(raw)}`, {
      source: plan.source,
      file: plan.file,
      line,
      field: label,
    });
  switch (kind) {
    case 'direction': {
      const t = toText(raw)?.trim().toLowerCase();
      return t === 'inbound' || t === 'outbound' ? t : null;
    }
    case 'text':
      if (typeof raw === 'object' && !(raw instanceof Date)) throw bad('text');
      return toText(raw);
    case 'time': {
      if (typeof raw === 'number') throw bad('a time (add time: epoch-s, epoch-ms or epoch.millis to read a number)');
      if (typeof raw !== 'string' && !(raw instanceof Date)) throw bad('a time');
      const ms = activityTimeMs(raw);
      return ms === null ? null : isoFromMs(ms);
    }
    case 'seconds': {
      if (typeof raw === 'object') throw bad('a number of seconds');
      const n = toNumber(raw);
      return n === null ? null : Math.round(n);
    }
    case 'json':
      if (raw instanceof Date) return raw.toISOString();
      return raw;
    case 'callbackStatus': {
      const t = typeof raw === 'string' ? raw.trim().toLowerCase() : null;
      if (!isCallbackStatus(t)) throw bad(`one of ${CALLBACK_STATUSES.join(', ')}`);
      return t;
    }
  }
}

export function isCallbackStatus(v: unknown): v is CallbackStatus {
  return typeof v === 'string' && (CALLBACK_STATUSES as readonly string[]).includes(v);
}
