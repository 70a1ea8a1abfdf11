import { randomUUID } from 'node:crypto';
import { json, type FakeResponse } from '../http';
import { type HsObject, STANDARD_PROPERTIES, ENUMS, ASSOCIATION_TYPE, TYPE_ID_OF, PORTAL_ID, TIMESTAMPED, type WriteError, stringProps, isObject } from './shapes';
import { HubSpotState } from './state';

/** Batch writes (upsert, create, update) and reads, with their validation. */
export abstract class HubSpotRecords extends HubSpotState {
  // ------------------------------------------------------------- writes

  protected inputsOf(body: unknown): Array<Record<string, unknown>> | FakeResponse {
    if (!isObject(body) || !Array.isArray(body['inputs'])) return this.badRequest('Invalid input JSON on line 1, column 1: Cannot build BatchInput, some of required attributes are not set [inputs]');
    const inputs: unknown[] = body['inputs'];
    if (inputs.length > 100) return this.badRequest(`Batch size of ${inputs.length} exceeds maximum of 100`);
    if (!inputs.every(isObject)) return this.badRequest('Invalid input JSON');
    return inputs as Array<Record<string, unknown>>;
  }

  /**
   * Runs every input, then answers: all good 200 (201 for create). Some bad:
   * a create whose inputs are all traced answers 207 with the failures in
   * `errors` and the others applied (multi-status, which HubSpot documents
   * for batch create only); anything else fails the whole batch, nothing
   * applied: 404 listing the ids that do not exist, else 400 with the first
   * validation error.
   */
  protected finishBatch(
    inputs: Array<Record<string, unknown>>,
    attempt: (input: Record<string, unknown>, trace: string | undefined) => { result?: Record<string, unknown>; error?: WriteError; apply?: () => void },
    okStatus: number,
    multiStatus: boolean,
  ): FakeResponse {
    const traced = inputs.every((i) => typeof i['objectWriteTraceId'] === 'string');
    const outcomes = inputs.map((input) => {
      const trace = typeof input['objectWriteTraceId'] === 'string' ? input['objectWriteTraceId'] : undefined;
      const injected = trace === undefined ? undefined : this.inputFaults.get(trace)?.shift();
      if (injected === undefined || trace === undefined) return attempt(input, trace);
      if (this.inputFaults.get(trace)?.length === 0) this.inputFaults.delete(trace);
      const error: WriteError = { status: 'error', category: injected.category, message: injected.message, context: { objectWriteTraceId: [trace] } };
      return { error };
    });
    const errors = outcomes.flatMap((o) => (o.error === undefined ? [] : [o.error]));
    if (errors.length > 0 && (!multiStatus || !traced || this.rejectWholeBatch)) {
      const missing = errors.filter((e) => e.category === 'OBJECT_NOT_FOUND');
      const first = missing[0];
      if (first !== undefined) {
        const ids = missing.flatMap((e) => e.context['ids'] ?? []);
        return json(404, { status: 'error', message: first.message, correlationId: randomUUID(), context: { ids }, category: 'OBJECT_NOT_FOUND' });
      }
      const firstError = errors[0];
      // A second record with a unique value is a 409 CONFLICT, as a single create answers it.
      if (firstError?.category === 'CONFLICT') return json(409, { status: 'error', message: firstError.message, correlationId: randomUUID(), category: 'CONFLICT' });
      return this.badRequest(firstError?.message ?? 'invalid input', firstError?.errors);
    }
    for (const o of outcomes) o.apply?.();
    const startedAt = new Date().toISOString();
    const results = outcomes.flatMap((o) => (o.result === undefined ? [] : [o.result]));
    if (errors.length > 0) {
      return json(207, { status: 'COMPLETE', results, numErrors: errors.length, errors, startedAt, completedAt: new Date().toISOString() });
    }
    return json(okStatus, { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() });
  }

  protected batchUpsert(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    const idProperties = new Set(inputs.map((i) => i['idProperty']));
    for (const idProperty of idProperties) {
      if (typeof idProperty !== 'string') return this.badRequest('idProperty is required');
      if (!(this.unique.get(object)?.has(idProperty) ?? false)) {
        return this.badRequest(`Unable to perform update/upsert by non-unique ${TYPE_ID_OF[object] ?? object} property ${idProperty} in portal ID ${PORTAL_ID}`);
      }
    }
    const ids = inputs.map((i) => String(i['id']));
    const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
    if (duplicate !== undefined) return this.badRequest(`Duplicate IDs found in batch input: [${duplicate}]. IDs must be unique`);
    return this.finishBatch(
      inputs,
      (input, trace) => {
        const idProperty = String(input['idProperty']);
        const id = String(input['id']);
        const existingId = this.uniqueIndex.get(`${object}.${idProperty}`)?.get(id);
        const existing = existingId === undefined ? undefined : this.table(object).get(existingId);
        const properties = { ...stringProps(input['properties']), [idProperty]: id };
        const error = this.validate(object, properties, existing, trace);
        if (error !== undefined) return { error };
        const preview = existing ?? this.preview();
        const merged = { ...preview.properties, ...properties };
        let stored: HsObject | undefined;
        return {
          result: {
            get id() {
              return stored?.id ?? preview.id;
            },
            properties: merged,
            createdAt: preview.createdAt,
            updatedAt: new Date().toISOString(),
            archived: false,
            new: existing === undefined,
            ...(trace === undefined ? {} : { objectWriteTraceId: trace }),
          },
          apply: () => {
            stored = existing === undefined ? this.store(object, properties, true) : this.patch(object, existing, properties);
          },
        };
      },
      200,
      false,
    );
  }

  protected batchCreate(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    return this.finishBatch(
      inputs,
      (input, trace) => {
        const properties = stringProps(input['properties']);
        const error = this.validate(object, properties, undefined, trace);
        if (error !== undefined) return { error };
        const links: Array<{ toObject: string; toId: string }> = [];
        for (const association of Array.isArray(input['associations']) ? input['associations'] : []) {
          const toId = isObject(association) && isObject(association['to']) ? String(association['to']['id']) : '';
          const typeId = isObject(association) && Array.isArray(association['types']) && isObject(association['types'][0]) ? Number(association['types'][0]['associationTypeId']) : NaN;
          const toObject = Object.entries(ASSOCIATION_TYPE).find(([key, id]) => id === typeId && key.startsWith(`${object}:`))?.[0].split(':')[1];
          if (toObject === undefined || !this.table(toObject).has(toId)) {
            return { error: { status: 'error', category: 'VALIDATION_ERROR', message: `Invalid association: no ${toObject ?? 'object'} with id ${toId} (type ${typeId})`, context: trace === undefined ? {} : { objectWriteTraceId: [trace] } } };
          }
          links.push({ toObject, toId });
        }
        const preview = this.preview();
        let stored: HsObject | undefined;
        return {
          result: {
            get id() {
              return stored?.id ?? preview.id;
            },
            properties: { ...preview.properties, ...properties },
            createdAt: preview.createdAt,
            updatedAt: preview.updatedAt,
            archived: false,
            ...(trace === undefined ? {} : { objectWriteTraceId: trace }),
          },
          apply: () => {
            stored = this.store(object, properties, true);
            for (const link of links) this.link(object, stored.id, link.toObject, link.toId);
          },
        };
      },
      201,
      true,
    );
  }

  protected batchUpdate(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    return this.finishBatch(
      inputs,
      (input, trace) => {
        const id = String(input['id']);
        const existing = this.table(object).get(id);
        const context = trace === undefined ? { ids: [id] } : { objectWriteTraceId: [trace], ids: [id] };
        if (existing === undefined) return { error: { status: 'error', category: 'OBJECT_NOT_FOUND', message: `Could not get some ${object} objects, they may be deleted or not exist. Check that ids are valid.`, context } };
        const properties = stringProps(input['properties']);
        const error = this.validate(object, properties, existing, trace);
        if (error !== undefined) return { error };
        return {
          result: { id, properties: { ...existing.properties, ...properties }, createdAt: existing.createdAt, updatedAt: new Date().toISOString(), archived: false, ...(trace === undefined ? {} : { objectWriteTraceId: trace }) },
          apply: () => this.patch(object, existing, properties),
        };
      },
      200,
      false,
    );
  }

  protected batchRead(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    const idProperty = isObject(body) && typeof body['idProperty'] === 'string' ? body['idProperty'] : undefined;
    const results = inputs.flatMap((input) => {
      const key = String(input['id']);
      const found = idProperty === undefined ? this.table(object).get(key) : [...this.table(object).values()].find((o) => o.properties[idProperty] === key);
      return found === undefined ? [] : [found];
    });
    return json(200, { status: 'COMPLETE', results, startedAt: new Date().toISOString(), completedAt: new Date().toISOString() });
  }

  protected validate(object: string, properties: Record<string, string>, existing: HsObject | undefined, trace: string | undefined): WriteError | undefined {
    const context: Record<string, string[]> = trace === undefined ? {} : { objectWriteTraceId: [trace] };
    const invalid = (error: string, name: string, message: string): WriteError => ({
      status: 'error',
      category: 'VALIDATION_ERROR',
      message: `Property values were not valid: [${JSON.stringify({ isValid: false, message, error, name, localizedErrorMessage: message })}]`,
      context,
      errors: [{ message, code: error, context: { propertyName: [name] } }],
    });
    const known = new Set([...(STANDARD_PROPERTIES[object] ?? []), ...(this.custom.get(object) ?? [])]);
    for (const [name, value] of Object.entries(properties)) {
      if (!known.has(name)) return invalid('PROPERTY_DOESNT_EXIST', name, `Property "${name}" does not exist`);
      const options = ENUMS[object]?.[name];
      if (options !== undefined && value !== '' && !options.includes(value)) {
        return invalid('INVALID_OPTION', name, `${value} was not one of the allowed options: ${options.map((o) => `label: "${o}"\nvalue: "${o}"`).join(', ')}`);
      }
      if (name === 'hubspot_owner_id' && value !== '' && !this.owners.some((o) => o.id === value && !o.archived)) {
        return invalid('INVALID_OWNER_ID', name, `${value} is not a valid owner id`);
      }
    }
    for (const name of this.unique.get(object) ?? []) {
      const value = properties[name];
      if (value === undefined || value === '') continue;
      const clashId = this.uniqueIndex.get(`${object}.${name}`)?.get(value);
      const clash = clashId === undefined || clashId === existing?.id ? undefined : this.table(object).get(clashId);
      if (clash !== undefined) {
        return { status: 'error', category: 'CONFLICT', message: `A ${object} with ${name}=${value} already exists. Existing ID: ${clash.id}`, context: { ...context, existingId: [clash.id] } };
      }
    }
    if (existing === undefined && TIMESTAMPED.has(object) && (properties['hs_timestamp'] ?? '') === '') {
      return invalid('REQUIRED_PROPERTY', 'hs_timestamp', 'hs_timestamp is required');
    }
    for (const { object: ruleObject, rule } of this.rules) {
      if (ruleObject !== object) continue;
      const message = rule({ ...(existing?.properties ?? {}), ...properties }, object);
      if (message !== undefined) return { status: 'error', category: 'VALIDATION_ERROR', message, context };
    }
    return undefined;
  }
}
