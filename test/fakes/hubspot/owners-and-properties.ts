import { json, type FakeResponse } from '../http';
import { STANDARD_PROPERTIES, ENUMS, ASSOCIATION_TYPE, TYPE_ID_OF, type WriteError, isObject } from './shapes';
import { HubSpotSearch } from './search';

/** Property definitions, owners and associations. */
export abstract class HubSpotLookups extends HubSpotSearch {
  // --------------------------------------------------------- properties

  /** GET /crm/v3/properties/{object}/{name}, in the shape HubSpot answers. */
  protected property(object: string, name: string): FakeResponse {
    const custom = this.custom.get(object)?.has(name) ?? false;
    const standard = (STANDARD_PROPERTIES[object] ?? []).includes(name);
    if (!custom && !standard) return this.notFound(`Unable to find property ${name} for object type ${TYPE_ID_OF[object] ?? object}`);
    const options = ENUMS[object]?.[name];
    return json(200, {
      updatedAt: '2024-06-03T10:00:00.000Z',
      createdAt: '2024-06-03T10:00:00.000Z',
      name,
      label: name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()),
      type: options === undefined ? 'string' : 'enumeration',
      fieldType: options === undefined ? 'text' : 'select',
      description: '',
      groupName: custom ? `${object.replace(/s$/, '')}information` : 'engagement',
      options: (options ?? []).map((value, displayOrder) => ({ label: value, value, displayOrder, hidden: false })),
      displayOrder: -1,
      calculated: false,
      externalOptions: false,
      hasUniqueValue: this.unique.get(object)?.has(name) ?? false,
      hidden: false,
      hubspotDefined: standard,
      modificationMetadata: { archivable: custom, readOnlyDefinition: standard, readOnlyValue: false },
      formField: false,
      dataSensitivity: 'non_sensitive',
    });
  }

  // ------------------------------------------------------------- owners

  protected listOwners(params: URLSearchParams): FakeResponse {
    const email = params.get('email');
    const limit = Math.min(500, Number(params.get('limit') ?? '100') || 100);
    const offset = Number(params.get('after') ?? '0') || 0;
    const archived = params.get('archived') === 'true';
    const matches = this.owners.filter((o) => o.archived === archived && (email === null || o.email.toLowerCase() === email.toLowerCase()));
    const page = matches.slice(offset, offset + limit).map((o) => ({ ...o, teams: [] }));
    const next = offset + limit < matches.length ? { paging: { next: { after: String(offset + limit), link: '' } } } : {};
    return json(200, { results: page, ...next });
  }

  // -------------------------------------------------------- associations

  protected associate(from: string, to: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    const typeId = ASSOCIATION_TYPE[`${from}:${to}`] ?? 1;
    const results: unknown[] = [];
    const errors: WriteError[] = [];
    for (const input of inputs) {
      const fromId = isObject(input['from']) ? String(input['from']['id']) : '';
      const toId = isObject(input['to']) ? String(input['to']['id']) : '';
      if (!this.table(from).has(fromId) || !this.table(to).has(toId)) {
        const missing = this.table(from).has(fromId) ? `${to} ${toId}` : `${from} ${fromId}`;
        errors.push({ status: 'error', category: 'VALIDATION_ERROR', message: `No ${missing} exists`, context: { fromObjectId: [fromId], toObjectId: [toId] } });
        continue;
      }
      this.link(from, fromId, to, toId);
      results.push({ from: { id: fromId }, to: { id: toId }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: typeId } });
    }
    const timing = { startedAt: new Date().toISOString(), completedAt: new Date().toISOString() };
    if (errors.length > 0) return json(207, { status: 'COMPLETE', results, numErrors: errors.length, errors, ...timing });
    return json(200, { status: 'COMPLETE', results, ...timing });
  }
}
