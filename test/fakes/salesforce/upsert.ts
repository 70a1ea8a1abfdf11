import { json, type FakeResponse } from '../http';
import { type SObjectValue, type SObject, TASK_FIELDS, PREFIX, isObject } from './shapes';
import { SalesforceSearch } from './search';

/** Upserts by external id, single and sObject Collections. */
export abstract class SalesforceUpsert extends SalesforceSearch {
  // -------------------------------------------------------------- upsert

  protected upsertCollection(type: string, field: string, body: unknown): FakeResponse {
    if (!isObject(body) || !Array.isArray(body['records'])) {
      return json(400, [{ message: 'Json Deserialization failed on token \'null\'', errorCode: 'JSON_PARSER_ERROR' }]);
    }
    const records: unknown[] = body['records'];
    if (records.length > 200) {
      return json(400, [{ message: 'Maximum number of records allowed is 200', errorCode: 'EXCEEDED_ID_LIMIT' }]);
    }
    const fieldProblem = this.checkExternalIdField(type, field);
    if (fieldProblem !== undefined) return fieldProblem;
    // An unknown field, or a value the field's type cannot hold, fails the
    // request as a whole: the body cannot be deserialized.
    const text = JSON.stringify(body);
    for (const record of records) {
      if (!isObject(record)) return json(400, [{ message: 'Json Deserialization failed', errorCode: 'JSON_PARSER_ERROR' }]);
      for (const [name, value] of Object.entries(record)) {
        if (name === 'attributes') continue;
        if (!this.knownField(type, name)) {
          return json(400, [{ message: `No such column '${name}' on sobject of type ${type}`, errorCode: 'INVALID_FIELD' }]);
        }
        const expected = type === 'Task' ? TASK_FIELDS[name]?.type : undefined;
        const fits = expected === undefined || value === null || (expected === 'int' ? Number.isInteger(value) : typeof value === 'boolean');
        if (!fits) {
          const column = text.indexOf(`"${name}":${JSON.stringify(value)}`) + name.length + 4;
          return json(400, [
            {
              message: `Cannot deserialize instance of ${expected} from VALUE_STRING value ${String(value)} or request may be missing a required field at [line:1, column:${column}]`,
              errorCode: 'JSON_PARSER_ERROR',
            },
          ]);
        }
      }
    }
    const allOrNone = body['allOrNone'] === true;
    const results = records.map((record) => this.upsertRecord(type, field, record as Record<string, unknown>, !allOrNone));
    if (allOrNone && results.some((r) => !r.success)) {
      return json(
        200,
        results.map((r) =>
          r.success ? { success: false, errors: [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] }] } : r,
        ),
      );
    }
    if (allOrNone) {
      // Validated without applying above; apply now.
      return json(200, records.map((record) => this.upsertRecord(type, field, record as Record<string, unknown>, true)));
    }
    return json(200, results);
  }

  protected upsertSingle(type: string, field: string, value: string, body: unknown): FakeResponse {
    const fieldProblem = this.checkExternalIdField(type, field);
    if (fieldProblem !== undefined) return fieldProblem;
    if (!isObject(body)) return json(400, [{ message: 'Json Deserialization failed', errorCode: 'JSON_PARSER_ERROR' }]);
    for (const name of Object.keys(body)) {
      if (name !== 'attributes' && !this.knownField(type, name)) {
        return json(400, [{ message: `No such column '${name}' on sobject of type ${type}`, errorCode: 'INVALID_FIELD' }]);
      }
    }
    const result = this.upsertRecord(type, field, { ...body, [field]: value }, true);
    if (!result.success) return json(400, result.errors.map((e) => ({ message: e.message, errorCode: e.statusCode, fields: e.fields })));
    return json(result.created ? 201 : 200, result);
  }

  protected checkExternalIdField(type: string, field: string): FakeResponse | undefined {
    if (!(type in PREFIX)) return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    if (type !== 'Task' || field !== this.externalIdField) {
      return json(404, [{ errorCode: 'NOT_FOUND', message: `Provided external ID field does not exist or is not accessible: ${field}` }]);
    }
    return undefined;
  }

  protected knownField(type: string, name: string): boolean {
    if (type !== 'Task') return true;
    if (name in TASK_FIELDS) return true;
    return name.endsWith('__c') && (this.allowAnyCustomField || this.customFields.has(name));
  }

  protected upsertRecord(
    type: string,
    field: string,
    input: Record<string, unknown>,
    apply: boolean,
  ): { id?: string; success: boolean; errors: Array<{ statusCode: string; message: string; fields: string[] }>; created?: boolean } {
    const fail = (statusCode: string, message: string, fields: string[] = []) => ({ success: false, errors: [{ statusCode, message, fields }] });
    const values: Record<string, SObjectValue> = {};
    for (const [name, value] of Object.entries(input)) {
      if (name === 'attributes') continue;
      if (value !== null && typeof value === 'object') return fail('JSON_PARSER_ERROR', `Cannot deserialize ${name}`, [name]);
      values[name] = value as SObjectValue;
    }
    const externalId = values[field];
    if (typeof externalId !== 'string' || externalId === '') {
      return fail('REQUIRED_FIELD_MISSING', `Required fields are missing: [${field}]`, [field]);
    }
    const matches = [...(this.byExternalId.get(externalId) ?? [])].flatMap((id) => {
      const row = this.table(type).get(id);
      return row === undefined ? [] : [row];
    });
    if (matches.length > 1) return fail('DUPLICATE_EXTERNAL_ID', `${field}: more than one record found for external id field`, [field]);
    const existing = matches[0];
    const defs = type === 'Task' ? TASK_FIELDS : {};
    for (const [name, value] of Object.entries(values)) {
      const def = defs[name];
      if (def === undefined) continue;
      if (existing === undefined && def.createable === false) {
        return fail('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, [name]);
      }
      if (existing !== undefined && def.updateable === false) {
        return fail('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, [name]);
      }
      if (def.picklist !== undefined && value !== null && !def.picklist.includes(String(value))) {
        return fail('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${def.label ?? name}: bad value for restricted picklist field: ${String(value)}`, [name]);
      }
      if (def.references !== undefined && value !== null) {
        const exists = def.references.some((object) => this.table(object).has(String(value)));
        if (!exists) return fail('INVALID_CROSS_REFERENCE_KEY', `${def.label ?? name}: id value of incorrect type: ${String(value)}`, [name]);
      }
    }
    const now = new Date().toISOString();
    const merged: SObject =
      existing === undefined
        ? { Status: 'Not Started', Priority: 'Normal', ...values, Id: this.peekId(type), CreatedDate: now, LastModifiedDate: now }
        : { ...existing, ...values, Id: existing.Id, LastModifiedDate: now };
    for (const { object, rule } of this.rules) {
      if (object !== type) continue;
      const message = rule(merged, type);
      if (message !== undefined) return fail('FIELD_CUSTOM_VALIDATION_EXCEPTION', message);
    }
    if (!apply) return { id: merged.Id, success: true, errors: [], created: existing === undefined };
    if (existing === undefined) merged.Id = this.newId(type);
    this.put(type, merged);
    return { id: merged.Id, success: true, errors: [], created: existing === undefined };
  }
}
