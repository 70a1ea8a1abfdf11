import { json, type FakeRequest, type FakeResponse } from '../http';
import { matchFilter, objectName, compareIds, parseBody, isObject } from './shapes';
import { HubSpotRecords } from './records';

/** POST /crm/v3/objects/{type}/search. */
export abstract class HubSpotSearch extends HubSpotRecords {
  // ------------------------------------------------------------- search

  protected search(req: FakeRequest): FakeResponse {
    const object = objectName(req.url.pathname.split('/').filter((p) => p !== '')[3]);
    if (req.body.length > 3000) return this.badRequest(`Search request body is too long: ${req.body.length} characters, 3000 allowed`);
    const body = parseBody(req.body);
    if (!isObject(body)) return this.badRequest('Invalid input JSON');
    const groups = Array.isArray(body['filterGroups']) ? body['filterGroups'] : [];
    const filterCount = groups.reduce<number>((n, g) => n + (isObject(g) && Array.isArray(g['filters']) ? g['filters'].length : 0), 0);
    if (groups.length > 5) return this.badRequest(`Too many filter groups (${groups.length}); the maximum is 5`);
    if (filterCount > 18 || groups.some((g) => isObject(g) && Array.isArray(g['filters']) && g['filters'].length > 6)) {
      return this.badRequest('Too many filters: at most 6 in a group and 18 in all');
    }
    const limit = Math.min(200, typeof body['limit'] === 'number' ? body['limit'] : 10);
    const offset = typeof body['after'] === 'string' ? Number(body['after']) : 0;
    const wanted = Array.isArray(body['properties']) ? body['properties'].filter((p): p is string => typeof p === 'string') : [];
    const now = Date.now();
    const matches = [...this.table(object).values(), ...(this.searchGhosts.get(object)?.values() ?? [])]
      .filter((row) => {
        if ((this.indexedAt.get(`${object}:${row.id}`) ?? 0) > now) return false;
        if (groups.length === 0) return true;
        return groups.some((group) =>
          isObject(group) && Array.isArray(group['filters']) && group['filters'].every((filter) => isObject(filter) && matchFilter(this.searchable(object, row), filter)),
        );
      })
      .sort((a, b) => compareIds(a.id, b.id));
    const page = matches.slice(offset, offset + limit).map((row) => {
      const all = this.searchable(object, row);
      const properties: Record<string, string | null> = {
        hs_object_id: row.id,
        createdate: row.createdAt,
        lastmodifieddate: row.updatedAt,
      };
      for (const name of wanted) properties[name] = all[name] ?? null;
      return { id: row.id, properties, createdAt: row.createdAt, updatedAt: row.updatedAt, archived: false };
    });
    const next = offset + limit < matches.length ? { paging: { next: { after: String(offset + limit) } } } : {};
    return json(200, { total: matches.length, results: page, ...next });
  }
}
