import { json, type FakeResponse } from '../http';
import { PREFIX, PHONE_FIELDS, phoneMatcher, parseSoql, sameValue } from './shapes';
import { SalesforceOAuth } from './oauth';

/** SOSL search and SOQL queries. */
export abstract class SalesforceSearch extends SalesforceOAuth {
  // ---------------------------------------------------------------- SOSL

  protected search(sosl: string): FakeResponse {
    const malformed = (message: string) => json(400, [{ message, errorCode: 'MALFORMED_SEARCH' }]);
    const find = /^\s*FIND\s*\{/i.exec(sosl);
    if (find === null) return malformed('search must start with FIND {');
    // The search text runs to the first unescaped closing brace.
    let i = find[0].length;
    let text = '';
    for (; i < sosl.length; i += 1) {
      const c = sosl[i];
      if (c === '\\') {
        text += sosl.slice(i, i + 2);
        i += 1;
        continue;
      }
      if (c === '}') break;
      text += c;
    }
    if (i >= sosl.length) return malformed('unterminated search text');
    const rest = sosl.slice(i + 1);
    if (!/^\s*IN\s+PHONE\s+FIELDS\b/i.test(rest)) return malformed('the fake only searches IN PHONE FIELDS');
    if (text.length > 10_000) return json(200, { searchRecords: [] });
    const terms = text
      .split(/\s+OR\s+/i)
      .map((t) => t.trim().replace(/^"|"$/g, '').replace(/\\(.)/g, '$1').replace(/\D/g, ''))
      .filter((t) => t.length > 0);
    const matcher = phoneMatcher(terms);
    const returning = /RETURNING\s+(.*?)(?:\s+LIMIT\s+(\d+))?\s*$/is.exec(rest);
    const limit = returning?.[2] === undefined ? 2000 : Math.min(2000, Number(returning[2]));
    const specs = [...(returning?.[1] ?? '').matchAll(/(\w+)\s*\(([^)]*)\)/g)];
    // LIMIT caps the answer as a whole, over every object RETURNING names.
    const out: Array<Record<string, unknown>> = [];
    for (const spec of specs) {
      if (out.length >= limit) break;
      const object = spec[1] ?? '';
      const inner = spec[2] ?? '';
      const [fieldList = '', where] = inner.split(/\s+WHERE\s+/i);
      const fields = fieldList.split(',').map((f) => f.trim()).filter((f) => f !== '');
      const notConverted = where !== undefined && /IsConverted\s*=\s*false/i.test(where);
      const ghosts = this.searchGhosts.get(object);
      const rows = ghosts === undefined ? this.table(object).values() : [...this.table(object).values(), ...ghosts.values()];
      for (const row of rows) {
        if (notConverted && row['IsConverted'] === true) continue;
        const phones = (PHONE_FIELDS[object] ?? []).map((f) => row[f]).filter((v): v is string => typeof v === 'string');
        if (!phones.some(matcher)) continue;
        const result: Record<string, unknown> = { attributes: this.attributes(object, row.Id) };
        for (const f of fields) result[f] = row[f] ?? null;
        out.push(result);
        if (out.length >= limit) break;
      }
    }
    return json(200, { searchRecords: out });
  }

  // ---------------------------------------------------------------- SOQL

  protected query(soql: string): FakeResponse {
    const parsed = parseSoql(soql);
    if (typeof parsed === 'string') return json(400, [{ message: parsed, errorCode: 'MALFORMED_QUERY' }]);
    const table = this.tables.get(parsed.object);
    if (table === undefined && !(parsed.object in PREFIX)) {
      return json(400, [{ message: `sObject type '${parsed.object}' is not supported.`, errorCode: 'INVALID_TYPE' }]);
    }
    const rows = [...(table?.values() ?? [])].filter((row) =>
      parsed.conditions.every((cond) => {
        const value = row[cond.field];
        return cond.values.some((expected) => sameValue(value, expected));
      }),
    );
    rows.sort((a, b) => (a.Id < b.Id ? -1 : 1));
    const records = rows.slice(0, parsed.limit ?? 2000).map((row) => {
      const out: Record<string, unknown> = { attributes: this.attributes(parsed.object, row.Id) };
      for (const f of parsed.fields) out[f] = row[f] ?? null;
      return out;
    });
    return json(200, { totalSize: records.length, done: true, records });
  }
}
