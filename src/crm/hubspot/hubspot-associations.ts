import type { Clock } from '../../core/time';
import { isRecord } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import { TtlCache } from '../engine/ttl-cache';
import type { HubSpotClient } from './hubspot-client';
import { hubspotError } from './hubspot-errors';
import { HUBSPOT_BATCH_LIMIT, inlineAssociations, type HubSpotAssociation } from './hubspot-payload';
import type { Association, Outcome, Prepared } from './hubspot-prepared';

/**
 * Associates written records with their contact (company...) through the v4
 * batch endpoint, skipping pairs this process already associated: the call
 * is idempotent, the cache only saves requests.
 */

const ASSOCIATION_TTL_MS = 24 * 60 * 60 * 1000;

export class HubSpotAssociations {
  private readonly associated: TtlCache<true>;

  constructor(
    private readonly client: HubSpotClient,
    clock: Clock,
  ) {
    this.associated = new TtlCache<true>(clock);
  }

  /** A create carried these associations inline: they are made. */
  createdWith(p: Prepared, outcome: Extract<Outcome, { ok: true }>): void {
    const inline = inlineAssociations(p.record.object, p.associations);
    for (const a of inline) this.associated.set(associationKey(p.record.object, outcome.id, a), true, ASSOCIATION_TTL_MS);
    outcome.associated.push(...inline);
  }

  async associateAll(prepared: Prepared[], outcomes: Map<Prepared, Outcome>, deadline: Deadline): Promise<void> {
    const pending = new Map<string, Array<{ p: Prepared; fromId: string; association: Association }>>();
    for (const p of prepared) {
      const outcome = outcomes.get(p);
      if (outcome?.ok !== true) continue;
      for (const association of p.associations) {
        if (outcome.associated.some((a) => a.toObject === association.toObject && a.toId === association.toId)) continue;
        if (this.associated.has(associationKey(p.record.object, outcome.id, association))) {
          outcome.associated.push(association);
          continue;
        }
        const key = `${p.record.object}/${association.toObject}`;
        const list = pending.get(key) ?? [];
        list.push({ p, fromId: outcome.id, association });
        pending.set(key, list);
      }
    }
    const jobs: Array<Promise<void>> = [];
    for (const [key, list] of pending) {
      const [from = '', to = ''] = key.split('/');
      for (let i = 0; i < list.length; i += HUBSPOT_BATCH_LIMIT) {
        const chunk = list.slice(i, i + HUBSPOT_BATCH_LIMIT);
        jobs.push(
          (async () => {
            const response = await this.client.call(
              'POST',
              `/crm/v4/associations/${from}/${to}/batch/associate/default`,
              { inputs: chunk.map((c) => ({ from: { id: c.fromId }, to: { id: c.association.toId } })) },
              deadline,
            );
            const body = isRecord(response.body) ? response.body : {};
            const done = new Set(
              (Array.isArray(body['results']) ? body['results'] : []).map(
                (r) => `${idOf(isRecord(r) ? r['from'] : undefined)}>${idOf(isRecord(r) ? r['to'] : undefined)}`,
              ),
            );
            const failure =
              response.status >= 300 || !Array.isArray(body['errors']) || body['errors'].length === 0
                ? hubspotError(response.body, response.status)
                : hubspotError(body['errors'][0], response.status);
            for (const c of chunk) {
              const outcome = outcomes.get(c.p);
              if (outcome?.ok !== true) continue;
              if (done.has(`${c.fromId}>${c.association.toId}`)) {
                outcome.associated.push(c.association);
                this.associated.set(associationKey(from, c.fromId, c.association), true, ASSOCIATION_TTL_MS);
              } else {
                outcomes.set(c.p, {
                  ok: false,
                  result: outcome.result,
                  error: failure.recast(failure.kind, `written as ${from} ${c.fromId} but not associated with ${to} ${c.association.toId}: ${failure.message}`),
                });
              }
            }
          })(),
        );
      }
    }
    await Promise.all(jobs);
  }
}

function associationKey(object: string, id: string, association: HubSpotAssociation): string {
  return `${object}:${id}>${association.toObject}:${association.toId}`;
}

/** An object id as HubSpot writes it: a string, in some answers a number. */
function idOf(value: unknown): string {
  if (!isRecord(value)) return '';
  const id = value['id'];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : '';
}
